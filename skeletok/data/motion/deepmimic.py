"""DeepMimic humanoid clips (as shipped in ``pybullet_data/data/motions``) to joint positions.

Shapes: ``t`` frames, ``j`` = 15 joints, ``q`` = 4 quaternion components (``w, x, y, z``).

A clip is JSON ``{"Loop": ..., "Frames": [[...44 numbers...], ...]}``. Each frame, as read by
pybullet's ``humanoid_pose_interpolator.py`` (``Slerp``/``GetPose``), is::

    [0] duration (s, time to the next frame)   [1:4] root position (m)   [4:8] root quaternion
    [8:12] chest  [12:16] neck  [16:20] right_hip  [20] right_knee  [21:25] right_ankle
    [25:29] right_shoulder  [29] right_elbow  [30:34] left_hip  [34] left_knee  [35:39] left_ankle
    [39:43] left_shoulder  [43] left_elbow

quaternions ``w, x, y, z``, knees and elbows angles in radians about their joint's local Z axis.
That is the 8 ball joints and 4 hinges in ``humanoid/humanoid.urdf`` joint order, with each hinge
right after its parent ball joint. Positions follow by forward kinematics over the URDF's joint origins
(:data:`URDF_ORIGINS`, all with zero ``rpy``) at pybullet's ``globalScaling=0.25``; the wrists are
fixed joints. The clips are Y-up (the character faces +X, its right side is +Z) and are rotated to
Z-up by ``(x, y, z) -> (x, -z, y)``.

Three *end sites* follow the same kinematics (:data:`END_SITES`, points fixed in a link's frame): the crown (top
of the neck link's head sphere) and the two toe tips (front edge of each ankle link's foot box, on its sole), so the
head and the feet can be oriented: without them, retargeting left the head rigid with the chest and the feet rigid
with the shins in every clip. The wrists are fixed joints and the hands spheres, so a clip holds no hand orientation
beyond the forearm's, which the hands already follow.

Checked once against pybullet 3.2.7 itself (``resetJointStateMultiDof`` + ``getLinkState`` on the
URDF loaded with ``globalScaling=0.25``): :func:`deepmimic_fk` agrees within 1.4e-6 m on sampled
frames of the 15 ``humanoid3d_*`` clips.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from skeletok.data.motion.core import Motion, quat_matrix, y_up_to_z_up

__all__ = ["DEEPMIMIC_JOINTS", "DEEPMIMIC_PARENTS", "END_SITES", "URDF_ORIGINS", "URDF_SCALE", "deepmimic_fk",
           "read_deepmimic", "read_humanoid_urdf", "clip_label"]

#: The 15 joints: the root link and the 14 URDF joints, in URDF order.
DEEPMIMIC_JOINTS = ["root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
                    "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist"]
DEEPMIMIC_PARENTS = np.array([-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13], dtype=np.int64)

#: Joint origins (``xyz``, URDF units) copied from pybullet 3.2.7 ``pybullet_data/humanoid/humanoid.urdf``.
URDF_ORIGINS = np.array([
    [0.0, 0.0, 0.0], [0.0, 0.944604, 0.0], [0.0, 0.895576, 0.0],
    [0.0, 0.0, 0.339548], [0.0, -1.686184, 0.0], [0.0, -1.639480, 0.0],
    [-0.0962, 0.974, 0.73244], [0.0, -1.099152, 0.0], [0.0, -1.035788, 0.0],
    [0.0, 0.0, -0.339548], [0.0, -1.686184, 0.0], [0.0, -1.639480, 0.0],
    [-0.0962, 0.974, -0.73244], [0.0, -1.099152, 0.0], [0.0, -1.035788, 0.0],
])
#: pybullet loads the humanoid with ``globalScaling=0.25`` (``humanoid_stable_pd.py``).
URDF_SCALE = 0.25
#: End sites: name -> (joint whose link carries it, point in that link's frame, URDF units). From ``humanoid.urdf``:
#: the neck link's head sphere has centre (0, 0.7, 0) and radius 0.41, so the crown is (0, 1.11, 0); each ankle link's
#: foot box has centre (0.18, -0.09, 0) and size (0.708, 0.22, 0.36), so the tip of the sole is (0.534, -0.2, 0)
#: (the character faces +X, up is +Y).
END_SITES = {
    "head_end": (2, (0.0, 1.11, 0.0)),
    "right_toe_end": (5, (0.534, -0.2, 0.0)),
    "left_toe_end": (11, (0.534, -0.2, 0.0)),
}

# (joint index, frame slice start, kind): "q" quaternion w,x,y,z; "h" hinge about local z.
_LAYOUT = [(1, 8, "q"), (2, 12, "q"), (3, 16, "q"), (4, 20, "h"), (5, 21, "q"), (6, 25, "q"), (7, 29, "h"),
           (9, 30, "q"), (10, 34, "h"), (11, 35, "q"), (12, 39, "q"), (13, 43, "h")]
FRAME_SIZE = 44


def read_humanoid_urdf(path: str | Path) -> np.ndarray:
    """``(15, 3)`` joint origins of :data:`DEEPMIMIC_JOINTS` read from a ``humanoid.urdf`` (unscaled)."""
    try:  # pybullet's copy ends with a NUL byte after </robot>
        root = ET.fromstring(Path(path).read_bytes().rstrip(b"\x00\r\n\t "))
    except (OSError, ET.ParseError) as e:
        raise ValueError(f"{path}: cannot parse URDF ({e})") from None
    origins = {j.get("name"): j.find("origin") for j in root.iter("joint")}
    out = np.zeros((len(DEEPMIMIC_JOINTS), 3))
    for i, n in enumerate(DEEPMIMIC_JOINTS[1:], 1):
        if origins.get(n) is None:
            raise ValueError(f"{path}: joint {n!r} or its <origin> is missing")
        out[i] = [float(v) for v in origins[n].get("xyz", "0 0 0").split()]
    return out


def _slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    small = s < 1e-6
    a = np.where(small, 1 - w, np.sin((1 - w) * theta) / np.where(small, 1, s))
    b = np.where(small, w, np.sin(w * theta) / np.where(small, 1, s))
    q = a * q0 + b * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def deepmimic_fk(frames: np.ndarray, origins: np.ndarray = URDF_ORIGINS, scale: float = URDF_SCALE,
                 end_sites: bool = False) -> np.ndarray:
    """Joint positions of DeepMimic frames in the clip's own Y-up frame.

    Args:
        frames: ``(t, 44)`` frames (the duration column is ignored).
        origins: ``(15, 3)`` URDF joint origins (unscaled).
        scale: the URDF scale.
        end_sites: also return the :data:`END_SITES` (crown, right and left toe tips) after the 15 joints.

    Returns:
        ``(t, 15, 3)`` (``(t, 18, 3)`` with ``end_sites``) float64 positions in metres, Y-up.
    """
    frames = np.asarray(frames, dtype=np.float64)
    t = frames.shape[0]
    local = np.broadcast_to(np.eye(3), (t, 15, 3, 3)).copy()
    local[:, 0] = quat_matrix(frames[:, 4:8])
    for j, k, kind in _LAYOUT:
        if kind == "q":
            local[:, j] = quat_matrix(frames[:, k:k + 4])
        else:
            c, s = np.cos(frames[:, k]), np.sin(frames[:, k])
            local[:, j, 0, 0], local[:, j, 0, 1], local[:, j, 1, 0], local[:, j, 1, 1] = c, -s, s, c
    rot = np.empty_like(local)
    pos = np.empty((t, 15, 3))
    rot[:, 0], pos[:, 0] = local[:, 0], frames[:, 1:4]
    for j in range(1, 15):
        p = DEEPMIMIC_PARENTS[j]
        rot[:, j] = rot[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + rot[:, p] @ (origins[j] * scale)
    if end_sites:
        sites = [pos[:, j] + rot[:, j] @ (np.asarray(offset) * scale) for j, offset in END_SITES.values()]
        pos = np.concatenate([pos, np.stack(sites, axis=1)], axis=1)
    return pos


def _resample_frames(frames: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    n = int(np.floor(times[-1] * fps + 1e-2)) + 1  # durations are written with ~5 digits
    target = np.minimum(np.arange(n) / fps, times[-1])
    hi = np.clip(np.searchsorted(times, target, side="right"), 1, len(times) - 1)
    lo = hi - 1
    w = ((target - times[lo]) / np.maximum(times[hi] - times[lo], 1e-12)).clip(0, 1)[:, None]
    out = frames[lo] * (1 - w) + frames[hi] * w  # positions and hinge angles: linear
    for k in [4] + [k for _, k, kind in _LAYOUT if kind == "q"]:
        out[:, k:k + 4] = _slerp(frames[lo, k:k + 4], frames[hi, k:k + 4], w)
    return out


def clip_label(path: str | Path) -> str:
    """Action label of a clip file: the stem without ``humanoid3d_`` and leading/trailing digits."""
    stem = Path(path).stem.removeprefix("humanoid3d_")
    return re.sub(r"^\d+|\d+$", "", stem) or stem


def read_deepmimic(
    clip_txt: str | Path, *, fps: float | None = None, name: str | None = None, action: str | None = None
) -> Motion:
    """Read a DeepMimic humanoid clip into joint positions (metres, Z-up): the 15 :data:`DEEPMIMIC_JOINTS`, then
    the 3 :data:`END_SITES` (``head_end``, ``right_toe_end``, ``left_toe_end``; children of ``neck`` and the ankles).

    Args:
        clip_txt: the clip file (JSON with ``Frames``).
        fps: output rate. ``None`` keeps the keyframes when their durations are uniform, otherwise
            resamples at ``1 / median duration``. Resampling slerps the quaternions and interpolates the
            root position and hinge angles linearly between keyframes (bone lengths stay exact).
        name: motion name (default: the file stem without ``humanoid3d_``).
        action: action label (default: :func:`clip_label`).

    Raises:
        ValueError: naming the file and the field or frame that is malformed.
    """
    path = Path(clip_txt)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read DeepMimic clip JSON ({e})") from None
    frames = data.get("Frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: field 'Frames' must be a non-empty list of frames")
    for i, f in enumerate(frames):
        if not isinstance(f, list) or len(f) != FRAME_SIZE or not all(isinstance(v, (int, float)) for v in f):
            raise ValueError(f"{path}: Frames[{i}] must hold {FRAME_SIZE} numbers, got {str(f)[:80]}")
    frames = np.array(frames, dtype=np.float64)
    if not np.isfinite(frames).all() or (frames[:, 0] < 0).any():
        raise ValueError(f"{path}: Frames hold NaN/inf values or negative durations")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    keep = np.concatenate([[True], np.diff(times) > 1e-9])  # a zero duration repeats a time: keep the first
    frames, times = frames[keep], times[keep]
    steps = np.diff(times)
    if len(frames) > 1 and fps is None and np.ptp(steps) < 1e-4:
        rate = 1.0 / steps.mean()
    else:
        rate = fps if fps is not None else (1.0 / float(np.median(steps)) if len(steps) else 30.0)
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if len(frames) > 1:
            frames = _resample_frames(frames, times, rate)
    if abs(rate - round(rate)) < 1e-3 * rate:
        rate = float(round(rate))
    pos = y_up_to_z_up(deepmimic_fk(frames, end_sites=True))
    label = clip_label(path)
    names = list(DEEPMIMIC_JOINTS) + list(END_SITES)
    parents = np.concatenate([DEEPMIMIC_PARENTS, [j for j, _ in END_SITES.values()]])
    return Motion(name or path.stem.removeprefix("humanoid3d_"), names, parents, pos.astype(np.float32), rate,
                  action if action is not None else label)
