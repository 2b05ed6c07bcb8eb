"""BVH (Biovision hierarchy) motion: forward kinematics, up axis and unit, and the reader into a Motion.

Shapes: ``t`` frames, ``j`` joints, ``e`` end sites, ``c`` channels per frame. The text of the file (parse and
write, with its repairs and errors) is :mod:`skeletok.data.motion.bvh_file`, whose names are also importable from
here.

Conventions (documented because BVH files disagree):

- Rotation channels compose in the order listed: ``Zrotation Xrotation Yrotation`` gives
  ``R = Rz @ Rx @ Ry`` (column vectors), angles in degrees. Any order is accepted.
- Position channels (on any joint) give that joint's local translation along their axes, replacing
  the ``OFFSET`` component (as Blender and most exporters do; the root's ``OFFSET`` is zero in practice,
  where both conventions agree). Axes without a position channel keep the ``OFFSET`` value.
- ``End Site`` blocks become extra joints named ``<parent>_End`` after the regular joints.
- ``up="auto"``: when the joint names map onto the body landmarks (:mod:`skeletok.data.motion.mapping`), the up
  axis is the one the rest pose's feet-to-head direction points along (+Y or +Z; anything else is refused
  with the fix). Otherwise it is whichever of Y and Z the rest pose (offsets only) is less mirror
  symmetric along (a body is left-right symmetric and nearly front-back symmetric, never head-foot);
  Y (the BVH convention) on a tie. Y-up is rotated to Z-up by ``(x, y, z) -> (x, -z, y)``. After the
  conversion a body that is not upright in most frames gives a :class:`~skeletok.errors.MotionWarning`
  (a lying or crawling take is fine; a wrong axis is not), as does an explicit ``up`` that leaves the rest
  pose not upright.
- ``unit="auto"``: the size ``s`` of the rest pose (longest side of its bounding box, file units) is
  matched to a 1.7 m human in log scale among metres, CMU units (0.0254 / 0.45 m), inches,
  centimetres and millimetres; i.e. ``s < 7.16`` m, ``< 44.9`` cmu, ``< 106.7`` inch, ``< 537.6`` cm, else mm.

Checked once against bvhtoolbox 0.1.3's own world positions (``bvh2csv``) on its two example files:
equal within 2e-5 file units (float32 rounding).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from skeletok.data.motion.bvh_file import CHANNELS, BvhSkeleton, parse_bvh, write_bvh
from skeletok.data.motion.core import Motion, axis_rotation, y_up_to_z_up
from skeletok.errors import MotionWarning, file_errors

__all__ = ["bvh_forward_kinematics", "read_bvh", "UNITS", "detect_unit", "detect_up"]
# also importable from here, as before the split (documented in skeletok.data.motion.bvh_file): BvhSkeleton,
# parse_bvh, write_bvh

#: metres per file unit for the named units (``cmu``: the CMU ASF length unit, 1 / 0.45 inch).
UNITS = {"m": 1.0, "cmu": 0.0254 / 0.45, "inch": 0.0254, "cm": 0.01, "mm": 0.001}
_HUMAN_SIZE_M = 1.7
_CHUNK = 4096


def bvh_forward_kinematics(skel: BvhSkeleton, frames: np.ndarray) -> np.ndarray:
    """World positions of the joints then the end sites, in file units and axes.

    Args:
        skel: the hierarchy.
        frames: ``(t, c)`` channel values (degrees for rotations).

    Returns:
        ``(t, j + e, 3)`` float64 positions.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != skel.num_channels:
        raise ValueError(f"frames must have shape (t, {skel.num_channels}), got {frames.shape}")
    if len(frames) > _CHUNK:  # bound the (t, j, 3, 3) rotation buffer on long takes
        return np.concatenate([bvh_forward_kinematics(skel, frames[k:k + _CHUNK]) for k in range(0, len(frames), _CHUNK)])
    t, j = frames.shape[0], len(skel.names)
    rot = np.empty((t, j, 3, 3))
    pos = np.empty((t, j, 3))
    col = 0
    for i in range(j):
        local_t = np.broadcast_to(skel.offsets[i], (t, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (t, 3, 3)).copy()
        for ch in skel.channels[i]:
            axis, kind = CHANNELS[ch]
            if kind == "position":
                local_t[:, "xyz".index(axis)] = frames[:, col]
            else:
                local_r = local_r @ axis_rotation(axis, np.deg2rad(frames[:, col]))
            col += 1
        p = skel.parents[i]
        if p < 0:
            rot[:, i], pos[:, i] = local_r, local_t
        else:
            rot[:, i] = rot[:, p] @ local_r
            pos[:, i] = pos[:, p] + np.einsum("tab,tb->ta", rot[:, p], local_t)
    ends = pos[:, skel.end_sites] + np.einsum("teab,eb->tea", rot[:, skel.end_sites], skel.end_offsets)
    return np.concatenate([pos, ends], axis=1)


def _rest_points(skel: BvhSkeleton) -> np.ndarray:
    pts = np.zeros((len(skel.names), 3))
    for i, p in enumerate(skel.parents):
        pts[i] = skel.offsets[i] + (pts[p] if p >= 0 else 0.0)
    ends = pts[skel.end_sites] + skel.end_offsets if len(skel.end_sites) else np.zeros((0, 3))
    return np.concatenate([pts, ends]) - pts[0]


def detect_up(skel: BvhSkeleton) -> str:
    """``"y"`` or ``"z"``: the axis the rest pose is least mirror-symmetric along (module docstring)."""
    pts = _rest_points(skel)
    asym = []
    for a in (1, 2):
        v = np.sort(pts[:, a])
        asym.append(float(np.abs(v + v[::-1]).mean()))
    return "z" if asym[1] > asym[0] * (1 + 1e-9) else "y"


def detect_unit(skel: BvhSkeleton) -> str:
    """Name in :data:`UNITS` that makes the rest pose closest to 1.7 m (module docstring)."""
    pts = _rest_points(skel)
    size = float((pts.max(0) - pts.min(0)).max()) if len(pts) > 1 else 0.0
    if size <= 0:
        return "m"
    return min(UNITS, key=lambda u: abs(np.log(size * UNITS[u] / _HUMAN_SIZE_M)))


def _names(skel: BvhSkeleton) -> list[str]:
    """Joint names, then ``<parent>_End`` per end site (``_End2``, ... where that name is taken)."""
    names = list(skel.names)
    taken = set(names)
    for p in skel.end_sites:
        base = f"{skel.names[p]}_End"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        taken.add(name)
        names.append(name)
    return names


def read_bvh(
    path: str | Path,
    *,
    up: str = "auto",
    unit: str | float = "auto",
    end_sites: bool = True,
    name: str | None = None,
    action: str | None = None,
    mapping=None,
) -> Motion:
    """Read a BVH file into joint positions (metres, Z-up).

    Args:
        path: the ``.bvh`` file.
        up: ``"auto"``, ``"y"`` or ``"z"``: the file's up axis (see the module docstring for ``auto``).
        unit: ``"auto"``, a name in :data:`UNITS` (``"m"``, ``"cm"``, ``"mm"``, ``"inch"``, ``"cmu"``) or
            metres per file unit as a float.
        end_sites: append the end sites as joints named ``<parent>_End``.
        name: the motion name (default: the file stem).
        action: the action label, if known.
        mapping: the joint mapping (preset name, JSON path, dict or
            :class:`~skeletok.data.motion.mapping.JointMapping`) that finds the feet and the head for ``up="auto"``
            and the upright check (default: the best preset for the joint names).

    Returns:
        A :class:`~skeletok.data.motion.core.Motion` with ``fps = 1 / frame_time``, rounded to the nearest
        integer when within 0.1% of it (frame times are written with few digits).

    Raises:
        ValueError: on bad ``up``/``unit``/``mapping`` arguments.
        MotionFileError: (a ``ValueError``) on malformed files (file and line named) or an up axis that
            ``"auto"`` cannot tell (pass ``up``).

    Warns:
        MotionWarning: repairs of the file (:mod:`skeletok.data.motion.bvh_file`), a body that is not upright,
            a rest pose whose size in metres is not a person's.
    """
    from skeletok.data.motion.mapping import get_mapping
    from skeletok.data.motion.upright import choose_up, landmark_up

    if up not in ("auto", "y", "z"):
        raise ValueError(f"up must be 'auto', 'y' or 'z', got {up!r}")
    if isinstance(unit, str):
        if unit != "auto" and unit not in UNITS:
            raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive float, got {unit!r}")
    elif not (isinstance(unit, (int, float)) and np.isfinite(unit) and unit > 0):
        raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive float, got {unit!r}")
    mapping = get_mapping(mapping) if mapping is not None else None
    path = Path(path)
    skel, frames, frame_time = parse_bvh(path)
    with file_errors(path, what="BVH file"), np.errstate(over="ignore", invalid="ignore"):
        names = _names(skel)
        rest = _rest_points(skel)
        given = up
        up = choose_up(landmark_up(rest, names, mapping), up, path, "rest pose")
        if up is None:
            up = detect_up(skel)
        unit = detect_unit(skel) if unit == "auto" else unit
        scale = UNITS[unit] if isinstance(unit, str) else float(unit)
        size = float((rest.max(0) - rest.min(0)).max()) * scale if len(rest) > 1 else 0.0
        if not 0.25 <= size <= 5.0:
            warnings.warn(f"{path}: the rest pose is {size:.3g} m tall or wide with unit={unit!r}, not a person's "
                          "size: check the file's unit (--unit m|cm|mm|inch)", MotionWarning, stacklevel=2)
        pos = bvh_forward_kinematics(skel, frames) * scale
        if up == "y":
            pos = y_up_to_z_up(pos)
        direction = landmark_up(pos, names, mapping)
        if direction is not None and direction[2] < 0.5 and not (given != "auto" and up != given):
            tilt = float(np.degrees(np.arccos(np.clip(direction[2], -1.0, 1.0))))
            warnings.warn(f"{path}: the body is not upright in most frames (its feet-to-head direction is {tilt:.0f} "
                          f"degrees from vertical with up={up!r}). Fine for a lying or crawling take; otherwise pass "
                          "the file's up axis (--up y|z)", MotionWarning, stacklevel=2)
        parents = np.concatenate([skel.parents, skel.end_sites])
        if not end_sites:
            names, parents, pos = names[: len(skel.names)], parents[: len(skel.names)], pos[:, : len(skel.names)]
        fps = 1.0 / frame_time
        if abs(fps - round(fps)) < 1e-3 * fps:  # "Frame Time: 0.033333" means 30 fps
            fps = float(round(fps))
        return Motion(name or path.stem, names, parents, pos.astype(np.float32), fps, action)
