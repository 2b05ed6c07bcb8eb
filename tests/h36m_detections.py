"""CPN-like 2D detections for the Human3.6M fixture (tests/h36m_fixtures.py): detector-like noise, misses, scores.

`detector_like_2d` turns projected Human3.6M-17 joints into what a top-down detector writes into a VideoPose3D
``positions_2d`` file: Gaussian noise scaled per joint like a detector's errors (COCO's OKS sigmas,
`skeletok.data.views.occlusion.H36M_DETECTOR_SCALE`: wrists and ankles worst, the head best), a heavy tail (a few
keypoints a body part away), missed keypoints (more at wrists and ankles; written as NaN coordinates, or as
zero coordinates with score 0 as OpenPose does) and scores that fall with the error (high for clean points, near
zero for gross errors), plus frames where the detector found nobody (every keypoint missed).
"""

from __future__ import annotations

import numpy as np

from skeletok.data.views.occlusion import H36M_DETECTOR_SCALE
from skeletok.skeleton import H36M_17

# Chance that a keypoint is missed: wrists and ankles (small, fast, often occluded) four times the others.
MISS_BASE = 0.02
MISS_LIMB_ENDS = 0.08
LIMB_ENDS = tuple(H36M_17.index(f"{side}_{joint}") for side in ("left", "right") for joint in ("wrist", "ankle"))


def detector_like_2d(pix, rng: np.random.Generator, *, sigma_px: float = 2.0, scores: bool = True,
                     blank_frames=()) -> np.ndarray:
    """Detections of projected joints, as a VideoPose3D 2D array.

    Args:
        pix: ``(t, 17, 2)`` projected Human3.6M-17 joints, pixels.
        rng: random generator (all draws come from it, in a fixed order).
        sigma_px: noise standard deviation of an average joint, pixels.
        scores: write ``(t, 17, 3)`` = x, y, score with misses; ``False`` writes ``(t, 17, 2)`` with the same
            noise and no misses (VideoPose3D's CPN file has neither scores nor misses).
        blank_frames: frames where the detector found nobody: every keypoint missed (NaN, score 0).

    Returns:
        ``(t, 17, 3)`` or ``(t, 17, 2)`` float32. Scores lie in (0, 1] for detected keypoints,
        ``0.97 exp(-(e / (4 sigma_j))^2)`` of the error ``e`` (pixels) and the joint's noise ``sigma_j`` times a
        jitter in [0.9, 1.1], at least 0.02; 0 for misses.
    """
    pix = np.asarray(pix, dtype=np.float64)
    t = len(pix)
    sigma = sigma_px * H36M_DETECTOR_SCALE.astype(np.float64)  # (17,)
    noise = rng.normal(size=(t, 17, 2)) * sigma[:, None]
    gross = rng.random((t, 17)) < 0.01  # a few keypoints land a body part away
    noise += gross[..., None] * rng.normal(scale=25.0, size=(t, 17, 2))
    det = pix + noise
    if not scores:
        return det.astype(np.float32)
    err = np.linalg.norm(noise, axis=-1)
    score = 0.97 * np.exp(-((err / (4.0 * sigma)) ** 2)) * rng.uniform(0.9, 1.1, size=(t, 17))
    score = np.clip(score, 0.02, 1.0)
    rate = np.full(17, MISS_BASE)
    rate[list(LIMB_ENDS)] = MISS_LIMB_ENDS
    missed = rng.random((t, 17)) < rate
    as_nan = rng.random((t, 17)) < 0.5
    missed[list(blank_frames)] = True
    as_nan[list(blank_frames)] = True
    det[missed & as_nan] = np.nan
    det[missed & ~as_nan] = 0.0
    score[missed] = 0.0
    return np.concatenate([det, score[..., None]], axis=-1).astype(np.float32)
