"""Keypoint-level occlusion sweeps: proxies of the paper's image-level Table 1.

The paper occludes image pixels and re-runs a 2D detector; here the projected keypoints are hidden (mask) or the
keypoint box is cut (crop), so a hidden joint is known to be hidden and the visible ones keep their exact (or
``_noisy``: Gaussian-perturbed) positions. Every protocol draws its occlusion with the same seed on the same
samples, and every lifter is scored on it:

- ``mask`` ratio r in `MASK_RATIOS`: exactly ``round(17 r)`` random joints hidden (proxy of Table 1, top);
- ``crop`` ratio r in `CROP_RATIOS`: a fraction r of the 2D keypoint box cut from a random side (proxy of Table 1,
  bottom);
- ``mask_noisy`` / ``crop_noisy``: the same with detector-like Gaussian 2D noise (``noise_px``, scaled per joint
  like COCO's OKS sigmas).

The oracle lifter gets the true dense and fine levels with the occluded sparse input (a bound on what better
generated levels could give). Used by `recipes.hipart.evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .data import make_dataset, ordered_batches
from .inference import HiPART, root_relative
from .report import METHODS
from skeletok.data.views.occlusion import Occlusion
from skeletok.metrics import mpjpe

__all__ = ["MASK_RATIOS", "CROP_RATIOS", "sweep_occlusion", "occlusion_sweep"]

MASK_RATIOS = (0.0, 0.2, 0.4, 0.6, 0.8)
CROP_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4)
KEYS = ("sparse_2d", "sparse_visible", "sparse_2d_clean", "dense_2d", "fine_2d", "sparse_3d", "action", "camera")


def _collect(data: Path, split: str, occlusion: Occlusion | None, seed: int, keep: torch.Tensor | None,
             inputs: str = "ground_truth", det_min_score: float = 0.0) -> dict:
    dataset = make_dataset(data, split=split, occlusion=occlusion, seed=seed, inputs=inputs,
                           det_min_score=det_min_score)
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in KEYS}
    for batch in ordered_batches(dataset, 1024):
        for k in KEYS:
            cols[k].append(batch[k])
    out = {k: torch.cat(v) for k, v in cols.items()}
    return out if keep is None else {k: v[keep] for k, v in out.items()}


def _subsample(n: int, max_samples: int) -> torch.Tensor | None:
    if max_samples <= 0 or n <= max_samples:
        return None
    return torch.linspace(0, n - 1, max_samples).round().long().unique()


@torch.inference_mode()
def _lift(model: HiPART, lifters: dict, batch: dict, batch_size: int,
          hide_levels: bool = False) -> dict[str, torch.Tensor]:
    """3D predictions (metres) of every lifter for one protocol's samples, plus the generated levels and tokens.

    The oracle lifter gets the true dense and fine levels beside the (possibly occluded) sparse input."""
    preds = {m: [] for m in lifters}
    parts: dict[str, list[torch.Tensor]] = {"dense_hat": [], "fine_hat": [], "q_s": [], "q_d": []}
    dev = model.device
    for start in range(0, batch["sparse_2d"].shape[0], batch_size):
        sl = slice(start, start + batch_size)
        xs, vis = batch["sparse_2d"][sl].to(dev), batch["sparse_visible"][sl].to(dev)
        dense, fine, q_s, q_d, joints = model.densify_and_lift(xs, vis, hide_levels=hide_levels)
        for key, value in zip(parts, (dense, fine, q_s, q_d)):
            parts[key].append(value.cpu())
        inputs = {
            "sparse_only": ([xs], [vis]),
            "oracle": ([xs, batch["dense_2d"][sl].to(dev), batch["fine_2d"][sl].to(dev)], [vis, None, None]),
        }
        for mode, lifter in lifters.items():
            lifted = joints if mode == "hipart" else root_relative(lifter(*inputs[mode]))
            preds[mode].append(lifted.float().cpu())
    out = {m: torch.cat(v) for m, v in preds.items()}
    out.update({key: torch.cat(values) for key, values in parts.items()})
    return out


def sweep_occlusion(protocol: str, ratio: float, noise_px: float = 0.0) -> Occlusion:
    """The occlusion of one cell of the sweep: ``protocol`` ``mask`` or ``crop`` at ``ratio`` on every sample, with
    detector-like 2D noise of ``noise_px`` pixels (0 = the noise-free protocol)."""
    return Occlusion(mask_ratio=ratio if protocol == "mask" else 0.0, crop_ratio=ratio if protocol == "crop" else 0.0,
                     noise_px=noise_px, probability=1.0)


def occlusion_sweep(model: HiPART, lifters: dict, data: Path, split: str, keep: torch.Tensor | None,
                    gt_mm: torch.Tensor, *, shown_mask: float, noise_px: float = 5.0, seed: int = 0,
                    inputs: str = "ground_truth", det_min_score: float = 0.0, batch_size: int = 512,
                    hide_levels: bool = False,
                    say: Callable[[str], None] = lambda msg: None) -> tuple[dict, tuple[dict, dict] | None]:
    """MPJPE of every lifter under every occlusion protocol and ratio.

    Args:
        model: the loaded `HiPART` (its ``lifter`` is ``lifters["hipart"]``).
        lifters: ``{method: lifter}`` in the order of `recipes.hipart.report.METHODS`.
        data: dataset file.
        split: its frames to evaluate.
        keep: indices of the evaluated samples among the split's (None = all).
        gt_mm: ``(n, 17, 3)`` ground truth of those samples, millimetres.
        shown_mask: the noise-free ``mask`` ratio whose samples and predictions are returned beside the scores.
        noise_px: detector-like noise of the ``*_noisy`` protocols, pixels.
        seed: seed of every occlusion draw.
        inputs: the 2D the models read: ``ground_truth`` or ``detections``.
        det_min_score: with detections, keypoints scoring below this are hidden (missed ones always are).
        batch_size: poses per forward pass.
        hide_levels: ablation of `recipes.hipart.inference.HiPART.densify_and_lift`.
        say: progress printer, one line per protocol.

    Returns:
        ``({protocol: {str(ratio): {method: mm}}}, (samples, predictions) at mask ratio ``shown_mask``, or None
        if no swept mask ratio is ``shown_mask``)``. Ratio 0 of ``mask`` and ``crop`` is one protocol, computed once.
    """
    protocols = {"mask": MASK_RATIOS, "crop": CROP_RATIOS}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    shown = None
    zero: dict[float, tuple[dict, dict]] = {}  # mask 0 and crop 0 are the same protocol: computed once
    for noisy in (False, True):
        for protocol, ratios in protocols.items():
            key = f"{protocol}_noisy" if noisy else protocol
            scores[key] = {}
            for r in ratios:
                occ = sweep_occlusion(protocol, r, noise_px if noisy else 0.0)
                if r == 0 and occ.noise_px in zero:
                    batch, p = zero[occ.noise_px]
                else:
                    batch = _collect(data, split, occ, seed, keep, inputs, det_min_score)
                    p = _lift(model, lifters, batch, batch_size, hide_levels)
                    if r == 0:
                        zero[occ.noise_px] = (batch, p)
                scores[key][str(r)] = {m: float(mpjpe(p[m] * 1000.0, gt_mm)) for m in METHODS}
                if protocol == "mask" and not noisy and abs(r - shown_mask) < 1e-9:
                    shown = (batch, p)
            say(f"{key}: " + ", ".join(f"{r}: " + "/".join(f"{v[m]:.1f}" for m in METHODS)
                                       for r, v in scores[key].items()) + f" ({'/'.join(METHODS)} mm)")
    return scores, shown
