"""Joint-position arrays (``.npy`` / ``.npz``) as motions, and the holosoma mocap joint table.

Shapes: ``t`` frames, ``j`` joints, ``c`` = 3 coordinates.

An ``.npz`` may hold ``positions (t, j, 3)`` (or a single array), ``joint_names (j,)`` (or ``names``),
``parents (j,)``, ``fps ()``, ``action ()`` and ``name ()``; arguments override what the file holds.
Parents, when neither given nor stored, come from a known joint table (:data:`HOLOSOMA_PARENTS`
or the canonical CMU MotionBuilder tree of :mod:`skeletok.data.mapping`) whose names cover the joints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skeletok.data.bvh import UNITS
from skeletok.data.motion import Motion, y_up_to_z_up

__all__ = ["HOLOSOMA_JOINTS", "HOLOSOMA_PARENTS", "parents_from_table", "read_positions", "write_positions"]

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
    from skeletok.data.mapping import CANONICAL_PARENTS

    for table in (HOLOSOMA_PARENTS, CANONICAL_PARENTS):
        par = parents_from_table(names, table)
        if par is not None:
            return par
    return None


def _scalar(z, key):
    if key not in z.files:
        return None
    v = z[key]
    return v.item() if v.ndim == 0 else v


def read_positions(
    path: str | Path,
    names: list[str] | None = None,
    *,
    parents=None,
    fps: float | None = None,
    up: str = "z",
    unit: str | float = "m",
    name: str | None = None,
    action: str | None = None,
) -> Motion:
    """Read a ``(t, j, 3)`` joint-position array from ``.npy`` or ``.npz``.

    Args:
        path: the array file.
        names: ``j`` joint names (default: the file's ``joint_names``/``names``).
        parents: ``(j,)`` parent indices (default: the file's, else a known joint table).
        fps: frame rate (default: the file's ``fps``; required for ``.npy``).
        up: ``"z"`` or ``"y"``: the array's up axis (Y-up is rotated to Z-up).
        unit: a name in :data:`skeletok.data.bvh.UNITS` or metres per unit.
        name: motion name (default: the file's ``name`` or the file stem).
        action: action label (default: the file's ``action``).

    Raises:
        ValueError: naming the file and the field that is missing, mis-shaped or not finite.
    """
    path = Path(path)
    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    scale = UNITS.get(unit) if isinstance(unit, str) else float(unit)
    if scale is None or not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"unit must be one of {list(UNITS)} or a positive float, got {unit!r}")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read array file ({e})") from None
    if isinstance(z, np.ndarray):
        pos = z
    else:
        with z:
            key = "positions" if "positions" in z.files else (z.files[0] if len(z.files) == 1 else None)
            if key is None:
                raise ValueError(f"{path}: field 'positions' missing (fields: {z.files})")
            pos = z[key]
            names = names if names is not None else _scalar(z, "joint_names")
            names = names if names is not None else _scalar(z, "names")
            parents = parents if parents is not None else _scalar(z, "parents")
            fps = fps if fps is not None else _scalar(z, "fps")
            action = action if action is not None else _scalar(z, "action")
            name = name if name is not None else _scalar(z, "name")
    if pos.ndim != 3 or pos.shape[2] != 3 or pos.shape[0] < 1 or not np.issubdtype(pos.dtype, np.number):
        raise ValueError(f"{path}: field 'positions' must be a numeric (t, j, 3) array, got {pos.dtype} {pos.shape}")
    j = pos.shape[1]
    if names is None:
        raise ValueError(f"{path}: no joint names stored; pass names= ({j} names)")
    names = [str(n) for n in np.asarray(names).reshape(-1)]
    if len(names) != j:
        raise ValueError(f"{path}: field 'joint_names' has {len(names)} names for {j} joints")
    if parents is None:
        parents = _known_parents(names)
        if parents is None:
            raise ValueError(f"{path}: no parents stored and the joint names match no known table; pass parents=")
    if fps is None:
        raise ValueError(f"{path}: no frame rate stored; pass fps=")
    pos = pos.astype(np.float64) * scale
    if up == "y":
        pos = y_up_to_z_up(pos)
    try:
        return Motion(str(name) if name is not None else path.stem, names, np.asarray(parents), pos.astype(np.float32),
                      float(fps), None if action is None else str(action))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def write_positions(path: str | Path, motion: Motion) -> None:
    """Write ``motion`` as an ``.npz`` that :func:`read_positions` reads back unchanged (float32, metres, Z-up)."""
    extra = {} if motion.action is None else {"action": np.array(motion.action)}
    np.savez_compressed(path, positions=motion.positions, joint_names=np.array(motion.joint_names),
                        parents=motion.parents, fps=np.array(motion.fps), name=np.array(motion.name), **extra)
