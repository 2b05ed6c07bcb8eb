"""Joint-position arrays (``.npy`` / ``.npz``) as motions, and the holosoma mocap joint table.

Shapes: ``t`` frames, ``j`` joints, ``c`` = 3 coordinates.

An ``.npz`` may hold ``positions (t, j, 3)`` (or a single array), ``joint_names (j,)`` (or ``names``),
``parents (j,)``, ``fps ()``, ``action ()``, ``name ()``, ``up ()`` (``"y"``/``"z"``) and ``unit ()`` (a
name in :data:`skeletok.data.motion.bvh.UNITS` or metres per unit); arguments override what the file holds.
Parents, when neither given nor stored, come from a known joint table (:data:`HOLOSOMA_PARENTS`,
:data:`SMPL_PARENTS` or the canonical CMU MotionBuilder tree of :mod:`skeletok.data.motion.mapping`) whose names
cover the joints.

Up axis and unit, when neither given nor stored (``"auto"``): the up axis is the one the median feet-to-head
direction over the frames points along (+Y or +Z), found through the joint mapping
(:func:`skeletok.data.motion.upright.choose_up`); a body that is not clearly upright, or joint names no mapping
knows, is refused with the fix (pass ``up``, ``--up``). The unit makes the median body size (longest side
of each frame's bounding box) closest to 1.7 m among metres, centimetres and millimetres. Errors are
:class:`~skeletok.errors.MotionFileError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from skeletok.data.motion.bvh import UNITS
from skeletok.data.motion.core import Motion, y_up_to_z_up
from skeletok.errors import MotionFileError, MotionWarning, file_errors

__all__ = ["HOLOSOMA_JOINTS", "HOLOSOMA_PARENTS", "SMPL_JOINTS", "SMPL_PARENTS", "parents_from_table", "read_positions",
           "write_positions"]

_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")

#: The 53 joints of holosoma_retargeting's ``MOCAP_DEMO_JOINTS`` (config_types/data_type.py, v0.1.0),
#: the column order of its climbing ``*_joint_positions_*.npy`` arrays.
HOLOSOMA_JOINTS: list[str] = (
    ["Hips", "Spine", "Spine1", "Neck", "Head"]
    + [n for s in ("Left", "Right") for n in [f"{s}Shoulder", f"{s}Arm", f"{s}ForeArm", f"{s}Hand"]
       + [f"{s}Hand{f}{k}" for f in _FINGERS for k in (1, 2, 3)]]
    + [f"{s}{b}" for s in ("Left", "Right") for b in ("UpLeg", "Leg", "Foot", "ToeBase")]
    + ["LeftFootMod", "RightFootMod"]
)

#: Parent of each holosoma joint (a Mixamo-like tree; ``*FootMod`` duplicates the ankle).
HOLOSOMA_PARENTS: dict[str, str | None] = {"Hips": None, "Spine": "Hips", "Spine1": "Spine", "Neck": "Spine1", "Head": "Neck"}
for _s in ("Left", "Right"):
    HOLOSOMA_PARENTS |= {f"{_s}Shoulder": "Spine1", f"{_s}Arm": f"{_s}Shoulder", f"{_s}ForeArm": f"{_s}Arm",
                         f"{_s}Hand": f"{_s}ForeArm"}
    for _f in _FINGERS:
        HOLOSOMA_PARENTS |= {f"{_s}Hand{_f}1": f"{_s}Hand", f"{_s}Hand{_f}2": f"{_s}Hand{_f}1",
                             f"{_s}Hand{_f}3": f"{_s}Hand{_f}2"}
    HOLOSOMA_PARENTS |= {f"{_s}UpLeg": "Hips", f"{_s}Leg": f"{_s}UpLeg", f"{_s}Foot": f"{_s}Leg", f"{_s}ToeBase": f"{_s}Foot",
                         f"{_s}FootMod": f"{_s}Foot"}


#: The 24 SMPL joints in SMPL order (the ``smplx`` package's names).
SMPL_JOINTS: list[str] = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
]
#: Parent of each SMPL joint (the SMPL kinematic tree).
SMPL_PARENTS: dict[str, str | None] = dict(zip(SMPL_JOINTS, [None] + [SMPL_JOINTS[p] for p in (
    0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)]))

#: Units an array's size is matched against for ``unit="auto"``.
_ARRAY_UNITS = ("m", "cm", "mm")
_HUMAN_SIZE_M = 1.7


def parents_from_table(names: list[str], table: dict[str, str | None]) -> np.ndarray | None:
    """Parent indices of ``names`` from a name -> parent-name table (nearest listed ancestor).

    Returns:
        ``(j,)`` int64 parents, or ``None`` when a name is missing from the table.
    """
    if any(n not in table for n in names):
        return None
    pos = {n: i for i, n in enumerate(names)}
    out = []
    for n in names:
        p = table[n]
        while p is not None and p not in pos:
            p = table.get(p)
        out.append(pos[p] if p is not None else -1)
    return np.array(out, dtype=np.int64)


def _known_parents(names: list[str]) -> np.ndarray | None:
    from skeletok.data.motion.presets import CANONICAL_PARENTS

    for table in (HOLOSOMA_PARENTS, SMPL_PARENTS, CANONICAL_PARENTS):
        par = parents_from_table(names, table)
        if par is not None:
            return par
    return None


def _scalar(z, key):
    if key not in z.files:
        return None
    v = z[key]
    return v.item() if v.ndim == 0 else v


def _check_unit(unit) -> float | None:
    if unit == "auto":
        return None
    scale = UNITS.get(unit) if isinstance(unit, str) else unit
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (int, float, np.number)) or not (
            np.isfinite(scale) and scale > 0):
        raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive number of metres per unit, "
                         f"got {unit!r}")
    return float(scale)


def read_positions(
    path: str | Path,
    names: list[str] | None = None,
    *,
    parents=None,
    fps: float | None = None,
    up: str = "auto",
    unit: str | float = "auto",
    name: str | None = None,
    action: str | None = None,
    mapping=None,
) -> Motion:
    """Read a ``(t, j, 3)`` joint-position array from ``.npy`` or ``.npz``.

    Args:
        path: the array file.
        names: ``j`` joint names (default: the file's ``joint_names``/``names``).
        parents: ``(j,)`` parent indices (default: the file's, else a known joint table).
        fps: frame rate (default: the file's ``fps``; required for ``.npy``).
        up: ``"auto"``, ``"z"`` or ``"y"``: the array's up axis (Y-up is rotated to Z-up); ``"auto"`` takes the
            file's ``up`` field, else detects it (module docstring).
        unit: ``"auto"``, a name in :data:`skeletok.data.motion.bvh.UNITS` or metres per unit; ``"auto"`` takes the
            file's ``unit`` field, else detects it (module docstring).
        name: motion name (default: the file's ``name`` or the file stem).
        action: action label (default: the file's ``action``).
        mapping: the joint mapping that finds the feet and the head for ``up="auto"`` and the upright check
            (default: the best preset for the joint names).

    Raises:
        ValueError: on bad ``up``/``unit``/``mapping`` arguments.
        MotionFileError: (a ``ValueError``) naming the file and the field that is missing, mis-shaped or not
            finite, or an up axis or unit that cannot be detected (the message says what to pass).
    """
    from skeletok.data.motion.mapping import get_mapping
    from skeletok.data.motion.upright import choose_up, landmark_up

    path = Path(path)
    if up not in ("auto", "y", "z"):
        raise ValueError(f"up must be 'auto', 'y' or 'z', got {up!r}")
    scale = _check_unit(unit)
    mapping = get_mapping(mapping) if mapping is not None else None
    with file_errors(path, what="array file"), np.errstate(over="ignore", invalid="ignore"):
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - numpy raises many types (OSError, EOFError, BadZipFile, ...)
            raise MotionFileError(path, f"cannot read array file ({type(e).__name__}: {e})") from None
        stored_up = stored_unit = None
        if isinstance(z, np.ndarray):
            pos = z
        else:
            with z:
                key = "positions" if "positions" in z.files else (z.files[0] if len(z.files) == 1 else None)
                if key is None:
                    raise MotionFileError(path, f"field 'positions' missing (fields: {z.files})")
                pos = z[key]
                names = names if names is not None else _scalar(z, "joint_names")
                names = names if names is not None else _scalar(z, "names")
                parents = parents if parents is not None else _scalar(z, "parents")
                fps = fps if fps is not None else _scalar(z, "fps")
                action = action if action is not None else _scalar(z, "action")
                name = name if name is not None else _scalar(z, "name")
                stored_up, stored_unit = _scalar(z, "up"), _scalar(z, "unit")
        if (pos.ndim != 3 or pos.shape[2] != 3 or pos.shape[0] < 1 or pos.shape[1] < 1
                or not (np.issubdtype(pos.dtype, np.floating) or np.issubdtype(pos.dtype, np.integer))):
            raise MotionFileError(path, f"field 'positions' must be a numeric (t, j, 3) array with t, j >= 1, got "
                                        f"{pos.dtype} {pos.shape}")
        j = pos.shape[1]
        if names is None:
            raise MotionFileError(path, f"no joint names stored; pass names= ({j} names)")
        names = [str(n) for n in np.asarray(names).reshape(-1)]
        if len(names) != j:
            raise MotionFileError(path, f"field 'joint_names' has {len(names)} names for {j} joints")
        if parents is None:
            parents = _known_parents(names)
            if parents is None:
                raise MotionFileError(path, "no parents stored and the joint names match no known table; pass "
                                            "parents= (or store a 'parents' field)")
        if fps is None:
            raise MotionFileError(path, "no frame rate stored; pass fps=")
        pos = pos.astype(np.float64)
        if not np.isfinite(pos).all():
            raise MotionFileError(path, f"field 'positions' has {int((~np.isfinite(pos)).sum())} NaN/inf value(s)")
        if up == "auto" and stored_up is not None:
            if str(stored_up) not in ("y", "z"):
                raise MotionFileError(path, f"field 'up' must be 'y' or 'z', got {stored_up!r}")
            up = str(stored_up)
        if scale is None and stored_unit is not None:
            try:
                scale = _check_unit(stored_unit if not isinstance(stored_unit, str) or stored_unit in UNITS
                                    else float(stored_unit))
            except ValueError:
                raise MotionFileError(path, f"field 'unit' must be one of {list(UNITS)} or a positive number, "
                                            f"got {stored_unit!r}") from None
        if scale is None:
            extent = np.median((pos.max(axis=1) - pos.min(axis=1)).max(axis=-1))
            if not extent > 0:
                raise MotionFileError(path, "all joints sit on one point in every frame; not a body")
            scale = UNITS[min(_ARRAY_UNITS, key=lambda u: abs(np.log(extent * UNITS[u] / _HUMAN_SIZE_M)))]
        direction = landmark_up(pos, names, mapping)
        picked = choose_up(direction, up, path, "frames")
        if picked is None:
            raise MotionFileError(path, "cannot detect the up axis: the joint names map to no known rig (no feet and "
                                        "head found); pass up='y' or 'z' (--up), and a mapping (--mapping FILE.json)")
        pos = pos * scale
        size = float(np.median((pos.max(axis=1) - pos.min(axis=1)).max(axis=-1)))
        if not 0.25 <= size <= 5.0:
            warnings.warn(f"{path}: the body is {size:.3g} m tall or wide in the median frame, not a person's size: "
                          "check the unit (--unit m|cm|mm)", MotionWarning, stacklevel=2)
        if picked == "y":
            pos = y_up_to_z_up(pos)
        return Motion(str(name) if name is not None else path.stem, names, np.asarray(parents), pos.astype(np.float32),
                      float(fps), None if action is None else str(action))


def write_positions(path: str | Path, motion: Motion) -> None:
    """Write ``motion`` as an ``.npz`` that :func:`read_positions` reads back unchanged (float32, metres, Z-up)."""
    extra = {} if motion.action is None else {"action": np.array(motion.action)}
    np.savez_compressed(path, positions=motion.positions, joint_names=np.array(motion.joint_names),
                        parents=motion.parents, fps=np.array(motion.fps), name=np.array(motion.name),
                        up=np.array("z"), unit=np.array("m"), **extra)
