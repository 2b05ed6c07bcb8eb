"""Acclaim AMC motions on ASF skeletons (the CMU motion capture database format): parse, kinematics, read, write.

Shapes: ``t`` frames, ``b`` bones (the root excluded), ``j = b + 1`` points. The skeleton file (ASF: parse and
write, its units) is :mod:`skeletok.data.motion.asf`, whose names are also importable from here.

Conventions (the Acclaim specification as the CMU files use it):

- A bone's rest ``direction`` is in world coordinates; its ``axis a b c ORDER`` defines the local
  frame ``C``. The motion of a bone is ``M = M_parent @ C @ R @ C^-1`` and its END point is
  ``end_parent + length * M @ direction``. ``R`` composes the ``dof`` rotations in the order listed,
  the first applied first (``dof rx ry rz`` gives ``Rz @ Ry @ Rx``); ``axis ... XYZ`` likewise.
- The root's AMC values follow ``:root order`` (e.g. ``TX TY TZ RX RY RZ``); its frame ``C`` comes
  from ``orientation`` and ``axis``; its position is ``position`` plus the translation.
- Each Motion point is a bone's END point (``root``: the root position). Units: ``:units length L``
  means file lengths are ``1 / L`` inches (CMU: ``L = 0.45``), so metres are ``value * 0.0254 / L``;
  angles follow ``:units angle`` unless the AMC says ``:RADIANS`` or ``:DEGREES``.
- CMU data is Y-up; it is rotated to Z-up by ``(x, y, z) -> (x, -z, y)``. ``up="auto"`` (the default) takes
  the axis the rest pose's feet-to-head direction points along when the bone names map onto the body
  landmarks (the ``cmu_asf`` preset or another, see :func:`skeletok.data.motion.upright.choose_up`), else Y.
- Errors are :class:`~skeletok.errors.MotionFileError` naming the file and the line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from skeletok.data.motion.asf import AsfSkeleton, _err, _f, _floats, read_asf, write_asf
from skeletok.data.motion.core import Motion, euler_matrix, y_up_to_z_up
from skeletok.errors import MotionFileError, MotionWarning, file_errors

__all__ = ["parse_amc", "asf_forward_kinematics", "read_amc", "write_amc"]
# also importable from here, as before the split (documented in skeletok.data.motion.asf): AsfSkeleton, read_asf,
# write_asf


def parse_amc(path: str | Path, asf: AsfSkeleton) -> tuple[dict[str, np.ndarray], bool]:
    """Read AMC frames: ``({"root": (t, len(root_order)), bone: (t, len(dofs)), ...}, degrees)``.

    Raises:
        MotionFileError: (a ``ValueError``) naming the file and line for unknown bones, wrong value counts,
            bad numbers or frames that lack a bone with dofs.
    """
    path = Path(path)
    with file_errors(path, what="AMC file"):
        return _parse_amc(path, asf)


def _parse_amc(path: Path, asf: AsfSkeleton) -> tuple[dict[str, np.ndarray], bool]:
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as e:
        raise MotionFileError(path, f"cannot read AMC file ({e})") from None
    sizes = {"root": len(asf.root_order)} | {n: len(d) for n, d in zip(asf.bone_names, asf.dofs)}
    need = {n for n, s in sizes.items() if s > 0}
    degrees, frames, cur = asf.degrees, [], None
    for no, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            degrees = {":DEGREES": True, ":RADIANS": False}.get(line.upper().split()[0], degrees)
            continue
        toks = line.split()
        if len(toks) == 1 and toks[0].isdigit():
            if cur is not None and need - set(cur):
                raise _err(path, no, f"frame {len(frames)} lacks bones {sorted(need - set(cur))}")
            cur = {}
            frames.append(cur)
            continue
        if cur is None:
            raise _err(path, no, f"expected a frame number before {toks[0]!r}")
        if toks[0] not in sizes:
            raise _err(path, no, f"unknown bone {toks[0]!r} (not in the ASF)")
        cur[toks[0]] = _floats(path, no, toks[1:], sizes[toks[0]], f"bone {toks[0]!r}")
        if len(toks) - 1 != sizes[toks[0]]:
            raise _err(path, no, f"bone {toks[0]!r} needs {sizes[toks[0]]} values, got {len(toks) - 1}")
    if not frames:
        raise MotionFileError(path, "no frames found")
    if need - set(frames[-1]):
        if len(frames) > 1:  # a cut file: drop the incomplete last frame, say so
            warnings.warn(f"{path}: line {len(lines)}: the last frame lacks bones {sorted(need - set(frames[-1]))} "
                          "(a cut file?); it is dropped", MotionWarning, stacklevel=3)
            frames.pop()
        else:
            raise MotionFileError(path, f"line {len(lines)}: the only frame lacks bones "
                                        f"{sorted(need - set(frames[-1]))}")
    out = {n: np.array([f.get(n, [0.0] * s) for f in frames], dtype=np.float64).reshape(len(frames), s) for n, s in sizes.items()}
    return out, degrees


def _acclaim_rotation(letters: list[str], values: np.ndarray, degrees: bool) -> np.ndarray:
    """Rotation applying the axes in ``letters`` first to last: ``R = R[last] @ ... @ R[first]``."""
    deg = values if degrees else np.rad2deg(values)
    return euler_matrix("".join(letters[::-1]), deg[..., ::-1])


def asf_forward_kinematics(asf: AsfSkeleton, values: dict[str, np.ndarray], degrees: bool | None = None) -> np.ndarray:
    """Root position then every bone's END point, ``(t, 1 + b, 3)`` in file units and axes."""
    degrees = asf.degrees if degrees is None else degrees
    root = np.asarray(values["root"], dtype=np.float64)
    t = root.shape[0]
    trans = np.tile(asf.root_position.astype(np.float64), (t, 1))
    rot_cols = [k for k, ch in enumerate(asf.root_order) if ch[0] == "R"]
    for k, ch in enumerate(asf.root_order):
        if ch[0] == "T":
            trans[:, "XYZ".index(ch[1])] += root[:, k]
    c_root = _acclaim_rotation(list(asf.root_axis), asf.root_orientation, asf.degrees)
    r_root = _acclaim_rotation([asf.root_order[k][1] for k in rot_cols], root[:, rot_cols], degrees)
    mats = [c_root @ r_root @ c_root.T]
    ends = [trans]
    for i, name in enumerate(asf.bone_names):
        c = _acclaim_rotation(list(asf.axis_orders[i]), asf.axes[i], asf.degrees)
        p = asf.parents[i] + 1
        if asf.dofs[i]:
            r = _acclaim_rotation([d[1].upper() for d in asf.dofs[i]], np.asarray(values[name], dtype=np.float64), degrees)
            m = mats[p] @ c @ r @ c.T
        else:
            m = np.broadcast_to(mats[p] @ c @ c.T, (t, 3, 3))
        mats.append(m)
        ends.append(ends[p] + asf.lengths[i] * np.einsum("tab,b->ta", m, asf.directions[i]))
    return np.stack(ends, axis=1)


def read_amc(
    path: str | Path,
    asf: AsfSkeleton | str | Path,
    *,
    fps: float = 120.0,
    up: str = "auto",
    unit: str | float = "auto",
    scale: float | None = None,
    name: str | None = None,
    action: str | None = None,
    mapping=None,
) -> Motion:
    """Read an AMC motion on an ASF skeleton into bone end points (metres, Z-up).

    Args:
        path: the ``.amc`` file.
        asf: the skeleton, or the path of its ``.asf`` file.
        fps: the capture rate (AMC files do not store it; CMU captured at 120 fps).
        up: the file's up axis, ``"auto"`` (module docstring), ``"y"`` (CMU) or ``"z"``.
        unit: ``"auto"`` (the ASF's ``:units length``), a name in :data:`skeletok.data.motion.bvh.UNITS` for one file
            length unit, or metres per file length unit.
        scale: metres per file length unit (an older spelling of a float ``unit``).
        name: the motion name (default: the file stem).
        action: the action label, if known.
        mapping: the joint mapping that finds the feet and the head for ``up="auto"`` (default: the best
            preset for the bone names).

    Returns:
        A :class:`~skeletok.data.motion.core.Motion` with joints ``["root", *asf.bone_names]``.

    Raises:
        ValueError: on bad arguments.
        MotionFileError: (a ``ValueError``) naming the file for anything wrong in it.
    """
    from skeletok.data.motion.bvh import UNITS
    from skeletok.data.motion.mapping import get_mapping
    from skeletok.data.motion.upright import choose_up, landmark_up

    if up not in ("auto", "y", "z"):
        raise ValueError(f"up must be 'auto', 'y' or 'z', got {up!r}")
    if scale is not None:
        unit = scale
    metres = None if unit == "auto" else UNITS.get(unit) if isinstance(unit, str) else unit
    if unit != "auto" and not (isinstance(metres, (int, float)) and np.isfinite(metres) and metres > 0):
        raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive number of metres per unit, "
                         f"got {unit!r}")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    mapping = get_mapping(mapping) if mapping is not None else None
    if not isinstance(asf, AsfSkeleton):
        asf = read_asf(asf)
    path = Path(path)
    values, degrees = parse_amc(path, asf)
    with file_errors(path, what="AMC file"), np.errstate(over="ignore", invalid="ignore"):
        names = ["root", *asf.bone_names]
        rest = {k: np.zeros((1, v.shape[1])) for k, v in values.items()}
        rest_pos = asf_forward_kinematics(asf, rest, degrees)[0]
        rest_pos = rest_pos - rest_pos[0]
        picked = choose_up(landmark_up(rest_pos, names, mapping), up, path, "rest pose")
        up = picked or "y"
        pos = asf_forward_kinematics(asf, values, degrees) * (asf.metres_per_unit if metres is None else metres)
        if up == "y":
            pos = y_up_to_z_up(pos)
        parents = np.concatenate([[-1], asf.parents + 1])
        return Motion(name or path.stem, names, parents, pos.astype(np.float32), fps, action)


def write_amc(path: str | Path, asf: AsfSkeleton, values: dict[str, np.ndarray]) -> None:
    """Write AMC frames (``values`` as returned by :func:`parse_amc`, in the ASF's angle unit)."""
    t = np.asarray(values["root"]).shape[0]
    out = [f"#!OML:ASF {asf.name}.asf", ":FULLY-SPECIFIED", ":DEGREES" if asf.degrees else ":RADIANS"]
    for k in range(t):
        out.append(str(k + 1))
        out.append(f"root {_f(np.asarray(values['root'])[k])}")
        out += [f"{n} {_f(np.asarray(values[n])[k])}" for n, d in zip(asf.bone_names, asf.dofs) if d]
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
