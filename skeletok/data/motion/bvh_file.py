"""BVH (Biovision hierarchy) files as text: the hierarchy and the frame lines, parsed and written.

Shapes: ``j`` joints, ``e`` end sites, ``c`` channels per frame. What the channels mean (forward kinematics, up
axis, unit) is :mod:`skeletok.data.motion.bvh`'s concern; here they are named and counted.

Conventions (documented because BVH files disagree):

- Channel names are read case-insensitively (``Xrotation``, ``XROTATION``); 0 to 6 distinct channels a joint.
- ``End Site`` blocks are kept apart from the joints (`BvhSkeleton`'s ``end_sites`` and ``end_offsets``).
- A joint name is the rest of its ``ROOT``/``JOINT`` line, so names with spaces (3ds Max Biped's
  ``Bip01 L Thigh``) are read whole.
- Repairs, each with a :class:`~skeletok.errors.MotionWarning` naming the file: a ``Frames:`` count that
  disagrees with the frame lines present (the frames present are read) and a cut last frame line (dropped).
  Everything else that is wrong stops with a :class:`~skeletok.errors.MotionFileError` naming the file, the
  line and the fix; a file with several ``ROOT`` hierarchies (several characters) is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.errors import MotionFileError, MotionWarning, file_errors

__all__ = ["BvhSkeleton", "parse_bvh", "write_bvh"]

#: channel name -> (axis letter, ``"position"`` or ``"rotation"``).
CHANNELS = {f"{a}{k}": (a.lower(), k) for a in "XYZ" for k in ("position", "rotation")}


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
                if key not in CHANNELS or key in chans:
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
