"""Local and global alignment losses of HiPART's MSST tokenizer (Eq. 3 and Eq. 5 of the paper).

Shape notation (see docs/concepts.md): ``b`` batch, ``p`` parts, ``r`` dense tokens per part,
``d`` features, ``a`` actions.

* **Local alignment** ties each sparse code to its own part's dense codes: an InfoNCE loss between
  the sparse code ``z_s[b, i]`` (anchor) and the mean of the ``r`` dense codes ``z_d[b, i, :]``
  (positive). By default (``negatives="all"``) all other (sample, part) pairs of the batch are the
  negatives, so the sparse code of part ``i`` must be closer to its own dense codes than to other
  parts' and other poses'; ``negatives="parts"`` keeps only the other parts of the same pose (no
  false negatives from two poses that share a token). The loss is **symmetric** (sparse -> dense and
  dense -> sparse cross-entropies, averaged), as in CLIP.
* **Global alignment** ties the pose representation to its action: cosine similarity of a feature
  to ``a`` learned action prototypes, divided by ``tau``, then cross-entropy against the label.

Similarities are cosine similarities computed in a way that stays finite for every finite input
(vectors are first rescaled by their largest absolute entry, so huge values cannot overflow, and
zero vectors have similarity 0 to everything). Gradients are finite too, except for inputs so tiny
(subnormal) that the true gradient of a direction, about ``1 / |x|``, exceeds the float range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat

from skeletok._checks import check_choice, check_index_range, check_tensor

__all__ = ["local_alignment_loss", "global_alignment_loss"]


def _safe_unit(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last axis without overflow for any finite input; zero vectors stay zero."""
    scale = x.detach().abs().amax(dim=-1, keepdim=True)  # direction is scale-free: no gradient lost
    x = x / torch.where(scale > 0, scale, torch.ones_like(scale))
    return F.normalize(x, dim=-1, eps=1e-12)


def _check_tau(tau: float) -> float:
    if not isinstance(tau, (int, float)) or not tau > 0 or tau != tau or tau == float("inf"):
        raise ValueError(f"tau must be a positive finite float, got {tau!r}")
    return float(tau)


def local_alignment_loss(z_s: torch.Tensor, z_d: torch.Tensor, *, tau: float = 0.07,
                         negatives: str = "all") -> torch.Tensor:
    """Symmetric InfoNCE between every sparse code and the mean of its part's dense codes.

    Args:
        z_s: ``(b, p, d)`` sparse codes (one per part).
        z_d: ``(b, p, r, d)`` dense codes (``r`` per part).
        tau: softmax temperature (0.07 in HiPART).
        negatives: ``"all"`` (other parts and other samples) or ``"parts"`` (other parts of the
            same sample only).

    Returns:
        0-d tensor: ``(CE(S, I) + CE(S^T, I)) / 2`` where ``S[n, n'] = cos(z_s[n], mean_r z_d[n']) / tau``
        over the ``n = b * p`` (sample, part) pairs (``n = p`` per sample, averaged over samples, for
        ``"parts"``). Perfectly aligned, mutually orthogonal codes give ``log(1 + (n - 1) exp(-1 / tau))``
        (about ``1e-5 * n`` at ``tau = 0.07``); identical codes everywhere give ``log(n)``.
    """
    tau = _check_tau(tau)
    check_choice("negatives", negatives, ("all", "parts"))
    dims: dict[str, int] = {}
    check_tensor("z_s", z_s, ("b", "p", "d"), dims=dims)
    check_tensor("z_d", z_d, ("b", "p", None, "d"), dims=dims)
    if z_d.shape[2] < 1:
        raise ValueError(f"z_d must hold at least one dense code per part (r >= 1), got shape {tuple(z_d.shape)}")
    anchor = _safe_unit(z_s)
    # rescale per (sample, part) before averaging so the sum over r cannot overflow
    scale = reduce(z_d.detach().abs(), "b p r d -> b p 1 1", "max")
    z_d = z_d / torch.where(scale > 0, scale, torch.ones_like(scale))
    positive = _safe_unit(reduce(z_d, "b p r d -> b p d", "mean"))
    if negatives == "all":
        anchor, positive = rearrange(anchor, "b p d -> 1 (b p) d"), rearrange(positive, "b p d -> 1 (b p) d")
    logits = anchor @ positive.transpose(1, 2) / tau  # (g, n, n): g groups of n candidates
    target = repeat(torch.arange(logits.shape[1], device=logits.device), "n -> (g n)", g=logits.shape[0])
    forward = F.cross_entropy(rearrange(logits, "g n m -> (g n) m"), target)
    backward = F.cross_entropy(rearrange(logits, "g n m -> (g m) n"), target)
    return 0.5 * (forward + backward)


def global_alignment_loss(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor, *,
                          tau: float = 0.07) -> torch.Tensor:
    """Cross-entropy of cosine similarities to learned action prototypes.

    Args:
        features: ``(b, d)`` pose features (HiPART: the action head ``P_A`` applied to the pooled
            ``concat(z_d_hat, D_s(z_s_hat))``).
        labels: ``(b,)`` integer action labels in ``[0, a)``.
        prototypes: ``(a, d)`` learned action prototypes.
        tau: softmax temperature.

    Returns:
        0-d tensor ``CE(cos(features, prototypes) / tau, labels)``. A feature equal to its own
        prototype with orthogonal prototypes gives ``log(1 + (a - 1) exp(-1 / tau))``.
    """
    tau = _check_tau(tau)
    dims: dict[str, int] = {}
    check_tensor("features", features, ("b", "d"), dims=dims)
    check_tensor("labels", labels, ("b",), dims=dims, kind="int")
    check_tensor("prototypes", prototypes, ("a", "d"), dims=dims)
    if prototypes.shape[0] < 1:
        raise ValueError("prototypes must hold at least one action prototype, got shape (0, d)")
    check_index_range("labels", labels, prototypes.shape[0])
    logits = _safe_unit(features) @ _safe_unit(prototypes).T / tau
    return F.cross_entropy(logits, labels.long())
