"""Pose error metrics: MPJPE, P-MPJPE, N-MPJPE, 2D mean error, 3D PCK and AUC.

Every metric works in the unit of its input and returns it unchanged: pass millimetres to get
millimetres (the recipes convert the metre-valued network outputs to millimetres before scoring,
see ``docs/concepts.md``). PCK and AUC thresholds are in the same unit, millimetres by default.

Shapes: ``b`` batch, ``t`` time (optional), ``j`` joints, ``c`` coordinates (3, or 2 for
``mean_error_2d``). With ``reduction="none"`` a metric returns one value per pose, ``(b,)`` or
``(b, t)``; with ``reduction="mean"`` (default) the mean over all poses, a scalar tensor.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange

from skeletok._checks import check_choice, check_tensor

__all__ = [
    "mpjpe",
    "p_mpjpe",
    "n_mpjpe",
    "mean_error_2d",
    "pck3d",
    "auc",
    "procrustes_align",
    "scale_align",
]

REDUCTIONS = ("mean", "none")


def _check_pair(pred, target, coords: int) -> None:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a tensor of shape (b, j, {coords}) or (b, t, j, {coords}), got {got}")
    dims: dict[str, int] = {}
    spec = ("b", "j", coords) if pred.ndim == 3 else ("b", "t", "j", coords)
    check_tensor("pred", pred, spec, dims=dims)
    if target.shape != pred.shape:
        raise ValueError(f"target must have the same shape as pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    check_tensor("target", target, spec, dims=dims)


def _reduce(per_pose: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice("reduction", reduction, REDUCTIONS)
    return per_pose.mean() if reduction == "mean" else per_pose


def _joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(pred - target, dim=-1)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align each predicted pose to its target by the best similarity transform.

    Solves ``min_{s, R, t} sum_j ||s R pred_j + t - target_j||^2`` per pose (Umeyama / orthogonal
    Procrustes with scale) with a batched SVD; ``R`` is a proper rotation (``det R = +1``): when the
    best orthogonal matrix is a reflection, the smallest singular direction is flipped.
    Computed in float64 and returned in ``pred``'s dtype.

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses.
        target: ``(b, [t,] j, 3)`` target poses, same unit.

    Returns:
        ``(b, [t,] j, 3)`` the aligned prediction, in the target's frame.

    Raises:
        ValueError: if the shapes differ or are not ``(b, [t,] j, 3)``, or a value is NaN/inf.
    """
    _check_pair(pred, target, 3)
    shape, dtype = pred.shape, pred.dtype
    x = rearrange(pred, "... j c -> (...) j c").double()
    y = rearrange(target, "... j c -> (...) j c").double()
    mu_x, mu_y = x.mean(dim=1, keepdim=True), y.mean(dim=1, keepdim=True)
    x0, y0 = x - mu_x, y - mu_y
    cov = x0.transpose(1, 2) @ y0  # (n, 3, 3): sum_j x_j y_j^T
    u, s, vh = torch.linalg.svd(cov)
    v = vh.transpose(1, 2)
    sign = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.ones_like(s)
    d[:, -1] = sign
    rot = v @ torch.diag_embed(d) @ u.transpose(1, 2)  # y ≈ s R x
    var_x = (x0**2).sum(dim=(1, 2)).clamp_min(torch.finfo(torch.float64).tiny)
    scale = (s * d).sum(dim=1) / var_x
    aligned = scale[:, None, None] * x0 @ rot.transpose(1, 2) + mu_y
    return aligned.reshape(shape).to(dtype)


def scale_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rescale each predicted pose by the least-squares scale ``s = <pred, target> / <pred, pred>``.

    No centring and no rotation (the VideoPose3D N-MPJPE convention, for root-relative poses).

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses.
        target: ``(b, [t,] j, 3)`` target poses, same unit.

    Returns:
        ``(b, [t,] j, 3)`` the rescaled prediction.

    Raises:
        ValueError: if the shapes differ or are not ``(b, [t,] j, 3)``, or a value is NaN/inf.
    """
    _check_pair(pred, target, 3)
    num = (pred * target).sum(dim=(-2, -1), keepdim=True)
    den = (pred * pred).sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(pred.dtype).tiny)
    return num / den * pred


def mpjpe(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Mean per-joint position error: the mean Euclidean distance between matching joints.

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses (e.g. millimetres, root-relative).
        target: ``(b, [t,] j, 3)`` target poses, same unit and frame.
        reduction: ``"mean"`` (a scalar over all poses) or ``"none"`` (``(b,)`` / ``(b, t)``).

    Returns:
        The error in the input unit.

    Raises:
        ValueError: on a shape mismatch, a wrong number of coordinates, NaN/inf or a bad ``reduction``.
    """
    _check_pair(pred, target, 3)
    return _reduce(_joint_errors(pred, target).mean(-1), reduction)


def p_mpjpe(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Procrustes-aligned MPJPE (PA-MPJPE, protocol 2): MPJPE after `procrustes_align`.

    The alignment minimises the *squared* error, so P-MPJPE (a mean of distances) is usually but
    not always below MPJPE: a single outlier joint can make it larger. The aligned sum of squared
    errors is always at most the unaligned one.

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses.
        target: ``(b, [t,] j, 3)`` target poses, same unit.
        reduction: ``"mean"`` or ``"none"`` (one value per pose).

    Returns:
        The error in the input unit.

    Raises:
        ValueError: on a shape mismatch, a wrong number of coordinates, NaN/inf or a bad ``reduction``.
    """
    return _reduce(_joint_errors(procrustes_align(pred, target), target).mean(-1), reduction)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Scale-normalised MPJPE (N-MPJPE): MPJPE after `scale_align` (scale only, no rotation).

    Args:
        pred: ``(b, [t,] j, 3)`` predicted root-relative poses.
        target: ``(b, [t,] j, 3)`` target root-relative poses, same unit.
        reduction: ``"mean"`` or ``"none"`` (one value per pose).

    Returns:
        The error in the input unit.

    Raises:
        ValueError: on a shape mismatch, a wrong number of coordinates, NaN/inf or a bad ``reduction``.
    """
    return _reduce(_joint_errors(scale_align(pred, target), target).mean(-1), reduction)


def mean_error_2d(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Mean per-point 2D distance (the "2D mean error" of densification results).

    Args:
        pred: ``(b, [t,] j, 2)`` predicted 2D points (e.g. pixels).
        target: ``(b, [t,] j, 2)`` target 2D points, same unit.
        reduction: ``"mean"`` or ``"none"`` (one value per pose).

    Returns:
        The error in the input unit.

    Raises:
        ValueError: on a shape mismatch, ``c != 2``, NaN/inf or a bad ``reduction``.
    """
    _check_pair(pred, target, 2)
    return _reduce(_joint_errors(pred, target).mean(-1), reduction)


def pck3d(
    pred: torch.Tensor, target: torch.Tensor, threshold: float = 150.0, *, reduction: str = "mean"
) -> torch.Tensor:
    """3D percentage of correct keypoints: percent of joints closer than ``threshold`` to the target.

    A joint counts as correct when its Euclidean error is strictly below ``threshold``.

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses.
        target: ``(b, [t,] j, 3)`` target poses, same unit.
        threshold: distance in the input unit, 150 (millimetres) by default; must be >= 0.
        reduction: ``"mean"`` or ``"none"`` (one value per pose).

    Returns:
        Percent in ``[0, 100]``.

    Raises:
        ValueError: on a shape mismatch, NaN/inf, a negative ``threshold`` or a bad ``reduction``.
    """
    _check_pair(pred, target, 3)
    threshold = float(threshold)
    if not threshold >= 0.0:
        raise ValueError(f"threshold must be a non-negative distance, got {threshold}")
    correct = (_joint_errors(pred, target) < threshold).to(pred.dtype)
    return _reduce(100.0 * correct.mean(-1), reduction)


def auc(
    pred: torch.Tensor,
    target: torch.Tensor,
    thresholds: Sequence[float] | torch.Tensor | None = None,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """Area under the 3D PCK curve: the mean of `pck3d` over ``thresholds``.

    Args:
        pred: ``(b, [t,] j, 3)`` predicted poses.
        target: ``(b, [t,] j, 3)`` target poses, same unit.
        thresholds: distances in the input unit; by default 0 to 150 (millimetres) in 31 steps of 5.
        reduction: ``"mean"`` or ``"none"`` (one value per pose).

    Returns:
        Percent in ``[0, 100]``.

    Raises:
        ValueError: on a shape mismatch, NaN/inf, empty or negative ``thresholds`` or a bad ``reduction``.
    """
    _check_pair(pred, target, 3)
    if thresholds is None:
        thresholds = torch.linspace(0.0, 150.0, 31)
    th = torch.as_tensor(thresholds, dtype=pred.dtype, device=pred.device).flatten()
    if th.numel() == 0 or not torch.isfinite(th).all() or (th < 0).any():
        raise ValueError(f"thresholds must be a non-empty sequence of finite distances >= 0, got {thresholds}")
    err = _joint_errors(pred, target)
    correct = (err[..., None] < th).to(pred.dtype)  # (..., j, n)
    return _reduce(100.0 * correct.mean(dim=(-2, -1)), reduction)
