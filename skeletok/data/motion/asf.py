"""Acclaim ASF skeleton files (the CMU motion capture database format): parse and write.

Shapes: ``b`` bones (the root excluded). The motion on a skeleton (AMC frames, forward kinematics, the reader
into a Motion) is :mod:`skeletok.data.motion.asf_amc`.

Conventions (the Acclaim specification as the CMU files use it):

- Sections ``:units``, ``:root``, ``:bonedata`` (one ``begin`` ... ``end`` block per bone: ``name``,
  ``direction``, ``length``, ``axis a b c ORDER``, ``dof``) and ``:hierarchy`` (``parent child ...`` lines);
  ``#`` starts a comment. Bones are ordered depth first from the root, children in the order the hierarchy lists.
- ``:units length L`` means file lengths are ``1 / L`` inches (CMU: ``L = 0.45``), so metres are
  ``value * 0.0254 / L``; ``:units angle`` is ``deg`` or ``rad``.
- Errors are :class:`~skeletok.errors.MotionFileError` naming the file and the line (or the missing section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skeletok.errors import MotionFileError, file_errors

__all__ = ["AsfSkeleton", "read_asf", "write_asf"]

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
