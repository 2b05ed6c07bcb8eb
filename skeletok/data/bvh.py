"""BVH (Biovision hierarchy) motion files: parse, forward kinematics, write.

Shapes: ``t`` frames, ``j`` joints, ``e`` end sites, ``c`` channels per frame.

Conventions (documented because BVH files disagree):

- Rotation channels compose in the order listed: ``Zrotation Xrotation Yrotation`` gives
  ``R = Rz @ Rx @ Ry`` (column vectors), angles in degrees. Any order is accepted.
- Position channels (on any joint) give that joint's local translation along their axes, replacing
  the ``OFFSET`` component (as Blender and most exporters do; the root's ``OFFSET`` is zero in practice,
  where both conventions agree). Axes without a position channel keep the ``OFFSET`` value.
- ``End Site`` blocks become extra joints named ``<parent>_End`` after the regular joints.
- ``up="auto"``: the up axis is whichever of Y and Z the rest pose (offsets only) is less mirror
  symmetric along (a body is left-right symmetric and nearly front-back symmetric, never head-foot);
  Y (the BVH convention) on a tie. Y-up is rotated to Z-up by ``(x, y, z) -> (x, -z, y)``.
- ``unit="auto"``: the size ``s`` of the rest pose (longest side of its bounding box, file units) is
  matched to a 1.7 m human in log scale among metres, CMU units (0.0254 / 0.45 m), inches,
  centimetres and millimetres; i.e. ``s < 7.16`` m, ``< 44.9`` cmu, ``< 106.7`` inch, ``< 537.6`` cm, else mm.

Checked once against bvhtoolbox 0.1.3's own world positions (``bvh2csv``) on its two example files:
equal within 2e-5 file units (float32 rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.motion import Motion, axis_rotation, y_up_to_z_up

__all__ = ["BvhSkeleton", "parse_bvh", "bvh_forward_kinematics", "write_bvh", "read_bvh", "UNITS", "detect_unit", "detect_up"]

#: metres per file unit for the named units (``cmu``: the CMU ASF length unit, 1 / 0.45 inch).
UNITS = {"m": 1.0, "cmu": 0.0254 / 0.45, "inch": 0.0254, "cm": 0.01, "mm": 0.001}
_CHANNELS = {f"{a}{k}": (a.lower(), k) for a in "XYZ" for k in ("position", "rotation")}
_HUMAN_SIZE_M = 1.7
_CHUNK = 4096


@dataclass
class BvhSkeleton:
    """The HIERARCHY part of a BVH file, in file units and axes.

    Attributes:
        names: ``j`` joint names, parents first (``parents[i] < i``).
        parents: ``(j,)`` int parent index, ``-1`` for the root.
        offsets: ``(j, 3)`` float ``OFFSET`` of each joint from its parent.
        channels: per joint, the channel names in file order (e.g. ``("Zrotation", "Xrotation", "Yrotation")``).
        end_sites: ``(e,)`` int joint each end site hangs from.
        end_offsets: ``(e, 3)`` float end site offsets.
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: np.ndarray
    end_offsets: np.ndarray

    @property
    def num_channels(self) -> int:
        """Total channels ``c`` per frame."""
        return sum(len(c) for c in self.channels)


class _Tokens:
    """Whitespace tokens with their 1-based line numbers; errors name the file and line."""

    def __init__(self, path: Path, lines: list[str]):
        self.path, self.lines, self.items, self.k, self.line = path, lines, [], 0, 0  # tokenised lazily

    def error(self, msg: str, line: int | None = None) -> ValueError:
        line = line if line is not None else (self.items[min(self.k, len(self.items) - 1)][1] if self.items else 1)
        return ValueError(f"{self.path}: line {line}: {msg}")

    def next(self, what: str) -> tuple[str, int]:
        while self.k >= len(self.items) and self.line < len(self.lines):
            self.line += 1
            self.items.extend((tok, self.line) for tok in self.lines[self.line - 1].split())
        if self.k >= len(self.items):
            raise ValueError(f"{self.path}: unexpected end of file, expected {what}")
        self.k += 1
        return self.items[self.k - 1]

    def expect(self, word: str) -> int:
        tok, no = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r}, got {tok!r}", no)
        return no

    def number(self, what: str, cast=float):
        tok, no = self.next(what)
        try:
            val = cast(tok)
        except ValueError:
            raise self.error(f"expected {what} (a number), got {tok!r}", no) from None
        if not np.isfinite(val):
            raise self.error(f"{what} must be finite, got {tok!r}", no)
        return val


def _parse_hierarchy(tk: _Tokens) -> BvhSkeleton:
    tk.expect("HIERARCHY")
    tok, no = tk.next("'ROOT'")
    if tok.upper() != "ROOT":
        raise tk.error(f"expected 'ROOT', got {tok!r}", no)
    names, parents, offsets, channels, ends, end_offs = [], [], [], [], [], []
    stack: list[int] = []  # joint index per open block; -2 for an End Site block
    kind = "ROOT"
    while True:
        if kind in ("ROOT", "JOINT"):
            name, no = tk.next("a joint name")
            if name in names:
                raise tk.error(f"duplicate joint name {name!r}", no)
            tk.expect("{")
            tk.expect("OFFSET")
            off = [tk.number("OFFSET value") for _ in range(3)]
            tk.expect("CHANNELS")
            n = tk.number("the channel count", int)
            if not 0 <= n <= 6:
                raise tk.error(f"CHANNELS count must be 0..6, got {n}")
            chans = []
            for _ in range(n):
                ch, cno = tk.next("a channel name")
                key = ch[0].upper() + ch[1:].lower()
                if key not in _CHANNELS or key in chans:
                    raise tk.error(f"bad or repeated channel {ch!r} ({n} channels declared for {name!r})", cno)
                chans.append(key)
            parents.append(stack[-1] if stack else -1)
            names.append(name)
            offsets.append(off)
            channels.append(tuple(chans))
            stack.append(len(names) - 1)
        elif kind == "END":
            tk.expect("Site")
            tk.expect("{")
            tk.expect("OFFSET")
            end_offs.append([tk.number("OFFSET value") for _ in range(3)])
            ends.append(stack[-1])
            stack.append(-2)
        tok, no = tk.next("'JOINT', 'End Site' or '}'")
        while tok == "}":
            stack.pop()
            if not stack:
                break
            tok, no = tk.next("'JOINT', 'End Site' or '}'")
        if not stack:
            break
        kind = tok.upper()
        if kind not in ("JOINT", "END") or stack[-1] == -2:
            raise tk.error(f"expected 'JOINT', 'End Site' or '}}', got {tok!r}", no)
    return BvhSkeleton(
        names, np.array(parents, dtype=np.int64), np.array(offsets, dtype=np.float64).reshape(-1, 3),
        channels, np.array(ends, dtype=np.int64), np.array(end_offs, dtype=np.float64).reshape(-1, 3),
    )


def parse_bvh(path: str | Path) -> tuple[BvhSkeleton, np.ndarray, float]:
    """Parse a BVH file.

    Args:
        path: the ``.bvh`` file.

    Returns:
        ``(skeleton, frames (t, c) float64 channel values, frame_time seconds)``.

    Raises:
        ValueError: naming the file and line for any malformed content.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read BVH file ({e})") from None
    tk = _Tokens(path, lines)
    skel = _parse_hierarchy(tk)
    tk.expect("MOTION")
    tk.expect("Frames:")
    n_frames = tk.number("the frame count", int)
    tk.expect("Frame")
    tk.expect("Time:")
    frame_time = tk.number("the frame time")
    if n_frames < 1 or frame_time <= 0:
        raise tk.error(f"need Frames >= 1 and Frame Time > 0, got {n_frames} and {frame_time}")
    c = skel.num_channels
    first = tk.items[tk.k - 1][1] + 1
    rows = []
    for no in range(first, len(lines) + 1):
        toks = lines[no - 1].split()
        if not toks:
            continue
        if len(toks) != c:
            raise ValueError(f"{path}: line {no}: frame {len(rows) + 1} has {len(toks)} values, expected {c} channels")
        try:
            row = [float(v) for v in toks]
        except ValueError:
            raise ValueError(f"{path}: line {no}: frame {len(rows) + 1} has a non-numeric value") from None
        if not np.isfinite(row).all():
            raise ValueError(f"{path}: line {no}: frame {len(rows) + 1} has a NaN/inf value")
        rows.append(row)
    if len(rows) != n_frames:
        raise ValueError(f"{path}: line {len(lines)}: 'Frames: {n_frames}' declared but {len(rows)} frame lines found")
    return skel, np.array(rows, dtype=np.float64).reshape(n_frames, c), float(frame_time)


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
            axis, kind = _CHANNELS[ch]
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


def read_bvh(
    path: str | Path,
    *,
    up: str = "auto",
    unit: str | float = "auto",
    end_sites: bool = True,
    name: str | None = None,
    action: str | None = None,
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

    Returns:
        A :class:`~skeletok.data.motion.Motion` with ``fps = 1 / frame_time``, rounded to the nearest
        integer when within 0.1% of it (frame times are written with few digits).

    Raises:
        ValueError: on malformed files (file and line named) or bad ``up``/``unit``.
    """
    if up not in ("auto", "y", "z"):
        raise ValueError(f"up must be 'auto', 'y' or 'z', got {up!r}")
    if isinstance(unit, str):
        if unit != "auto" and unit not in UNITS:
            raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive float, got {unit!r}")
    elif not (np.isfinite(unit) and unit > 0):
        raise ValueError(f"unit must be 'auto', one of {list(UNITS)} or a positive float, got {unit!r}")
    skel, frames, frame_time = parse_bvh(path)
    pos = bvh_forward_kinematics(skel, frames)
    up = detect_up(skel) if up == "auto" else up
    unit = detect_unit(skel) if unit == "auto" else unit
    scale = UNITS[unit] if isinstance(unit, str) else float(unit)
    pos = pos * scale
    if up == "y":
        pos = y_up_to_z_up(pos)
    names = list(skel.names) + [f"{skel.names[p]}_End" for p in skel.end_sites]
    parents = np.concatenate([skel.parents, skel.end_sites])
    if not end_sites:
        names, parents, pos = names[: len(skel.names)], parents[: len(skel.names)], pos[:, : len(skel.names)]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: end site names {names[len(skel.names):]} clash with joint names; use end_sites=False")
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 1e-3 * fps:  # "Frame Time: 0.033333" means 30 fps
        fps = float(round(fps))
    return Motion(name or Path(path).stem, names, parents, pos.astype(np.float32), fps, action)


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)


def write_bvh(path: str | Path, skel: BvhSkeleton, frames: np.ndarray, frame_time: float) -> None:
    """Write a BVH file (inverse of :func:`parse_bvh`; joints written depth first, children in index order).

    Args:
        path: output file.
        skel: the hierarchy, in file units; ``parents[i] < i`` required.
        frames: ``(t, c)`` channel values in ``skel``'s joint and channel order.
        frame_time: seconds per frame (> 0).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != skel.num_channels or len(frames) < 1:
        raise ValueError(f"frames must have shape (t>=1, {skel.num_channels}), got {frames.shape}")
    if not frame_time > 0:
        raise ValueError(f"frame_time must be > 0, got {frame_time}")
    if any(p >= i for i, p in enumerate(skel.parents)) or (skel.parents[1:] < 0).any() or skel.parents[0] != -1:
        raise ValueError("skel.parents must list parents first with the root at index 0")
    starts = np.cumsum([0] + [len(c) for c in skel.channels])
    out, order = ["HIERARCHY"], []

    def block(i: int, depth: int) -> None:
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if i == 0 else 'JOINT'} {skel.names[i]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}  OFFSET {_fmt(skel.offsets[i])}")
        out.append(f"{pad}  CHANNELS {len(skel.channels[i])} {' '.join(skel.channels[i])}".rstrip())
        order.append(i)
        for k in np.flatnonzero(skel.parents == i):
            block(int(k), depth + 1)
        for e in np.flatnonzero(skel.end_sites == i):
            out.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_fmt(skel.end_offsets[e])}", f"{pad}  }}"])
        out.append(f"{pad}}}")

    block(0, 0)
    cols = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in order]).astype(np.int64)
    out += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.8f}"]
    out += [_fmt(row) for row in frames[:, cols]]
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
