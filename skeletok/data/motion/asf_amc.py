"""Acclaim ASF skeletons and AMC motions (the CMU motion capture database format).

Shapes: ``t`` frames, ``b`` bones (the root excluded), ``j = b + 1`` points.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skeletok.data.motion.core import Motion, euler_matrix, y_up_to_z_up
from skeletok.errors import MotionFileError, MotionWarning, file_errors

__all__ = ["AsfSkeleton", "read_asf", "parse_amc", "asf_forward_kinematics", "read_amc", "write_asf", "write_amc"]

_ROT_DOFS = ("rx", "ry", "rz")


@dataclass
class AsfSkeleton:
    """An ASF skeleton, in file units.

    Attributes:
        bone_names: ``b`` bone names, depth first from the root (parents first).
        parents: ``(b,)`` parent bone index, ``-1`` for a child of the root.
        directions: ``(b, 3)`` unit rest directions (world frame).
        lengths: ``(b,)`` bone lengths (file units).
        axes: ``(b, 3)`` local frame angles (file angle unit).
        axis_orders: per bone, the axis order string (e.g. ``"XYZ"``).
        dofs: per bone, its rotational dofs in AMC order (subset of ``rx ry rz``).
        root_order: the AMC root channels (e.g. ``("TX", "TY", "TZ", "RX", "RY", "RZ")``).
        root_axis: root rotation order string.
        root_position, root_orientation: ``(3,)`` each.
        length_unit: the ``:units length`` value (file lengths are ``1 / length_unit`` inches).
        degrees: angles in degrees (``True``) or radians.
        name: the skeleton name.
    """

    bone_names: list[str]
    parents: np.ndarray
    directions: np.ndarray
    lengths: np.ndarray
    axes: np.ndarray
    axis_orders: list[str]
    dofs: list[tuple[str, ...]]
    root_order: tuple[str, ...] = ("TX", "TY", "TZ", "RX", "RY", "RZ")
    root_axis: str = "XYZ"
    root_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    root_orientation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    length_unit: float = 0.45
    degrees: bool = True
    name: str = "skeleton"

    @property
    def metres_per_unit(self) -> float:
        """Metres per file length unit, ``0.0254 / length_unit``."""
        return 0.0254 / self.length_unit


def _err(path, no, msg) -> MotionFileError:
    return MotionFileError(path, f"line {no}: {msg}")


def _floats(path, no, toks, n, what) -> list[float]:
    if len(toks) < n:
        raise _err(path, no, f"{what} needs {n} numbers, got {toks}")
    try:
        vals = [float(v) for v in toks[:n]]
    except ValueError:
        raise _err(path, no, f"{what} needs {n} numbers, got {toks[:n]}") from None
    if not np.isfinite(vals).all():
        raise _err(path, no, f"{what} must be finite, got {toks[:n]}")
    return vals


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton file.

    Raises:
        MotionFileError: (a ``ValueError``) naming the file and line (or the missing section) for malformed
            content.
    """
    path = Path(path)
    with file_errors(path, what="ASF file"):
        return _read_asf(path)


def _read_asf(path: Path) -> AsfSkeleton:
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as e:
        raise MotionFileError(path, f"cannot read ASF file ({e})") from None
    units, root, bones, edges, name = {}, {}, [], [], path.stem
    section, bone = None, None
    for no, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        toks = line.split()
        if line.startswith(":"):
            section = toks[0].lower()
            if section == ":name" and len(toks) > 1:
                name = toks[1]
            continue
        key = toks[0].lower()
        if section == ":units":
            units[key] = (toks[1] if len(toks) > 1 else "", no)
        elif section == ":root":
            root[key] = (toks[1:], no)
        elif section == ":bonedata":
            if key == "begin":
                bone = {"line": no, "dof": [], "axis": ([0.0, 0.0, 0.0], "XYZ")}
            elif key == "end":
                if bone is None or "name" not in bone or "direction" not in bone or "length" not in bone:
                    raise _err(path, no, "bone block lacks a name, direction or length")
                if bone["name"] in [b["name"] for b in bones] or bone["name"].lower() == "root":
                    raise _err(path, no, f"bone name {bone['name']!r} is used twice (or is the reserved 'root')")
                bones.append(bone)
                bone = None
            elif bone is None:
                raise _err(path, no, f"{toks[0]!r} outside a begin/end bone block")
            elif key == "name":
                bone["name"] = toks[1] if len(toks) > 1 else ""
            elif key == "direction":
                bone["direction"] = _floats(path, no, toks[1:], 3, "direction")
            elif key == "length":
                bone["length"] = _floats(path, no, toks[1:], 1, "length")[0]
            elif key == "axis":
                order = toks[4].upper() if len(toks) > 4 else "XYZ"
                if sorted(order) != ["X", "Y", "Z"]:
                    raise _err(path, no, f"axis order must be a permutation of XYZ, got {order!r}")
                bone["axis"] = (_floats(path, no, toks[1:], 3, "axis"), order)
            elif key == "dof":
                dofs = [d.lower() for d in toks[1:]]
                if any(d not in _ROT_DOFS for d in dofs) or len(set(dofs)) != len(dofs):
                    raise _err(path, no, f"dof must list distinct rotations among rx ry rz, got {toks[1:]}")
                bone["dof"] = dofs
        elif section == ":hierarchy":
            if key not in ("begin", "end"):
                edges.append((toks[0], toks[1:], no))
    if bone is not None:
        raise MotionFileError(path, f"bone block opened at line {bone['line']} is never closed")
    if not bones or not edges:
        raise MotionFileError(path, "missing :bonedata or :hierarchy section")
    by_name = {b["name"]: b for b in bones}
    parent_of: dict[str, str] = {}
    for par, kids, no in edges:
        for kid in kids:
            if kid not in by_name or (par != "root" and par not in by_name) or kid in parent_of:
                raise _err(path, no, f"hierarchy edge {par} -> {kid} names an unknown or re-parented bone")
            parent_of[kid] = par
    order, stack = [], ["root"]  # depth first, children in the order listed (the CMU bone order)
    while stack:
        cur = stack.pop()
        if cur in order:
            continue
        if cur != "root":
            order.append(cur)
        stack.extend(reversed([k for par, ks, _ in edges if par == cur for k in ks]))
    if len(order) != len(bones):
        missing = sorted(set(by_name) - set(order))
        raise MotionFileError(path, f":hierarchy does not reach bones {missing} from root")
    index = {n: i for i, n in enumerate(order)}

    def unit(key, default):
        val, no = units.get(key, (default, 0))
        return val, no

    length_tok, lno = unit("length", "1.0")
    try:
        length_unit = float(length_tok)
        assert np.isfinite(length_unit) and length_unit > 0
    except (ValueError, AssertionError):
        raise _err(path, lno, f":units length must be a positive number, got {length_tok!r}") from None
    angle, ano = unit("angle", "deg")
    if angle.lower() not in ("deg", "rad"):
        raise _err(path, ano, f":units angle must be deg or rad, got {angle!r}")
    r_order = [t.upper() for t in root.get("order", (["TX", "TY", "TZ", "RX", "RY", "RZ"], 0))[0]]
    if any(t not in ("TX", "TY", "TZ", "RX", "RY", "RZ") for t in r_order) or len(set(r_order)) != len(r_order):
        raise _err(path, root["order"][1], f"root order must list distinct TX TY TZ RX RY RZ, got {r_order}")
    r_axis = (root.get("axis", (["XYZ"], 0))[0] or ["XYZ"])[0].upper()
    if sorted(r_axis) != ["X", "Y", "Z"]:
        raise _err(path, root["axis"][1], f"root axis must be a permutation of XYZ, got {r_axis!r}")
    pos, ori = ([0.0] * 3 if key not in root else _floats(path, root[key][1], root[key][0], 3, f"root {key}")
                for key in ("position", "orientation"))
    bs = [by_name[n] for n in order]
    dirs = np.array([b["direction"] for b in bs], dtype=np.float64)
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = np.where(norms > 0, dirs / np.where(norms > 0, norms, 1), 0.0)
    return AsfSkeleton(
        bone_names=order,
        parents=np.array([index.get(parent_of[n], -1) for n in order], dtype=np.int64),
        directions=dirs,
        lengths=np.array([b["length"] for b in bs], dtype=np.float64),
        axes=np.array([b["axis"][0] for b in bs], dtype=np.float64),
        axis_orders=[b["axis"][1] for b in bs],
        dofs=[tuple(b["dof"]) for b in bs],
        root_order=tuple(r_order),
        root_axis=r_axis,
        root_position=np.array(pos),
        root_orientation=np.array(ori),
        length_unit=length_unit,
        degrees=angle.lower() == "deg",
        name=name,
    )


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


def _f(values) -> str:
    return " ".join(f"{float(v):.6f}" for v in np.atleast_1d(values))


def write_asf(path: str | Path, asf: AsfSkeleton) -> None:
    """Write an ASF file that :func:`read_asf` reads back to the same skeleton."""
    out = [":version 1.10", f":name {asf.name}", ":units", "  mass 1.0", f"  length {asf.length_unit:.6f}",
           f"  angle {'deg' if asf.degrees else 'rad'}", ":root", f"   order {' '.join(asf.root_order)}",
           f"   axis {asf.root_axis}", f"   position {_f(asf.root_position)}", f"   orientation {_f(asf.root_orientation)}",
           ":bonedata"]
    for i, n in enumerate(asf.bone_names):
        out += ["  begin", f"     id {i + 1}", f"     name {n}", f"     direction {_f(asf.directions[i])}",
                f"     length {asf.lengths[i]:.6f}", f"     axis {_f(asf.axes[i])} {asf.axis_orders[i]}"]
        if asf.dofs[i]:
            out.append(f"    dof {' '.join(asf.dofs[i])}")
        out.append("  end")
    out += [":hierarchy", "  begin"]
    for p in range(-1, len(asf.bone_names)):
        kids = [asf.bone_names[k] for k in np.flatnonzero(asf.parents == p)]
        if kids:
            out.append(f"    {'root' if p < 0 else asf.bone_names[p]} {' '.join(kids)}")
    out.append("  end")
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")


def write_amc(path: str | Path, asf: AsfSkeleton, values: dict[str, np.ndarray]) -> None:
    """Write AMC frames (``values`` as returned by :func:`parse_amc`, in the ASF's angle unit)."""
    t = np.asarray(values["root"]).shape[0]
    out = [f"#!OML:ASF {asf.name}.asf", ":FULLY-SPECIFIED", ":DEGREES" if asf.degrees else ":RADIANS"]
    for k in range(t):
        out.append(str(k + 1))
        out.append(f"root {_f(np.asarray(values['root'])[k])}")
        out += [f"{n} {_f(np.asarray(values[n])[k])}" for n, d in zip(asf.bone_names, asf.dofs) if d]
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
