"""Motion: a sequence of 3D joint positions on a named joint tree, and the shared rotation helpers.

Shapes: ``t`` frames, ``j`` joints, ``c`` = 3 coordinates.

Every reader in :mod:`skeletok.data.motion` returns a :class:`Motion` in the world frame of
``docs/concepts.md``: metres, Z-up, right-handed. Readers list joints parents-first
(``parents[i] < i``); :class:`Motion` itself only requires a tree (one root, no cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Motion", "axis_rotation", "euler_matrix", "quat_matrix", "y_up_to_z_up"]

_AXES = {"x": 0, "y": 1, "z": 2}


def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about one coordinate axis.

    Args:
        axis: ``"x"``, ``"y"`` or ``"z"`` (case-insensitive).
        angle: angles in radians, any shape ``(...)``.

    Returns:
        ``(..., 3, 3)`` float64 matrices acting on column vectors (right-handed, counter-clockwise).
    """
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    i = _AXES[axis.lower()]
    if i == 0:
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif i == 1:
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_matrix(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """Compose rotations about the axes in ``order``, left to right: ``R = R[order[0]] @ R[order[1]] @ ...``.

    This is the BVH convention (channels ``Zrotation Xrotation Yrotation`` give ``Rz @ Rx @ Ry``).

    Args:
        order: axis letters, e.g. ``"ZXY"``.
        angles_deg: ``(..., len(order))`` angles in degrees, in the same order.

    Returns:
        ``(..., 3, 3)`` float64 rotation matrices.
    """
    ang = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), ang.shape[:-1] + (3, 3)).copy()
    for k, ax in enumerate(order):
        out = out @ axis_rotation(ax, ang[..., k])
    return out


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices from quaternions ``(..., 4)`` in ``w, x, y, z`` order (normalised here)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """Rotate Y-up points into Z-up by +90 degrees about X: ``(x, y, z) -> (x, -z, y)`` (handedness kept)."""
    p = np.asarray(points)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def _check_tree(parents: np.ndarray, where: str) -> None:
    j = parents.shape[0]
    roots = np.flatnonzero(parents == -1)
    if roots.size != 1:
        raise ValueError(f"{where}: parents must describe a tree with exactly one root (-1), got {roots.size} roots")
    bad = (parents < -1) | (parents >= j)
    if bad.any():
        raise ValueError(f"{where}: parents must lie in [-1, {j}), got {parents[bad].tolist()}")
    for start in range(j):
        seen, k = 0, start
        while k != -1:
            k = int(parents[k])
            seen += 1
            if seen > j:
                raise ValueError(f"{where}: parents contain a cycle through joint {start}")


@dataclass
class Motion:
    """Joint positions over time on a named joint tree.

    Attributes:
        name: sequence name (e.g. ``"deepmimic/backflip"``).
        joint_names: ``j`` unique joint names.
        parents: ``(j,)`` int64 parent index of each joint, ``-1`` for the single root.
        positions: ``(t, j, 3)`` float32 world positions in metres, Z-up, right-handed.
        fps: frames per second (> 0).
        action: a real action label from the source (clip or sequence name), or ``None``.

    Raises:
        ValueError: on a shape mismatch, NaN/inf positions, duplicate names, a non-positive
            frame rate or parents that do not form a tree.
    """

    name: str
    joint_names: list[str]
    parents: np.ndarray
    positions: np.ndarray
    fps: float
    action: str | None = field(default=None)

    def __post_init__(self) -> None:
        where = f"Motion {self.name!r}"
        self.joint_names = [str(n) for n in self.joint_names]
        self.parents = np.asarray(self.parents).astype(np.int64)
        self.positions = np.asarray(self.positions, dtype=np.float32)
        j = len(self.joint_names)
        if len(set(self.joint_names)) != j:
            dup = sorted({n for n in self.joint_names if self.joint_names.count(n) > 1})
            raise ValueError(f"{where}: joint_names must be unique, got duplicates {dup}")
        if self.parents.shape != (j,):
            raise ValueError(f"{where}: parents must have shape ({j},) to match joint_names, got {self.parents.shape}")
        if self.positions.ndim != 3 or self.positions.shape[1:] != (j, 3) or self.positions.shape[0] < 1:
            raise ValueError(f"{where}: positions must have shape (t>=1, {j}, 3), got {self.positions.shape}")
        if not np.isfinite(self.positions).all():
            bad = int((~np.isfinite(self.positions)).sum())
            raise ValueError(f"{where}: positions must be finite, got {bad} NaN/inf value(s)")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"{where}: fps must be a positive number, got {self.fps!r}")
        self.fps = float(self.fps)
        _check_tree(self.parents, where)

    @property
    def num_frames(self) -> int:
        """Number of frames ``t``."""
        return int(self.positions.shape[0])

    @property
    def num_joints(self) -> int:
        """Number of joints ``j``."""
        return len(self.joint_names)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame, ``(t - 1) / fps``."""
        return (self.num_frames - 1) / self.fps

    def index(self, name: str) -> int:
        """Index of the joint ``name``; ``ValueError`` listing the known names otherwise."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"Motion {self.name!r} has no joint {name!r}; joints: {self.joint_names}") from None

    def bone_lengths(self) -> np.ndarray:
        """``(t, j)`` distance of each joint to its parent in metres (0 for the root)."""
        par = np.where(self.parents < 0, np.arange(self.num_joints), self.parents)
        return np.linalg.norm(self.positions - self.positions[:, par], axis=-1)

    def resample(self, fps: float) -> Motion:
        """Linearly interpolate positions at ``fps``, from the first frame up to the last.

        Args:
            fps: target frame rate (> 0).

        Returns:
            A new :class:`Motion` with ``floor(duration * fps + 1e-6) + 1`` frames at times ``k / fps``.
        """
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        n = int(np.floor(self.duration * fps + 1e-6)) + 1
        src = np.arange(n, dtype=np.float64) * (self.fps / fps)
        src = np.minimum(src, self.num_frames - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, self.num_frames - 1)
        w = (src - lo)[:, None, None]
        pos = self.positions[lo] * (1 - w) + self.positions[hi] * w
        return Motion(self.name, list(self.joint_names), self.parents.copy(), pos, float(fps), self.action)

    def select(self, names: list[str]) -> Motion:
        """Keep the joints ``names`` (in that order); each parent becomes the nearest kept ancestor.

        Raises:
            ValueError: on an unknown or repeated name, or when the kept joints do not form one tree.
        """
        idx = [self.index(n) for n in names]
        if len(set(idx)) != len(idx):
            raise ValueError(f"select: names must be unique, got {list(names)}")
        pos_of = {j: k for k, j in enumerate(idx)}
        parents = []
        for j in idx:
            p = int(self.parents[j])
            while p != -1 and p not in pos_of:
                p = int(self.parents[p])
            parents.append(pos_of[p] if p != -1 else -1)
        return Motion(self.name, list(names), np.array(parents), self.positions[:, idx], self.fps, self.action)

    def frames(self, start: int, stop: int) -> Motion:
        """Frames ``[start, stop)`` as a new :class:`Motion`."""
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(f"frames: need 0 <= start < stop <= {self.num_frames}, got start={start}, stop={stop}")
        return Motion(self.name, list(self.joint_names), self.parents.copy(), self.positions[start:stop], self.fps, self.action)
