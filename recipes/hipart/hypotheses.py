"""Multi-hypothesis scoring: N poses sampled from the prior per input, scored as mean-of-N and best-of-N.

HiPART draws N = 1, 5, 20 hypotheses per sample (`HYPOTHESES`): tokens sampled from the prior at a temperature,
seeded, each densified and lifted by the hipart lifter. ``mean_of_n``: MPJPE of the average 3D pose of the N
hypotheses; ``best_of_n``: per sample the smallest MPJPE among the N, averaged; ``per_hypothesis``: the MPJPE of
single hypotheses, averaged over the N. At temperature 0 every hypothesis is the argmax one.
`recipes.hipart.evaluate` scores them on clean input and at mask `HYPOTHESIS_MASK`.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat

from .inference import HiPART
from skeletok.metrics import mpjpe

__all__ = ["HYPOTHESES", "HYPOTHESIS_MASK", "sample_hypotheses", "score_hypotheses", "hypothesis_scores"]

HYPOTHESES = (1, 5, 20)
# mask 0.2 hides 3 of the 17 joints: a pose the presets' lifter reads with the levels of its seen parts, placed by
# the prior's guesses of the hidden joints, so sampled tokens can change its 3D pose (at mask 0.4 it sees 10
# joints and is lifted without levels, on clean input its levels come from its joints alone)
HYPOTHESIS_MASK = 0.2


@torch.inference_mode()
def sample_hypotheses(model: HiPART, sparse_2d: torch.Tensor, visible: torch.Tensor, num: int, *,
                      temperature: float, generator: torch.Generator | None = None,
                      batch_size: int = 512, hide_levels: bool = False) -> torch.Tensor:
    """``num`` HiPART hypotheses per pose: tokens sampled from the prior at ``temperature`` (0 = argmax, so every
    hypothesis is the argmax one), densified and lifted by ``model.lifter``.

    The ``b * num`` rows are generated in full batches of ``batch_size`` (hypotheses of several poses share a
    forward pass), drawn in order from ``generator``.

    Args:
        model: the loaded `HiPART`.
        sparse_2d: ``(b, 17, 2)`` normalised.
        visible: ``(b, 17)`` bool.
        num: hypotheses per pose.
        temperature: sampling temperature of the prior's tokens.
        generator: random source (on ``model.device``).
        batch_size: rows per forward pass.

    Returns:
        ``(b, num, 17, 3)`` root-relative joints, metres, on the CPU.
    """
    x = repeat(sparse_2d, "b j c -> (b h) j c", h=num)
    vis = repeat(visible, "b j -> (b h) j", h=num)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xs, vs = x[start:start + batch_size].to(model.device), vis[start:start + batch_size].to(model.device)
        out.append(model.densify_and_lift(xs, vs, temperature=temperature, generator=generator,
                                          hide_levels=hide_levels)[-1].float().cpu())
    return rearrange(torch.cat(out), "(b h) j c -> b h j c", h=num)


def score_hypotheses(joints_mm: torch.Tensor, gt_mm: torch.Tensor, ns=HYPOTHESES) -> dict[str, dict[str, float]]:
    """Mean-of-N, best-of-N and per-hypothesis MPJPE of the first N hypotheses, for each N in ``ns``.

    Args:
        joints_mm: ``(b, h, 17, 3)`` hypotheses, ``h >= max(ns)``.
        gt_mm: ``(b, 17, 3)`` ground truth, same unit.

    Returns:
        ``{"mean_of_n": {N: ...}, "best_of_n": {N: ...}, "per_hypothesis": {N: ...}}`` with ``N`` as a string:
        MPJPE of the average pose of the N; the per-sample smallest MPJPE among the N, averaged; the MPJPE of
        single hypotheses averaged over the N.
    """
    per = mpjpe(joints_mm, repeat(gt_mm, "b j c -> b h j c", h=joints_mm.shape[1]), reduction="none")  # (b, h)
    out: dict[str, dict[str, float]] = {"mean_of_n": {}, "best_of_n": {}, "per_hypothesis": {}}
    for n in ns:
        out["mean_of_n"][str(n)] = float(mpjpe(joints_mm[:, :n].mean(1), gt_mm))
        out["best_of_n"][str(n)] = float(per[:, :n].min(1).values.mean())
        out["per_hypothesis"][str(n)] = float(per[:, :n].mean())
    return out


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def hypothesis_scores(model: HiPART, batch: dict, pred: dict, gt_mm: torch.Tensor, sel: torch.Tensor, *,
                      temperature: float, seed: int = 0, batch_size: int = 512,
                      hide_levels: bool = False) -> dict:
    """The report entry of one protocol's hypotheses: `HYPOTHESES` drawn on the samples ``sel`` and scored.

    Args:
        model: the loaded `HiPART`.
        batch: the protocol's samples (``sparse_2d``, ``sparse_visible``).
        pred: its predictions; ``pred["hipart"]`` (metres) gives the ``argmax`` score.
        gt_mm: ground truth of every sample, millimetres.
        sel: indices of the samples that get hypotheses.
        temperature: sampling temperature of the prior's tokens.
        seed: seed of the token sampling (a fresh generator on ``model.device``).
        batch_size: rows per forward pass.
        hide_levels: ablation of `recipes.hipart.inference.HiPART.densify_and_lift`.

    Returns:
        ``{"samples": int, "argmax": mm, **score_hypotheses(...)}``.
    """
    joints = sample_hypotheses(model, batch["sparse_2d"][sel], batch["sparse_visible"][sel],
                               max(HYPOTHESES), temperature=temperature, generator=_generator(model.device, seed),
                               batch_size=batch_size, hide_levels=hide_levels)
    scores = score_hypotheses(joints * 1000.0, gt_mm[sel])
    return {"samples": int(sel.numel()), "argmax": float(mpjpe(pred["hipart"][sel] * 1000.0, gt_mm[sel])), **scores}
