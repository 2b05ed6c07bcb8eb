"""Skeletok's body fitted to Human3.6M joints: the dense and fine levels of a Human3.6M file without SMPL.

Human3.6M's 32 joints (VideoPose3D's order, :data:`H36M_32_NAMES`, :data:`H36M_32_PARENTS`; the 17 of
``H36M_17`` are :data:`H36M_32_TO_17`) become a :class:`~skeletok.data.motion.Motion` that the retargeting of
``from-mocap`` (:func:`~skeletok.data.motion.retarget.retarget`, joint mapping :data:`H36M_MAPPING`) poses
skeletok's committed CC0 body with; the body is sized to the subject (:func:`choose_body_shape`), its 16 bones
are given the file's lengths, and the 48/96 levels are taken from the posed mesh (:func:`fit_body_to_h36m`).
:mod:`skeletok.data.sets.h36m` uses it for ``levels_from="body"`` and re-exports every public name.

Shapes: ``t`` frames, ``v`` vertices, ``k`` rig joints; world metres, Z-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skeletok.data.motion.mapping import JointMapping
from skeletok.skeleton import H36M_17

__all__ = [
    "H36M_32_TO_17",
    "H36M_32_NAMES",
    "H36M_32_PARENTS",
    "H36M_MAPPING",
    "BodyFit",
    "body_and_levels",
    "to_joints17",
    "choose_body_shape",
    "fit_body_to_h36m",
]

# The 17 joints kept out of Human3.6M's 32 (VideoPose3D's remove_joints complement), H36M_17 order.
H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# Human3.6M's 32 joints in VideoPose3D's order (h36m_skeleton, whose parents these are). The 17 of H36M_32_TO_17
# carry the names of skeletok.skeleton.H36M_17; the other 15 (which VideoPose3D drops: toes, spine base,
# clavicle starts, hand landmarks) are named here by where they sit in the hierarchy.
H36M_32_NAMES = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "right_toe", "right_toe_tip",
    "left_hip", "left_knee", "left_ankle", "left_toe", "left_toe_tip",
    "spine_base", "spine", "thorax", "neck_nose", "head",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_thumb", "left_thumb_tip", "left_hand",
    "left_hand_tip",
    "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_thumb", "right_thumb_tip", "right_hand",
    "right_hand_tip",
)  # fmt: skip
H36M_32_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25,
                   26, 27, 28, 27, 30)
# Human3.6M joint -> the body's landmarks (skeletok.data.motion.mapping), chosen so that the body's own H36M-17 joints
# (skeletok.data.body.levels.SPARSE_RECIPE) land on the file's: the thorax is where both clavicles start, the
# neck_nose joint is the head bone's start and the head top its end. The toes orient the feet when present (32
# joints); the hand landmarks (thumb, hand tip), the spine base and the clavicle copies are not used.
H36M_MAPPING_TABLE: dict[str, list[str]] = {
    "pelvis": ["Hips", "LHipJoint", "RHipJoint"], "spine": ["Spine"], "thorax": ["LeftShoulder", "RightShoulder"],
    "neck_nose": ["Head"], "head": ["Head_End"],
    **{f"{side}_{joint}": [f"{rig_side}{bone}"] for side, rig_side in (("left", "Left"), ("right", "Right"))
       for joint, bone in (("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("toe", "ToeBase"),
                           ("toe_tip", "ToeBase_End"), ("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"))},
}  # fmt: skip
H36M_MAPPING = JointMapping("h36m", H36M_MAPPING_TABLE)


def to_joints17(pos: np.ndarray) -> np.ndarray:
    """The ``(t, 17, 3)`` H36M-17 joints of ``(t, 32, 3)`` or ``(t, 17, 3)`` positions (17 come back as they are)."""
    return pos[:, list(H36M_32_TO_17)] if pos.shape[1] == 32 else pos


@dataclass
class BodyFit:
    """The body retargeted onto Human3.6M joints (:func:`fit_body_to_h36m`).

    Attributes:
        dense: ``(t, 48, 3)`` dense points of the posed body, world metres.
        fine: ``(t, 96, 3)`` fine points, world metres.
        sparse: ``(t, 17, 3)`` the body's own H36M-17 joints (:data:`skeletok.data.body.levels.SPARSE_RECIPE`).
        error_mm: ``(t, 17)`` distance (millimetres) between ``sparse`` and the file's 17 joints.
        shape: the body shape used.
        scale: the size factor applied to the body (about its root, every frame, before its bones are given
            the file's lengths).
    """

    dense: np.ndarray
    fine: np.ndarray
    sparse: np.ndarray
    error_mm: np.ndarray
    shape: int
    scale: float


def body_and_levels(body, levels):
    """``(body, levels)``: the committed :class:`~skeletok.data.body.BodyModel` and its
    :class:`~skeletok.data.body.levels.BodyLevels` where ``None`` is given (loaded or built), else as given."""
    if body is None:
        from skeletok.data.body import BodyModel

        body = BodyModel.load()
    if levels is None:
        from skeletok.data.body.levels import build_levels

        levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                              body.parents, body.rest_joints[0])
    return body, levels


def _bone_lengths(joints17: np.ndarray) -> np.ndarray:
    """``(..., 16)`` lengths of the H36M-17 bones of ``(..., 17, 3)`` joints."""
    parent, child = np.array(H36M_17.parts).T
    return np.linalg.norm(joints17[..., child, :] - joints17[..., parent, :], axis=-1)


def choose_body_shape(joints17, *, body=None, levels=None) -> tuple[int, float]:
    """The body shape and size factor that best match a subject's bone lengths.

    Args:
        joints17: ``(t, 17, 3)`` the subject's H36M-17 joints (metres), any frames.
        body: the :class:`~skeletok.data.body.BodyModel` (the committed body when ``None``).
        levels: its :class:`~skeletok.data.body.levels.BodyLevels` (built when ``None``).

    Returns:
        ``(shape, scale)``: for each shape the factor ``scale`` making the sum of its 16 rest bone lengths
        equal to the subject's (medians over frames), then the shape whose scaled bones differ least from the
        subject's (mean absolute difference).
    """
    body, levels = body_and_levels(body, levels)
    source = np.median(_bone_lengths(np.asarray(joints17, np.float64)), axis=0)
    best = (np.inf, 0, 1.0)
    for shape in range(body.num_shapes):
        vertices, joints = body.rest_pose(shape)
        rest = _bone_lengths(levels.regress_sparse(joints[None].astype(np.float64), vertices[None])[0])
        scale = float(source.sum() / rest.sum())
        cost = float(np.abs(source - scale * rest).mean())
        if cost < best[0]:
            best = (cost, shape, scale)
    return best[1], best[2]


def _stretch_to_bones(joints, vertices, body_sparse, source17, body, levels):
    """Move the posed body so its H36M-17 bones take the source's lengths (per frame), in the body's directions.

    The body's joints ``J (t, 17, 3)`` become ``J'``: from the pelvis outwards, ``J'_c = J'_p + |S_c - S_p|
    (J_c - J_p) / |J_c - J_p|`` (``S`` the source joints). Every rig joint and vertex then moves like the point of
    its H36M bone (the part of its rig bone, :func:`skeletok.data.body.levels._rig_parts`) it projects to: the
    displacement of the bone's start plus the projection's fraction along the bone (clipped to [0, 1]) times the
    difference of the end's and start's displacements, blended over a vertex's skinning weights. Bones stretch
    along their length; flesh keeps its thickness.

    Returns:
        ``(joints (t, k, 3), vertices (t, v, 3))``, metres.
    """
    from skeletok.data.body.levels import _rig_parts

    target = body_sparse.copy()
    for parent, child in H36M_17.parts:  # breadth-first: parents first
        bone = body_sparse[:, child] - body_sparse[:, parent]
        length = np.linalg.norm(source17[:, child] - source17[:, parent], axis=-1, keepdims=True)
        target[:, child] = target[:, parent] + length * bone / np.maximum(np.linalg.norm(bone, axis=-1,
                                                                                           keepdims=True), 1e-9)
    moved = target - body_sparse  # (t, 17, 3)
    bones = np.asarray(levels.part_bones)  # (p, 2) (parent, child) joint of each part
    rig_part = _rig_parts(list(body.joint_names), body.parents, H36M_17)  # (k,)
    start, end = body_sparse[:, bones[:, 0]], body_sparse[:, bones[:, 1]]  # (t, p, 3)
    axis = end - start
    axis = axis / np.maximum((axis * axis).sum(-1, keepdims=True), 1e-12)
    d0, d1 = moved[:, bones[:, 0]], moved[:, bones[:, 1]]

    def shift(points, part):  # points (t, n, 3) on parts (n,) -> displacement (t, n, 3)
        frac = np.clip(((points - start[:, part]) * axis[:, part]).sum(-1, keepdims=True), 0.0, 1.0)
        return d0[:, part] + frac * (d1[:, part] - d0[:, part])

    new_joints = joints + shift(joints, rig_part)
    # a vertex's influences on rig bones of one part move alike: merge their weights, then move each vertex once
    # per part it has (most have one)
    parts = rig_part[body.skin_index.astype(np.int64)]  # (v, m)
    weights = body.skin_weight.astype(vertices.dtype)
    for i in range(parts.shape[1]):
        for j in range(i):
            same = (parts[:, i] == parts[:, j]) & (weights[:, i] > 0)
            weights[same, j] += weights[same, i]
            weights[same, i] = 0.0
    new_vertices = np.array(vertices)
    for i in range(parts.shape[1]):
        rows = np.flatnonzero(weights[:, i] > 0)
        if len(rows):
            new_vertices[:, rows] += weights[rows, i, None] * shift(vertices[:, rows], parts[rows, i])
    return new_joints, new_vertices


def fit_body_to_h36m(positions, *, body=None, levels=None, shape: int | None = None, scale: float | None = None,
                     proportions: bool = True, name: str = "h36m", fps: float = 50.0, chunk: int = 512) -> BodyFit:
    """Retarget the body onto Human3.6M joints and take its dense/fine levels.

    The joints become a :class:`~skeletok.data.motion.Motion` (:data:`H36M_32_NAMES`, or the H36M-17 names for
    17-joint files) retargeted with :func:`~skeletok.data.motion.retarget.retarget` and :data:`H36M_MAPPING` (the
    root follows the file's pelvis, unscaled); the posed body is then scaled by ``scale`` about its root and
    translated so that its pelvis (the mid-point of its hips) sits on the file's pelvis, every frame. With
    ``proportions`` its 16 H36M bones are then given the file's lengths, frame by frame, in the body's own
    directions (:func:`_stretch_to_bones`: bones stretch along their length, flesh keeps its thickness). The
    retargeting matches bone directions, not joint positions: ``error_mm`` measures what is left, mostly
    where the torso's landmarks sit differently on the body and in the file (thorax, neck_nose, head top; the
    arms then inherit the thorax's offset). Legs match to a fraction of a millimetre.

    Args:
        positions: ``(t, 32, 3)`` or ``(t, 17, 3)`` world metres, Z-up.
        body: the body model (committed body when ``None``).
        levels: its levels (built when ``None``).
        shape: body shape index; :func:`choose_body_shape` on these frames when ``None``.
        scale: body size factor; :func:`choose_body_shape` on these frames when ``None``.
        proportions: give the body's bones the file's lengths (default); ``False`` keeps the body's
            proportions (one shape, one size factor).
        name: the sequence name (for messages).
        fps: frame rate (recorded on the motion only).
        chunk: frames retargeted and skinned at once (memory: about ``chunk * 0.5`` MB). About 120 frames/s
            on one CPU core.

    Returns:
        :class:`BodyFit`.
    """
    from skeletok.data.motion import Motion
    from skeletok.data.motion.retarget import retarget

    body, levels = body_and_levels(body, levels)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] not in ((32, 3), (17, 3)) or len(positions) == 0:
        raise ValueError(f"{name}: positions must have shape (t >= 1, 32 or 17, 3), got {positions.shape}")
    joints17 = to_joints17(positions)
    if shape is None or scale is None:
        chosen = choose_body_shape(joints17, body=body, levels=levels)
        shape = chosen[0] if shape is None else shape
        scale = chosen[1] if scale is None else scale
    names, parents = ((H36M_32_NAMES, H36M_32_PARENTS) if positions.shape[1] == 32
                      else (H36M_17.joint_names, H36M_17.parents))
    motion = Motion(name, list(names), np.array(parents), positions, fps)
    sparse, dense, fine = [], [], []
    for start in range(0, len(positions), chunk):
        part = motion.frames(start, min(start + chunk, len(positions))) if len(positions) > chunk else motion
        posed = retarget(part, body, mapping=H36M_MAPPING, shape=shape, scale=1.0)
        root = posed.joints[:, :1]  # float32 (mm precision), as the skinned vertices
        joints = root + scale * (posed.joints - root)
        vertices = root + scale * (posed.vertices - root)
        lv = levels.levels(joints, vertices)
        source = joints17[start:start + len(root)]
        if proportions:
            shift = source[:, :1] - lv[0][:, :1]
            joints, vertices = _stretch_to_bones(joints + shift, vertices + shift, lv[0] + shift, source, body,
                                                 levels)
            lv = levels.levels(joints, vertices)
        shift = source[:, :1] - lv[0][:, :1]  # body pelvis onto the file's pelvis
        for out, level in zip((sparse, dense, fine), lv):
            out.append(level + shift)
    sparse, dense, fine = (np.concatenate(x) for x in (sparse, dense, fine))
    error = 1000.0 * np.linalg.norm(sparse - joints17, axis=-1)
    return BodyFit(dense=dense, fine=fine, sparse=sparse, error_mm=error, shape=int(shape), scale=float(scale))
