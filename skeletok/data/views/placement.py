"""Camera placement for a sequence: a fixed rig, or a rig that follows the subject over the ground.

A *rig* is a list of :class:`~skeletok.data.views.cameras.Camera` looking at one target (the builder's
``RIG_TARGET``). The builder brings every sequence's mean root above that target. Two placements:

- ``"fixed"``: the rig stays where it is for the whole sequence. Right for takes that stay within a capture
  volume of a few metres (Human3.6M's case); a subject who walks away leaves the images, and past a camera
  ends up behind it.
- ``"follow"``: the whole rig is translated over the ground, frame by frame, so its target stays above the
  subject's smoothed root: the same relative geometry as the fixed rig (azimuths, distances, heights, focal
  lengths), re-centred on the root's ground-plane position. The root's horizontal path is smoothed by a centred
  moving average over ``window_s`` seconds (odd reflection at the ends, which keeps a straight walk exact), so
  the subject still moves a little in the images, as under a camera operator, and any clip length works.
  Heights are not followed: the rig keeps its height, so climbing rises in the images as with the fixed rig.

A rig translated by ``shift`` (metres, ``(3,)``, here horizontal) films a world point ``X`` exactly as the
original rig films ``X - shift``; the file stores the per-frame shift as ``rig_shift (n, 3)``
(:mod:`skeletok.data.sets.fileformat`): camera ``k`` at frame ``i`` is ``R_k``, ``t_k - R_k @ rig_shift[i]``.

In view. A frame is *in view* when every known point is at least :data:`NEAR_M` in front of every camera and
projects inside every image enlarged by :data:`MARGIN` of its size on each side (limbs of the committed
dataset reach up to 16 % outside under the fixed rig; a point further out, or behind a camera, is no
picture a camera could take). :func:`in_view` tells which frames are; the builder drops the others with a
warning, never writing them as data.

Shapes: ``n`` frames, ``j`` points, ``c`` cameras.
"""

from __future__ import annotations

import warnings

import numpy as np

from skeletok.data.views.cameras import Camera
from skeletok.errors import MotionWarning

__all__ = ["PLACEMENTS", "MARGIN", "NEAR_M", "follow_shift", "in_view", "view_report", "choose_placement",
           "place_sequence"]

PLACEMENTS = ("auto", "fixed", "follow")
MARGIN = 0.2  # fraction of the image size a point may lie outside the image and still count as in view
NEAR_M = 0.1  # least depth (metres) in front of a camera


def follow_shift(root_xy, target_xy, fps: float, window_s: float = 1.0) -> np.ndarray:
    """Per-frame translation ``(n, 3)`` of a rig aimed at ``target_xy`` so that it follows ``root_xy``.

    Args:
        root_xy: ``(n, 2)`` the root's ground-plane position per frame, metres.
        target_xy: ``(2,)`` the horizontal point the rig looks at when unshifted.
        fps: frame rate of the sequence.
        window_s: length of the centred moving average of the root path, seconds; ``0`` follows the root
            exactly (the pelvis then never moves horizontally in the images).

    Returns:
        ``(n, 3)`` float64 shifts ``(smoothed_root_xy - target_xy, 0)``.
    """
    root = np.asarray(root_xy, dtype=np.float64)
    if root.ndim != 2 or root.shape[1] != 2 or not np.isfinite(root).all():
        raise ValueError(f"root_xy must be finite (n, 2) metres, got shape {root.shape}")
    if not fps > 0 or not window_s >= 0:
        raise ValueError(f"fps must be positive and window_s >= 0, got fps={fps}, window_s={window_s}")
    n = len(root)
    half = min(int(round(window_s * fps / 2)), n - 1)
    smooth = root
    if half > 0:
        padded = np.pad(root, ((half, half), (0, 0)), mode="reflect", reflect_type="odd")
        cum = np.concatenate([np.zeros((1, 2)), np.cumsum(padded, axis=0)])
        smooth = (cum[2 * half + 1:] - cum[: n]) / (2 * half + 1)
    shift = np.zeros((n, 3))
    shift[:, :2] = smooth - np.asarray(target_xy, dtype=np.float64)[:2]
    return shift


def _view(cameras: list[Camera], points, shift) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and camera: ``behind (n, c)`` (a point nearer than NEAR_M) and ``outside (n, c)`` (how far out, as
    a fraction of the image size, the furthest point lies; 0 inside)."""
    pts = np.asarray(points, dtype=np.float64)  # (n, j, 3)
    if shift is not None:
        pts = pts - np.asarray(shift, dtype=np.float64)[:, None, :]
    known = np.isfinite(pts).all(-1)  # dense/fine may be NaN where unknown
    behind, outside = [], []
    for cam in cameras:
        xc = cam.to_camera(np.where(known[..., None], pts, 0.0))
        near = known & (xc[..., 2] < NEAR_M)
        pix = cam.project_camera(np.where(near[..., None], 1.0, xc))
        size = np.asarray(cam.size, dtype=np.float64)
        out = np.maximum(np.maximum(-pix, pix - size), 0.0) / size  # (n, j, 2)
        out = np.where(known[..., None], out, 0.0).max(axis=(-1, -2))
        behind.append(near.any(-1))
        outside.append(out)
    return np.stack(behind, 1), np.stack(outside, 1)


def in_view(cameras: list[Camera], points, shift=None, margin: float = MARGIN) -> np.ndarray:
    """``(n,)`` bool: whether every known point of each frame is in front of every camera and at most ``margin``
    of the image size outside every image.

    Args:
        cameras: the rig.
        points: ``(n, j, 3)`` world metres (NaN rows are skipped).
        shift: ``(n, 3)`` per-frame rig translation (:func:`follow_shift`), or ``None`` for a fixed rig.
        margin: allowed distance outside the image, as a fraction of its width (x) and height (y); ``0`` asks
            for every point inside the image.
    """
    behind, outside = _view(cameras, points, shift)
    return ~behind.any(1) & (outside <= margin).all(1)


def view_report(cameras: list[Camera], points, shift=None, margin: float = MARGIN) -> dict[str, int]:
    """Counts of frames: ``frames``, ``kept`` (in view), ``behind`` (a point behind or at a camera) and ``outside``
    (in front of every camera, but a point more than ``margin`` outside an image)."""
    behind, outside = _view(cameras, points, shift)
    b = behind.any(1)
    o = ~b & (outside > margin).any(1)
    return {"frames": len(b), "kept": int((~b & ~o).sum()), "behind": int(b.sum()), "outside": int(o.sum())}


def choose_placement(placement: str, cameras: list[Camera], points, root_xy, target_xy, fps: float,
                     window_s: float = 1.0) -> tuple[str, np.ndarray | None]:
    """Resolve a placement for one sequence: ``("fixed", None)`` or ``("follow", shift (n, 3))``.

    ``"auto"`` keeps the fixed rig when every known point of every frame is inside every image (no margin) and
    in front of every camera, and follows the subject otherwise.

    Args:
        placement: ``"auto"``, ``"fixed"`` or ``"follow"``.
        cameras: the rig.
        points: ``(n, j, 3)`` world metres of the sequence as placed for the fixed rig.
        root_xy: ``(n, 2)`` the root's ground-plane position.
        target_xy: ``(2,)`` where the unshifted rig looks.
        fps: frame rate.
        window_s: smoothing of the followed path (:func:`follow_shift`).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {list(PLACEMENTS)}, got {placement!r}")
    if placement == "fixed" or (placement == "auto" and in_view(cameras, points, None, margin=0.0).all()):
        return "fixed", None
    return "follow", follow_shift(root_xy, target_xy, fps, window_s)


def place_sequence(placed: list[np.ndarray], cameras: list[Camera], placement: str, fps: float, window_s: float,
                   target: np.ndarray, name: str, source: str) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
    """Place the rig for one sequence (:func:`choose_placement`) and drop its frames out of view (:func:`in_view`).

    Args:
        placed: the sequence's levels, each ``(n, j, 3)`` world metres, as placed for the fixed rig.
        cameras: the rig; ``placement``, ``fps`` and ``window_s`` as in :func:`choose_placement`.
        target: ``(3,)`` where the unshifted rig looks.
        name: the sequence's name and ``source`` its file (``""`` if none), for the messages.

    Returns:
        The kept frames' levels, rig shifts ``(n', 3)`` (``None`` for the fixed rig) and the ``(n,)`` mask of the
        kept frames.

    Warns:
        MotionWarning: counting the dropped frames (behind a camera, far outside an image) when some are.

    Raises:
        ValueError: naming the sequence and its source when no frame is in view.
    """
    points = np.concatenate(placed, axis=1)
    how, shift = choose_placement(placement, cameras, points, placed[0][:, 0, :2], target[:2], fps, window_s)
    keep = in_view(cameras, points, shift)
    if keep.all():
        return placed, shift, keep
    counts = view_report(cameras, points, shift)
    where = f"{source} ({name})" if source and not source.startswith("skeletok:") else name
    fix = "" if how == "follow" else "; try placement 'follow' (--placement follow)"
    if not keep.any():
        raise ValueError(f"{where}: no frame of this motion is in view of the cameras with placement {how!r}: "
                         f"{counts['behind']} frame(s) have a point behind a camera and {counts['outside']} a point "
                         f"more than {MARGIN:.0%} of the image outside it{fix}; check the file's unit and up axis")
    warnings.warn(f"{where}: dropped {len(keep) - counts['kept']} of {len(keep)} frames out of view of the cameras "
                  f"(placement {how!r}): {counts['behind']} with a point behind a camera, {counts['outside']} with a "
                  f"point more than {MARGIN:.0%} of the image outside it{fix}", MotionWarning, stacklevel=3)
    return [arr[keep] for arr in placed], None if shift is None else shift[keep], keep
