"""Synthetic occlusion of 2D poses, keypoint-level proxies of HiPART's image-level Table 1 (mask ratio, crop
ratio), plus detector noise. The paper occludes image pixels and re-runs a detector; these hide keypoints or cut
the keypoint box, so a hidden joint is known to be hidden and the visible ones stay exact (up to the noise).

- *Mask*: a fraction ``ratio`` of the sparse joints is hidden, exactly ``round(ratio * j)`` of
  them, chosen uniformly at random.
- *Crop*: a fraction ``ratio`` of the person's 2D bounding box (of the visible joints) is cut
  away from one side (left, right, top or bottom, at random unless given); joints outside the
  remaining box are hidden.
- *Detector noise*: Gaussian pixel noise, by default scaled per joint by the COCO keypoint
  OKS sigmas (hips and knees of a detector wander more than the nose), so it looks like
  detector error rather than uniform jitter.

Hidden joints are **marked invisible, never zero-filled**: their coordinates stay as they are,
so a model must read the visibility mask and must not look at hidden coordinates (skeletok's
networks replace them by a learned embedding).

Shapes: ``...`` any leading axes (samples), ``j`` joints, ``c = 2`` image coordinates. Arrays are
numpy; visibility is bool, ``True`` = visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SIDES",
    "H36M_DETECTOR_SCALE",
    "mask_joints",
    "crop_box",
    "add_detector_noise",
    "Occlusion",
]

SIDES = ("left", "right", "top", "bottom")

# COCO keypoint OKS sigmas (nose .026, ears .035, shoulders .079, elbows .072, wrists .062,
# hips .107, knees .087, ankles .089) mapped onto the Human3.6M-17 joints (pelvis and spine
# from the hips and shoulders around them), divided by their mean so the average scale is 1.
_OKS_H36M = np.array(
    [0.107, 0.107, 0.087, 0.089, 0.107, 0.087, 0.089, 0.093, 0.079, 0.026, 0.035,
     0.079, 0.072, 0.062, 0.079, 0.072, 0.062]
)
H36M_DETECTOR_SCALE = (_OKS_H36M / _OKS_H36M.mean()).astype(np.float32)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_ratio(name: str, ratio: float, high: float = 1.0) -> float:
    ratio = float(ratio)
    if not 0.0 <= ratio <= high:
        raise ValueError(f"{name} must lie in [0, {high}], got {ratio}")
    return ratio


def _check_visible(visible, points2d=None) -> np.ndarray:
    visible = np.asarray(visible)
    if visible.dtype != bool:
        raise ValueError(f"visible must be a bool array (True = visible), got dtype {visible.dtype}")
    if visible.ndim < 1:
        raise ValueError(f"visible must have shape (..., j), got {visible.shape}")
    if points2d is not None and (points2d.ndim < 2 or points2d.shape[-1] != 2 or points2d.shape[:-1] != visible.shape):
        raise ValueError(
            f"points2d must have shape (..., j, 2) matching visible {visible.shape} + (2,), got {points2d.shape}"
        )
    return visible


def mask_joints(visible, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Hide exactly ``round(ratio * j)`` joints per sample, chosen uniformly at random.

    Args:
        visible: ``(..., j)`` bool, the joints visible before masking.
        ratio: fraction of the ``j`` joints to hide, in ``[0, 1]`` (Table 1: 0.2 ... 0.8).
        rng: random generator.

    Returns:
        ``(..., j)`` bool: ``visible`` with the chosen joints set to ``False`` (joints hidden
        before stay hidden, so a sample that started fully visible has exactly
        ``round(ratio * j)`` hidden joints).
    """
    visible = _check_visible(visible)
    ratio = _check_ratio("ratio", ratio)
    _check_rng(rng)
    j = visible.shape[-1]
    k = int(round(ratio * j))
    if k == 0:
        return visible.copy()
    order = np.argsort(rng.random(visible.shape), axis=-1)
    hide = np.zeros(visible.shape, dtype=bool)
    np.put_along_axis(hide, order[..., :k], True, axis=-1)
    return visible & ~hide


def crop_box(points2d, visible, ratio: float, rng: np.random.Generator, side: str | None = None,
             *, return_box: bool = False):
    """Cut a fraction ``ratio`` of the person's 2D bounding box away from one side.

    The box is the axis-aligned bounding box of the visible joints of each sample. With
    ``side="left"`` the kept box is ``x >= x0 + ratio * (x1 - x0)`` (likewise right: ``x <=
    x1 - ratio * width``, top: ``y >= y0 + ratio * height``, bottom: ``y <= y1 - ratio *
    height``; image y points down). Joints outside the kept box are hidden; joints on its
    border stay visible. Coordinates are left unchanged.

    Args:
        points2d: ``(..., j, 2)`` image coordinates (pixels or normalised, x right, y down).
        visible: ``(..., j)`` bool.
        ratio: fraction of the box cut away, in ``[0, 1]`` (Table 1: 0.1 ... 0.4).
        rng: random generator (draws the side per sample when ``side`` is ``None``).
        side: ``"left"``, ``"right"``, ``"top"``, ``"bottom"`` or ``None`` for random.
        return_box: also return the kept box ``(..., 4)`` as ``(x0, y0, x1, y1)``.

    Returns:
        ``(..., j)`` bool visibility, and the kept box when ``return_box``.
    """
    points2d = np.asarray(points2d, dtype=np.float64)
    visible = _check_visible(visible, points2d)
    ratio = _check_ratio("ratio", ratio)
    _check_rng(rng)
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be one of {list(SIDES)} or None, got {side!r}")
    batch = visible.shape[:-1]
    sides = np.full(batch, SIDES.index(side)) if side is not None else rng.integers(0, 4, size=batch)
    out, box = _crop(points2d, visible, np.full(batch, ratio), sides)
    return (out, box) if return_box else out


def _crop(points2d: np.ndarray, visible: np.ndarray, ratio: np.ndarray, sides: np.ndarray):
    """:func:`crop_box` with a ratio ``(...,)`` and side index ``(...,)`` per sample."""
    vis = visible[..., None]
    lo = np.where(vis, points2d, np.inf).min(-2)
    hi = np.where(vis, points2d, -np.inf).max(-2)
    none = ~visible.any(-1)
    lo[none], hi[none] = 0.0, 0.0
    extent = hi - lo
    box = np.concatenate([lo, hi], axis=-1)  # (..., 4): x0, y0, x1, y1
    box[..., 0] += np.where(sides == 0, ratio * extent[..., 0], 0.0)
    box[..., 2] -= np.where(sides == 1, ratio * extent[..., 0], 0.0)
    box[..., 1] += np.where(sides == 2, ratio * extent[..., 1], 0.0)
    box[..., 3] -= np.where(sides == 3, ratio * extent[..., 1], 0.0)
    x, y = points2d[..., 0], points2d[..., 1]
    inside = (x >= box[..., None, 0]) & (x <= box[..., None, 2]) & (y >= box[..., None, 1]) & (y <= box[..., None, 3])
    return visible & inside, box


def add_detector_noise(points2d, sigma_px: float, rng: np.random.Generator, *, scale=None) -> np.ndarray:
    """Add Gaussian 2D noise of standard deviation ``sigma_px * scale[j]`` pixels.

    Args:
        points2d: ``(..., j, 2)`` pixels.
        sigma_px: noise standard deviation in pixels (0 returns a copy).
        rng: random generator.
        scale: ``(j,)`` per-joint multipliers; ``None`` uses :data:`H36M_DETECTOR_SCALE` when
            ``j == 17`` and 1 otherwise; pass ``np.ones(j)`` for uniform noise.

    Returns:
        ``(..., j, 2)`` float noisy pixels.
    """
    points2d = np.asarray(points2d, dtype=np.float64)
    if points2d.ndim < 2 or points2d.shape[-1] != 2:
        raise ValueError(f"points2d must have shape (..., j, 2), got {points2d.shape}")
    sigma_px = float(sigma_px)
    if sigma_px < 0:
        raise ValueError(f"sigma_px must be >= 0 pixels, got {sigma_px}")
    _check_rng(rng)
    j = points2d.shape[-2]
    if scale is None:
        scale = H36M_DETECTOR_SCALE if j == 17 else np.ones(j)
    scale = np.asarray(scale, dtype=np.float64)
    if scale.shape != (j,):
        raise ValueError(f"scale must have shape ({j},) (one multiplier per joint), got {scale.shape}")
    if sigma_px == 0:
        return points2d.copy()
    return points2d + rng.standard_normal(points2d.shape) * sigma_px * scale[:, None]


def _draw(value, rng: np.random.Generator) -> float:
    if isinstance(value, (tuple, list)):
        return float(rng.uniform(value[0], value[1]))
    return float(value)


@dataclass(frozen=True)
class Occlusion:
    """An occlusion protocol applied to each sample by the Dataset.

    Args:
        mask_ratio: fraction of sparse joints hidden (:func:`mask_joints`); a ``(low, high)``
            pair draws it uniformly per sample (then rounded to a joint count).
        crop_ratio: fraction of the 2D box cut away (:func:`crop_box`); a float or a
            ``(low, high)`` pair.
        noise_px: detector-like 2D noise in pixels (:func:`add_detector_noise`); a float or a
            ``(low, high)`` pair.
        probability: chance that a sample is masked/cropped at all (noise always applies).
        side: crop side, ``None`` for random.

    Order: noise first (what a detector sees), then crop (on the noisy points), then mask.
    """

    mask_ratio: float | tuple[float, float] = 0.0
    crop_ratio: float | tuple[float, float] = 0.0
    noise_px: float | tuple[float, float] = 0.0
    probability: float = 1.0
    side: str | None = None

    def __post_init__(self) -> None:
        for name in ("mask_ratio", "crop_ratio", "noise_px"):
            value = getattr(self, name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            if len(values) not in (1, 2) or any(v < 0 for v in values) or (name != "noise_px" and max(values) > 1):
                raise ValueError(
                    f"{name} must be a number (or (low, high) pair) in [0, {'inf' if name == 'noise_px' else 1}], "
                    f"got {value!r}"
                )
        _check_ratio("probability", self.probability)
        if self.side is not None and self.side not in SIDES:
            raise ValueError(f"side must be one of {list(SIDES)} or None, got {self.side!r}")

    def draw(self, rng: np.random.Generator, num_joints: int = 17) -> dict:
        """The random numbers of one sample, in a fixed order (so a seeded ``rng`` reproduces them).

        Returns:
            ``noise (j, 2)`` pixels (per-joint scaled as :func:`add_detector_noise`), ``crop``
            ratio (0 when not occluded), ``side`` index into :data:`SIDES`, ``mask_count`` joints
            to hide, ``mask_keys (j,)`` uniform keys (the ``mask_count`` smallest are hidden).
        """
        _check_rng(rng)
        sigma = _draw(self.noise_px, rng)
        scale = H36M_DETECTOR_SCALE if num_joints == 17 else np.ones(num_joints)
        noise = rng.standard_normal((num_joints, 2)) * (sigma * scale[:, None])
        occlude = self.probability >= 1.0 or rng.random() < self.probability
        crop, mask = _draw(self.crop_ratio, rng), _draw(self.mask_ratio, rng)
        side = SIDES.index(self.side) if self.side is not None else int(rng.integers(0, 4))
        return {"noise": noise, "crop": crop if occlude else 0.0, "side": side,
                "mask_count": int(round(mask * num_joints)) if occlude else 0, "mask_keys": rng.random(num_joints)}

    @staticmethod
    def apply_draws(points2d, visible, draws: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """Occlude a batch with per-sample draws (:meth:`draw`), vectorised.

        Args:
            points2d: ``(b, j, 2)`` pixels.
            visible: ``(b, j)`` bool.
            draws: ``b`` dicts from :meth:`draw`.

        Returns:
            ``(points2d (b, j, 2), visible (b, j))`` after noise, crop and mask.
        """
        points2d = np.asarray(points2d, dtype=np.float64)
        visible = _check_visible(visible, points2d)
        if points2d.ndim != 3 or len(draws) != len(points2d):
            raise ValueError(f"points2d must be (b, j, 2) with one draw per sample, got {points2d.shape} "
                             f"and {len(draws)} draws")
        points2d = points2d + np.stack([d["noise"] for d in draws])
        crop = np.array([d["crop"] for d in draws], dtype=np.float64)
        if (crop > 0).any():
            cropped, _ = _crop(points2d, visible, crop, np.array([d["side"] for d in draws]))
            visible = np.where((crop > 0)[:, None], cropped, visible)
        count = np.array([d["mask_count"] for d in draws])
        if (count > 0).any():
            rank = np.argsort(np.argsort(np.stack([d["mask_keys"] for d in draws]), axis=-1), axis=-1)
            visible = visible & ~(rank < count[:, None])
        return points2d, visible

    def apply(self, points2d, visible, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Occlude one sample or a batch (draws taken from ``rng`` sample after sample).

        Args:
            points2d: ``(..., j, 2)`` pixels.
            visible: ``(..., j)`` bool.
            rng: random generator.

        Returns:
            ``(points2d, visible)``: the (noisy) points, unchanged where hidden apart from
            the noise, and the visibility after crop and mask.
        """
        points2d = np.asarray(points2d, dtype=np.float64)
        visible = _check_visible(visible, points2d)
        batch, j = visible.shape[:-1], visible.shape[-1]
        flat_p, flat_v = points2d.reshape(-1, j, 2), visible.reshape(-1, j)
        draws = [self.draw(rng, j) for _ in range(len(flat_v))]
        out_p, out_v = self.apply_draws(flat_p, flat_v, draws)
        return out_p.reshape(batch + (j, 2)), out_v.reshape(batch + (j,))
