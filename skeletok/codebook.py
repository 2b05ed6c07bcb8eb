"""Hierarchical codebook: one vector-quantisation codebook per token level.

Shape notation (see docs/concepts.md): ``b`` batch, ``m`` tokens of one level, ``d`` code
dimension of that level, ``k`` codebook size of that level.

Each level is a `vector_quantize_pytorch.VectorQuantize` with an EMA-updated codebook (``decay``),
k-means initialisation on the first batch it sees, dead-code revival (codes whose EMA usage falls
below ``threshold_ema_dead_code`` are replaced by vectors of the current batch) and the rotation
trick to pass gradients to the encoder. HiPART uses two levels: level 0 = sparse (one token per
part), level 1 = dense (``r`` tokens per part); the class is generic in the number of levels.

Codes live in the same space as the encoder output (``VectorQuantize`` is built with
``codebook_dim == dim``, so it has no internal projection); put any projection in the model.
Therefore ``lookup(level, indices)`` returns exactly the vectors ``quantize`` returned for those
indices (bit-exact in eval mode; in training mode the EMA update moves the table *after* each call).

Nothing here communicates across processes unless ``sync_codebook=True`` (the DDP recipe sets it),
in which case k-means init and EMA statistics are all-reduced.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from skeletok._checks import check_index_range, check_tensor

__all__ = ["HierarchicalCodebook"]


class HierarchicalCodebook(nn.Module):
    """One EMA vector-quantisation codebook per level.

    Args:
        codebook_sizes: ``k`` per level, e.g. ``(256, 512)`` for HiPART's sparse and dense levels.
        dims: code dimension ``d`` per level (an int applies to every level).
        beta: commitment weight; ``quantize`` returns ``beta * mean((z - sg(z_q))^2)``.
        decay: EMA decay of the code vectors and usage counts.
        kmeans_init: initialise each codebook by k-means on the first batch it quantises.
        kmeans_iters: k-means iterations for that initialisation.
        threshold_ema_dead_code: codes with EMA usage below this are replaced by batch vectors
            (0 disables revival).
        sync_codebook: all-reduce k-means init and EMA statistics across processes (DDP). Default
            ``False``: no hidden collectives.
    """

    def __init__(self, *, codebook_sizes: Sequence[int] = (256, 512), dims: int | Sequence[int] = 128,
                 beta: float = 0.25, decay: float = 0.99, kmeans_init: bool = True, kmeans_iters: int = 10,
                 threshold_ema_dead_code: float = 2.0, sync_codebook: bool = False):
        super().__init__()
        sizes = [int(k) for k in codebook_sizes]
        dims = [int(dims)] * len(sizes) if isinstance(dims, int) else [int(d) for d in dims]
        if not sizes or len(dims) != len(sizes):
            raise ValueError(f"codebook_sizes and dims must name the same, non-zero number of levels, "
                             f"got codebook_sizes={sizes}, dims={dims}")
        if min(sizes) < 1 or min(dims) < 1:
            raise ValueError(f"codebook sizes and dims must be >= 1, got codebook_sizes={sizes}, dims={dims}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.sizes, self.dims, self.beta = sizes, dims, float(beta)
        self.sync_codebook = bool(sync_codebook)
        self.levels = nn.ModuleList(
            VectorQuantize(
                dim=d, codebook_size=k, codebook_dim=d, decay=decay, kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters, threshold_ema_dead_code=threshold_ema_dead_code,
                commitment_weight=0.0,  # computed here, identically in train and eval mode
                sync_codebook=self.sync_codebook, sync_kmeans=self.sync_codebook,
            )
            for k, d in zip(sizes, dims)
        )

    @property
    def num_levels(self) -> int:
        """Number of token levels."""
        return len(self.levels)

    def _level(self, level) -> int:
        if not isinstance(level, int) or not 0 <= level < len(self.levels):
            raise ValueError(f"level must be an int in [0, {len(self.levels)}), got {level!r}")
        return level

    def quantize(self, level: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise latents to their nearest codes (and update the codebook in training mode).

        Args:
            level: codebook level (0 = sparse in HiPART).
            z: ``(b, m, d)`` latents.

        Returns:
            ``z_q (b, m, d)``: the code vectors, with the rotation-trick gradient to ``z`` in training;
            ``indices (b, m)`` long; ``commit_loss``: 0-d tensor ``beta * mean((z - sg(z_q))^2)``.
        """
        level = self._level(level)
        check_tensor("z", z, (None, None, self.dims[level]))
        vq = self.levels[level]
        # eval: exactly the table rows; training: the rotation-trick output, equal to the rows of the
        # table *before* this call's EMA update up to float rounding.
        z_q, indices, _ = vq(z)
        commit = self.beta * F.mse_loss(z, z_q.detach()) if self.beta > 0 else z.new_zeros(())
        return z_q, indices.long(), commit

    def lookup(self, level: int, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``indices (...)`` at ``level``: ``(..., d)``."""
        level = self._level(level)
        check_tensor("indices", indices, [None] * indices.ndim if isinstance(indices, torch.Tensor) else (None,),
                     kind="int")
        check_index_range("indices", indices, self.sizes[level])
        return self.levels[level].get_codes_from_indices(indices.long())

    def codes(self, level: int) -> torch.Tensor:
        """The code table of ``level``: ``(k, d)`` (a view of the EMA buffer; clone before editing)."""
        return self.levels[self._level(level)].codebook

    def _counts(self, level: int, indices: torch.Tensor) -> torch.Tensor:
        level = self._level(level)
        check_tensor("indices", indices, [None] * indices.ndim if isinstance(indices, torch.Tensor) else (None,),
                     kind="int")
        check_index_range("indices", indices, self.sizes[level])
        if indices.numel() == 0:
            raise ValueError("indices must hold at least one index, got an empty tensor")
        return torch.bincount(indices.reshape(-1).long(), minlength=self.sizes[level]).double()

    def usage(self, level: int, indices: torch.Tensor) -> float:
        """Fraction of the ``k`` codes of ``level`` that appear at least once in ``indices``."""
        counts = self._counts(level, indices)
        return float((counts > 0).double().mean())

    def perplexity(self, level: int, indices: torch.Tensor) -> float:
        """``exp(entropy)`` of the empirical code distribution in ``indices``: 1 (one code) .. ``k`` (uniform)."""
        counts = self._counts(level, indices)
        prob = counts / counts.sum()
        entropy = -(prob * prob.clamp_min(1e-30).log()).sum()
        return float(entropy.exp())
