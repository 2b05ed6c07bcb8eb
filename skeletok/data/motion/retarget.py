"""Retarget joint-position motion capture onto the skinned body by per-bone rotations.

Shape notation: ``t`` frames, ``j`` source joints, ``k`` rig joints, ``v`` vertices.

The motion is first renamed to the rig's joint names (``mapping.apply``; the committed rig uses the CMU
MotionBuilder BVH names). Then, for every rig joint ``a`` that is solved (the root, and every mapped joint reached
from a solved joint), the targets are its *effective descendants*: walking down the rig from ``a``, the first mapped
joints whose distance from ``a`` is at least ``min_bone`` both on the rig at rest and in the motion (median over
frames). A motion landmark ``<joint>_End`` (e.g. ``Head_End``, ``LeftToeBase_End``) is that rig bone's tail and
counts as a child of the joint, so leaf bones can be oriented too. Joints passed over on the way (unmapped, or
mapped but coincident with ``a``, like the CMU ``LHipJoint``, ``LowerBack``, ``Neck`` and ``LeftShoulder`` which
sit on their parents) turn with ``a``, i.e. keep their rest orientation relative to their parent. ``a``'s global
rotation is then

- with one target: the minimal (swing) rotation taking the bone direction, already turned by the parent's
  rotation, to the motion's direction, composed with the parent's rotation (so twist is inherited);
- with two or more targets holding a left/right pair (the pelvis: both hips and the spine; the chest: both
  shoulders and the neck): the rotation taking the rest frame to the motion's, built from the right-to-left axis
  (matched exactly) and the 'up' direction of the other targets (orthogonalised), so twist is not lost and
  different pelvis or shoulder proportions do not tilt the frame;
- with two or more other non-collinear targets (e.g. the hand from thumb and fingers): the rotation best aligning
  all rest directions with the motion's directions (Kabsch);
- for the upper arms and thighs (``HINGE_PARENTS``), the twist about the bone is then set so that the elbow or
  knee bends in the motion's bend plane (as a hinge), fading to the inherited twist as the limb straightens
  (full effect from a 30 degree bend, none under 10 degrees where the plane is noise);
- with none (a leaf such as ``Head`` or ``LeftHand`` without mapped descendants): the parent's rotation.

Finally a forearm takes half of its hand's twist about the forearm axis when the hand is solved from two or more
targets (thumb and fingers), so the wrist does not wring (``TWIST_SHARING``).

Only directions are matched, so the rig keeps its own proportions. The root follows the motion's root trajectory
scaled by ``scale`` (``"auto"``: body leg length over source leg length, hip to knee to ankle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from skeletok.data.body.model import BodyModel

if TYPE_CHECKING:
    from skeletok.data.motion.mapping import JointMapping
    from skeletok.data.motion.core import Motion

__all__ = ["Retargeted", "retarget", "swing_rotation", "kabsch_rotation"]

LEG_CHAINS = (("LeftUpLeg", "LeftLeg", "LeftFoot"), ("RightUpLeg", "RightLeg", "RightFoot"))
TAIL_SUFFIX = "_End"  # a motion joint '<rig joint>_End' is that bone's tail (e.g. Head_End, the crown)
# ball joints whose child is a hinge (elbow, knee): their twist is read from the hinge's bend plane
HINGE_PARENTS = ("LeftArm", "RightArm", "LeftUpLeg", "RightUpLeg")
# a forearm takes half its hand's twist about the forearm (when the hand's orientation is solved from 2+ targets)
TWIST_SHARING = (("LeftForeArm", "LeftHand"), ("RightForeArm", "RightHand"))
# the motion's bend plane sets the twist not at all under a 10 degree bend, fully from 30 degrees (noisy when straight)
_TWIST_BEND = np.sin(np.radians([10.0, 30.0]))
_MIN_REST_BEND = np.sin(np.radians(2.0))  # rest bend under which the rig has no bend plane (no twist applied)


@dataclass(frozen=True, eq=False)
class Retargeted:
    """A motion retargeted onto the body.

    Attributes:
        vertices: ``(t, v, 3)`` float32 skinned mesh, metres, world frame (Z-up).
        joints: ``(t, k, 3)`` float32 rig joint heads, metres.
        joint_tails: ``(t, k, 3)`` float32 rig bone tails, metres (``Head`` tail: the crown; toe tails: toe tips).
        global_rotations: ``(t, k, 3, 3)`` float32 bone rotations relative to the rest pose.
        root_translation: ``(t, 3)`` float32 displacement of the root joint from its rest position, metres.
        shape: the body shape index used.
        scale: the factor applied to the motion's root trajectory.
    """

    vertices: np.ndarray
    joints: np.ndarray
    joint_tails: np.ndarray
    global_rotations: np.ndarray
    root_translation: np.ndarray
    shape: int
    scale: float


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def swing_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The minimal rotation taking direction ``a`` to direction ``b``.

    Args:
        a: ``(..., 3)`` source directions (any non-zero length).
        b: ``(..., 3)`` target directions, broadcastable with ``a``.

    Returns:
        ``(..., 3, 3)`` rotation matrices ``R`` with ``R a / |a| = b / |b|``; for opposite directions, the half turn
        about an axis perpendicular to ``a``.
    """
    a, b = np.broadcast_arrays(_unit(np.asarray(a, np.float64)), _unit(np.asarray(b, np.float64)))
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)[..., None, None]
    vx = np.zeros(a.shape + (3,))
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    vx = vx - np.swapaxes(vx, -1, -2)
    rot = np.eye(3) + vx + vx @ vx / np.maximum(1.0 + c, 1e-12)
    # opposite directions: half turn about the axis perpendicular to a that is least aligned with a basis axis
    helper = np.eye(3)[np.argmin(np.abs(a), axis=-1)]
    n = _unit(np.cross(a, helper))
    half = 2.0 * n[..., :, None] * n[..., None, :] - np.eye(3)
    return np.where(c < -1.0 + 1e-9, half, rot)


def kabsch_rotation(rest: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation best aligning several unit directions with targets (Kabsch / Wahba).

    Args:
        rest: ``(n, 3)`` or ``(t, n, 3)`` unit directions to turn.
        target: ``(t, n, 3)`` unit target directions.

    Returns:
        ``rotation (t, 3, 3)`` maximising ``sum_i target_i . (R rest_i)``, and ``conditioning (t,)``, the ratio of
        the second to the first singular value of the cross-covariance (near 0: the directions are collinear and
        the twist about them is undetermined).
    """
    cov = np.einsum("...ni,tnj->tij", rest, target)
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.broadcast_to(np.eye(3), cov.shape).copy()
    fix[:, 2, 2] = np.where(d == 0, 1.0, d)
    rot = np.swapaxes(vt, -1, -2) @ fix @ np.swapaxes(u, -1, -2)
    return rot, s[:, 1] / np.maximum(s[:, 0], 1e-12)


def _share_twist(parent: np.ndarray, child: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """``parent (t, 3, 3)`` turned about its own rest bone ``axis (3,)`` by half the child's twist relative to it."""
    quat = Rotation.from_matrix(np.swapaxes(parent, -1, -2) @ child).as_quat()  # x, y, z, w
    angle = 2.0 * np.arctan2(quat[:, :3] @ axis, quat[:, 3])
    angle = np.where(angle > np.pi, angle - 2 * np.pi, np.where(angle < -np.pi, angle + 2 * np.pi, angle))
    return parent @ _axis_angle(np.broadcast_to(axis, (len(angle), 3)), 0.5 * angle)


def _mirror_pair(names: list[str]) -> tuple[int, int] | None:
    """Positions of the first left/right pair (``Left*``/``Right*`` or ``L*``/``R*``) in ``names``, else None."""
    for i, n in enumerate(names):
        if "Left" in n:
            twin = n.replace("Left", "Right")
        elif len(n) > 1 and n[0] == "L" and n[1].isupper():
            twin = "R" + n[1:]
        else:
            continue
        if twin in names:
            return i, names.index(twin)
    return None


def _frame_rotation(rest_lateral: np.ndarray, rest_dir: np.ndarray, src_lateral: np.ndarray, src_dir: np.ndarray,
                    others: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rotation taking the rest frame (right-to-left axis, then 'up' from the other targets) to the motion's.

    Args:
        rest_lateral: ``(3,)`` right-to-left target vector at rest; ``src_lateral``: ``(t, 3)`` in the motion.
        rest_dir: ``(n, 3)`` unit target directions at rest; ``src_dir``: ``(t, n, 3)`` in the motion.
        others: the targets that are not in the left/right pair (their mean direction is 'up'); when empty,
            the mean of all directions.

    Returns:
        ``rotation (t, 3, 3)`` and ``ok (t,)``: False where 'up' is (nearly) parallel to the lateral axis.
    """
    pick = others if others else list(range(rest_dir.shape[0]))

    def frame(lateral, up):
        length = np.linalg.norm(lateral, axis=-1)
        lateral = _unit(lateral)
        up = up - np.sum(up * lateral, -1, keepdims=True) * lateral
        norm = np.minimum(np.linalg.norm(up, axis=-1), length)
        up = _unit(up)
        return np.stack([lateral, up, np.cross(lateral, up)], axis=-1), norm

    rest_frame, rest_norm = frame(rest_lateral, rest_dir[pick].sum(0))
    src_frame, src_norm = frame(src_lateral, src_dir[:, pick].sum(1))
    ok = (src_norm > 1e-3) & (rest_norm > 1e-3)
    return src_frame @ rest_frame.T, ok


def _hinge_twist(rot: np.ndarray, rest: np.ndarray, source: np.ndarray, mapped: dict[int, int], a: int, d: int,
                 e: int) -> np.ndarray:
    """``(t, 3, 3)`` twist about the posed bone ``a -> d`` turning the rest bend plane ``a, d, e`` (turned by
    ``rot``) onto the motion's, weighted by how bent the motion's limb is (no twist for a straight limb)."""
    axis = _unit(source[:, mapped[d]] - source[:, mapped[a]])
    posed = np.einsum("tab,b->ta", rot, _unit(rest[e] - rest[d]))
    target = _unit(source[:, mapped[e]] - source[:, mapped[d]])
    posed = posed - np.sum(posed * axis, -1, keepdims=True) * axis
    target = target - np.sum(target * axis, -1, keepdims=True) * axis
    angle = np.arctan2(np.sum(axis * np.cross(posed, target), -1), np.sum(posed * target, -1))
    bend = np.linalg.norm(target, axis=-1)
    weight = np.clip((bend - _TWIST_BEND[0]) / (_TWIST_BEND[1] - _TWIST_BEND[0]), 0.0, 1.0)
    weight = np.where(np.linalg.norm(posed, axis=-1) > _MIN_REST_BEND, weight, 0.0)
    return _axis_angle(axis, weight * angle)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by ``angle (...)`` radians about unit ``axis (..., 3)`` (Rodrigues)."""
    kx = np.zeros(axis.shape + (3,))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    kx = kx - np.swapaxes(kx, -1, -2)
    sin, cos = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + sin * kx + (1.0 - cos) * kx @ kx


def _effective_targets(parents: list[int], rest: np.ndarray, source: np.ndarray, mapped: dict[int, int],
                       min_bone: float) -> dict[int, list[int]]:
    """For each solved point, its effective descendants (see module doc); unsolved points are absent.

    ``parents`` and ``rest`` cover the rig joints followed by the bone-tail landmarks present in the motion."""
    children = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    median = {}

    def far(a: int, c: int) -> bool:
        if np.linalg.norm(rest[c] - rest[a]) < min_bone:
            return False
        key = (a, c)
        if key not in median:
            median[key] = float(np.median(np.linalg.norm(source[:, mapped[c]] - source[:, mapped[a]], axis=-1)))
        return median[key] >= min_bone

    targets: dict[int, list[int]] = {}
    stack = [0]
    while stack:
        a = stack.pop()
        found, walk = [], list(children[a])
        while walk:
            c = walk.pop(0)
            if c in mapped and far(a, c):
                found.append(c)
            else:
                walk.extend(children[c])
        targets[a] = found
        stack.extend(found)
    return targets


def _auto_scale(body: BodyModel, rest: np.ndarray, source: np.ndarray, mapped: dict[int, int],
                targets: dict[int, list[int]]) -> float:
    """Body leg length over source leg length; without mapped legs, the same ratio over all solved segments."""
    names = [[body.joint_names.index(n) for n in chain] for chain in LEG_CHAINS]
    if all(j in mapped for chain in names for j in chain):
        pairs = [(chain[i], chain[i + 1]) for chain in names for i in range(2)]
    else:
        pairs = [(a, d) for a, found in targets.items() for d in found]
    if not pairs:
        return 1.0
    body_len = sum(np.linalg.norm(rest[d] - rest[a]) for a, d in pairs)
    src_len = sum(np.median(np.linalg.norm(source[:, mapped[d]] - source[:, mapped[a]], axis=-1)) for a, d in pairs)
    if not src_len > 0:
        raise ValueError("motion has zero-length bones between all mapped joints; cannot infer scale, pass scale=")
    return float(body_len / src_len)


def _solve_rotations(body: BodyModel, points: np.ndarray, point_names: list[str], source: np.ndarray,
                     mapped: dict[int, int], targets: dict[int, list[int]]) -> np.ndarray:
    """``(t, k, 3, 3)`` global rotations of the rig joints, parents first (see module doc)."""
    t = len(source)
    rot = np.empty((t, body.num_joints, 3, 3))
    for j, p in enumerate(body.parents):
        parent = np.broadcast_to(np.eye(3), (t, 3, 3)) if p < 0 else rot[:, p]
        found = targets.get(j, [])
        if not found:
            rot[:, j] = parent
            continue
        rest_dir = _unit(np.stack([points[d] - points[j] for d in found]))
        src_dir = _unit(np.stack([source[:, mapped[d]] - source[:, mapped[j]] for d in found], axis=1))
        swing = swing_rotation(np.einsum("tab,b->ta", parent, rest_dir[0]), src_dir[:, 0]) @ parent
        if len(found) == 1:
            hinge = targets.get(found[0], [])
            if body.joint_names[j] in HINGE_PARENTS and len(hinge) == 1:
                swing = _hinge_twist(swing, points, source, mapped, j, found[0], hinge[0]) @ swing
            rot[:, j] = swing
            continue
        fit, conditioning = kabsch_rotation(rest_dir, src_dir)
        fit = np.where((conditioning > 1e-3)[:, None, None], fit, swing)
        pair = _mirror_pair([point_names[d] for d in found])
        if pair is not None:
            left, right = found[pair[0]], found[pair[1]]
            others = [i for i in range(len(found)) if i not in pair]
            frame, ok = _frame_rotation(points[left] - points[right], rest_dir,
                                        source[:, mapped[left]] - source[:, mapped[right]], src_dir, others)
            fit = np.where(ok[:, None, None], frame, fit)
        rot[:, j] = fit
    for fore, hand in TWIST_SHARING:
        if fore in body.joint_names and hand in body.joint_names:
            f, h = body.joint_names.index(fore), body.joint_names.index(hand)
            if len(targets.get(h, [])) >= 2:
                rot[:, f] = _share_twist(rot[:, f], rot[:, h], _unit(points[h] - points[f]))
    return rot


def retarget(
    motion: Motion,
    body: BodyModel,
    *,
    mapping: JointMapping | None = None,
    shape: int = 0,
    scale: float | str = "auto",
    min_bone: float = 0.01,
) -> Retargeted:
    """Retarget a joint-position motion onto the body's rig and skin the mesh.

    Args:
        motion: a :class:`skeletok.data.motion.core.Motion` (``joint_names``, ``positions (t, j, 3)`` metres, Z-up).
        body: the body model (see :class:`skeletok.data.body.model.BodyModel`).
        mapping: renames the motion's joints to the rig's names (``mapping.apply(motion)``); ``None`` when the
            motion already uses them. Joints the rig lacks are ignored; the root (``Hips``) must be present.
        shape: body shape index in ``[0, body.num_shapes)``.
        scale: factor applied to the motion's root trajectory, or ``"auto"`` (leg length ratio, body / source).
        min_bone: distance (metres) under which a joint counts as sitting on its ancestor (see module doc).

    Returns:
        A :class:`Retargeted` with the skinned vertices, rig joints, rotations and root translation.

    Raises:
        ValueError: on missing root joint, bad positions, duplicate names, bad shape index or bad scale.
    """
    if mapping is not None:
        motion = mapping.apply(motion)
    names = [str(n) for n in getattr(motion, "joint_names", ())]
    try:
        source = np.asarray(getattr(motion, "positions"), dtype=np.float64)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"motion must have positions of shape (t, j, 3), got {type(motion).__name__}") from exc
    if source.ndim != 3 or source.shape[1:] != (len(names), 3) or len(source) == 0:
        raise ValueError(f"motion.positions must have shape (t, {len(names)}, 3) with t >= 1 (one column per "
                         f"joint name), got {source.shape}")
    if not np.isfinite(source).all():
        raise ValueError(f"motion.positions must be finite, got {int((~np.isfinite(source)).sum())} NaN/inf values")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"motion.joint_names must be unique, got duplicates {dup}")
    rest_pose = body.rest_pose(shape)[1].astype(np.float64)
    mapped = {k: names.index(n) for k, n in enumerate(body.joint_names) if n in names}
    # bone tails given as '<joint>_End' landmarks become extra points (children of their joint) that orient leaves
    parents, points, point_names = [int(p) for p in body.parents], [rest_pose], list(body.joint_names)
    for j, n in enumerate(body.joint_names):
        if f"{n}{TAIL_SUFFIX}" in names:
            mapped[len(parents)] = names.index(f"{n}{TAIL_SUFFIX}")
            parents.append(j)
            points.append(body.joint_tails[shape, j][None].astype(np.float64))
            point_names.append(f"{n}{TAIL_SUFFIX}")
    points = np.concatenate(points)
    root = body.joint_names[0]
    if 0 not in mapped:
        raise ValueError(f"motion.joint_names must contain the rig root {root!r} (after mapping), got {names}")
    if not (scale == "auto" or (isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0)):
        raise ValueError(f"scale must be 'auto' or a positive number, got {scale!r}")

    targets = _effective_targets(parents, points, source, mapped, min_bone)
    rot = _solve_rotations(body, points, point_names, source, mapped, targets)
    factor = _auto_scale(body, points, source, mapped, targets) if scale == "auto" else float(scale)
    translation = factor * source[:, mapped[0]] - rest_pose[0]
    vertices, joints = body.pose(rot, translation, shape)
    bones = (body.joint_tails[shape] - body.rest_joints[shape]).astype(np.float64)
    tails = joints + np.einsum("tkab,kb->tka", rot, bones)
    return Retargeted(
        vertices=vertices,
        joints=joints,
        joint_tails=tails.astype(np.float32),
        global_rotations=rot.astype(np.float32),
        root_translation=translation.astype(np.float32),
        shape=int(shape),
        scale=factor,
    )
