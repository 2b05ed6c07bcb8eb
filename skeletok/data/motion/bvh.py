"""BVH (Biovision hierarchy) motion files: parse, forward kinematics, write.

Shapes: ``t`` frames, ``j`` joints, ``e`` end sites, ``c`` channels per frame.

Conventions (documented because BVH files disagree):

- Rotation channels compose in the order listed: ``Zrotation Xrotation Yrotation`` gives
  ``R = Rz @ Rx @ Ry`` (column vectors), angles in degrees. Any order is accepted.
- Position channels (on any joint) give that joint's local translation along their axes, replacing
  the ``OFFSET`` component (as Blender and most exporters do; the root's ``OFFSET`` is zero in practice,
  where both conventions agree). Axes without a position channel keep the ``OFFSET`` value.
- ``End Site`` blocks become extra joints named ``<parent>_End`` after the regular joints.
- A joint name is the rest of its ``ROOT``/``JOINT`` line, so names with spaces (3ds Max Biped's
  ``Bip01 L Thigh``) are read whole.
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
- Repairs, each with a :class:`~skeletok.errors.MotionWarning` naming the file: a ``Frames:`` count that
  disagrees with the frame lines present (the frames present are read) and a cut last frame line (dropped).
  Everything else that is wrong stops with a :class:`~skeletok.errors.MotionFileError` naming the file, the
  line and the fix; a file with several ``ROOT`` hierarchies (several characters) is refused.

Checked once against bvhtoolbox 0.1.3's own world positions (``bvh2csv``) on its two example files:
equal within 2e-5 file units (float32 rounding).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.motion.core import Motion, axis_rotation, y_up_to_z_up
from skeletok.errors import MotionFileError, MotionWarning, file_errors

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

    def error(self, msg: str, line: int | None = None) -> MotionFileError:
        line = line if line is not None else (self.items[min(self.k, len(self.items) - 1)][1] if self.items else 1)
        return MotionFileError(self.path, f"line {line}: {msg}")

    def rest_of_line(self, no: int) -> list[str]:
        """The tokens left on line ``no`` (already tokenised with it), consumed."""
        out = []
        while self.k < len(self.items) and self.items[self.k][1] == no:
            out.append(self.items[self.k][0])
            self.k += 1
        return out

    def next(self, what: str) -> tuple[str, int]:
        while self.k >= len(self.items) and self.line < len(self.lines):
            self.line += 1
            self.items.extend((tok, self.line) for tok in self.lines[self.line - 1].split())
        if self.k >= len(self.items):
            raise MotionFileError(self.path, f"unexpected end of file, expected {what}")
        self.k += 1
        return self.items[self.k - 1]

    def expect(self, word: str) -> int:
        tok, no = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r}, got {tok!r}", no)
        return no

    def number(self, what: str, cast=float, tok: str | None = None, no: int = 0):
        if tok is None:
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
            words = tk.rest_of_line(no)  # the name is the rest of the ROOT/JOINT line: it may hold spaces
            brace = bool(words) and words[-1] == "{"
            words = words[:-1] if brace else words
            if not words:
                word, no = tk.next("a joint name")
                words = [word]
            name = " ".join(words)
            if name in names:
                raise tk.error(f"duplicate joint name {name!r}", no)
            if not brace:
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
        if kind == "ROOT":
            raise tk.error(f"a second ROOT inside the hierarchy of {names[0]!r}", no)
        if kind not in ("JOINT", "END") or stack[-1] == -2:
            raise tk.error(f"expected 'JOINT', 'End Site' or '}}', got {tok!r}", no)
    return BvhSkeleton(
        names, np.array(parents, dtype=np.int64), np.array(offsets, dtype=np.float64).reshape(-1, 3),
        channels, np.array(ends, dtype=np.int64), np.array(end_offs, dtype=np.float64).reshape(-1, 3),
    )


def _labelled(tk: _Tokens, label: str, what: str, cast):
    """The number after ``label`` (``"Frames: 10"``, also written ``"Frames:10"``)."""
    tok, no = tk.next(repr(label))
    if tok.upper() == label.upper():
        return tk.number(what, cast)
    if tok.upper().startswith(label.upper()):
        return tk.number(what, cast, tok[len(label):], no)
    raise tk.error(f"expected {label!r}, got {tok!r}", no)


def parse_bvh(path: str | Path) -> tuple[BvhSkeleton, np.ndarray, float]:
    """Parse a BVH file.

    Args:
        path: the ``.bvh`` file.

    Returns:
        ``(skeleton, frames (t, c) float64 channel values, frame_time seconds)``.

    Raises:
        MotionFileError: (a ``ValueError``) naming the file and line for any malformed content.

    Warns:
        MotionWarning: when ``Frames:`` disagrees with the frame lines present (those are returned) or the
            last frame line is cut short (it is dropped).
    """
    path = Path(path)
    with file_errors(path, what="BVH file"):
        try:
            lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        except OSError as e:
            raise MotionFileError(path, f"cannot read BVH file ({e})") from None
        tk = _Tokens(path, lines)
        skel = _parse_hierarchy(tk)
        tok, no = tk.next("'MOTION'")
        if tok.upper() == "ROOT":
            raise tk.error(f"a second ROOT hierarchy ({' '.join([tok] + tk.rest_of_line(no))!r}) after the one of "
                           f"{skel.names[0]!r}: skeletok reads one skeleton per file; export each character "
                           "to its own BVH file", no)
        if tok.upper() != "MOTION":
            raise tk.error(f"expected 'MOTION', got {tok!r}", no)
        n_frames = _labelled(tk, "Frames:", "the frame count", int)
        tk.expect("Frame")
        frame_time = _labelled(tk, "Time:", "the frame time", float)
        if frame_time <= 0:
            raise tk.error(f"Frame Time must be > 0 seconds, got {frame_time} (30 fps is 'Frame Time: 0.033333')")
        c = skel.num_channels
        first = tk.items[tk.k - 1][1] + 1
        rows, last = [], 0
        body = [(no, lines[no - 1].split()) for no in range(first, len(lines) + 1)]
        body = [(no, toks) for no, toks in body if toks]
        for k, (no, toks) in enumerate(body):
            if len(toks) != c:
                if k == len(body) - 1 and 0 < len(toks) < c and rows:  # a cut last line: drop it, say so
                    warnings.warn(f"{path}: line {no}: the last frame line has {len(toks)} of {c} values (a cut "
                                  "file?); it is dropped", MotionWarning, stacklevel=2)
                    break
                raise MotionFileError(path, f"line {no}: frame {len(rows) + 1} has {len(toks)} values, expected {c} "
                                            f"channels")
            try:
                row = [float(v) for v in toks]
            except ValueError:
                raise MotionFileError(path, f"line {no}: frame {len(rows) + 1} has a non-numeric value") from None
            if not np.isfinite(row).all():
                raise MotionFileError(path, f"line {no}: frame {len(rows) + 1} has a NaN/inf value")
            rows.append(row)
            last = no
        if not rows:
            raise MotionFileError(path, f"line {len(lines)}: no frame lines after the header ('Frames: {n_frames}' "
                                        "declared)")
        if len(rows) != n_frames:
            warnings.warn(f"{path}: line {last}: 'Frames: {n_frames}' declared but {len(rows)} frame lines found; "
                          f"reading the {len(rows)} frames present", MotionWarning, stacklevel=2)
        return skel, np.array(rows, dtype=np.float64).reshape(len(rows), c), float(frame_time)


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
        MotionWarning: repairs of the file (module docstring), a body that is not upright, a rest pose whose
            size in metres is not a person's.
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
