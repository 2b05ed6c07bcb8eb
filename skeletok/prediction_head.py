"""PH: the prediction head of HiARM (HiPART stage 2, Alg. 2 line 7).

Shapes: ``b`` batch, ``p`` parts (or any leading dims ``...``), ``r`` dense tokens per part,
``d`` features, ``k`` codebook entries (``k_s`` sparse, ``k_d`` dense).

From ``h^i`` (the GCSAB output that has seen the condition and parts ``1..i``) the head gives logits
for part ``i + 1``'s sparse code, then, given that sparse code's embedding (the ground truth in
training, the model's own choice at inference), logits for its ``r`` dense codes from ``r`` parallel
linear heads (one matrix ``d -> r * k_d``). Dense codes of one part are thus predicted jointly in one
step, and a pose takes ``p`` sequential steps, not ``p * (1 + r)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PredictionHead"]


class PredictionHead(nn.Module):
    """Sparse logits from ``h``; dense logits from ``h`` and the chosen sparse code.

    Args:
        dim: feature width ``d``.
        codebook_size_sparse: ``k_s``.
        codebook_size_dense: ``k_d``.
        dense_per_part: ``r``.
        dropout: dropout inside the fusion MLP.
    """

    def __init__(
        self,
        *,
        dim: int,
        codebook_size_sparse: int,
        codebook_size_dense: int,
        dense_per_part: int = 3,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dense_per_part = dense_per_part
        self.to_sparse = nn.Linear(dim, codebook_size_sparse)
        self.fuse = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(2 * dim, dim),
        )
        self.dense_norm = nn.LayerNorm(dim)
        self.to_dense = nn.Linear(dim, dense_per_part * codebook_size_dense)

    def sparse_logits(self, h: Tensor) -> Tensor:
        """Logits ``(..., k_s)`` for the next part's sparse code from ``h`` ``(..., d)``."""
        return self.to_sparse(h)

    def dense_logits(self, h: Tensor, sparse_embed: Tensor) -> Tensor:
        """Logits ``(..., r, k_d)`` for the next part's dense codes.

        Args:
            h: GCSAB output ``(..., d)``.
            sparse_embed: embedding ``(..., d)`` of that part's sparse code (teacher-forced or chosen).
        """
        # the layers' functions rather than the modules and unflatten rather than einops: this runs once per
        # part while generating, where at batch 1 the per-call overhead is as large as the arithmetic
        fuse_in, _, dropout, fuse_out = self.fuse
        u = F.silu(F.linear(torch.cat((h, sparse_embed), dim=-1), fuse_in.weight, fuse_in.bias))
        if self.training:
            u = dropout(u)
        u = h + F.linear(u, fuse_out.weight, fuse_out.bias)
        u = F.layer_norm(u, self.dense_norm.normalized_shape, self.dense_norm.weight, self.dense_norm.bias,
                         self.dense_norm.eps)
        return F.linear(u, self.to_dense.weight, self.to_dense.bias).unflatten(-1, (self.dense_per_part, -1))

    def forward(self, h: Tensor, sparse_embed: Tensor) -> tuple[Tensor, Tensor]:
        """Both logits: ``((..., k_s), (..., r, k_d))``."""
        return self.sparse_logits(h), self.dense_logits(h, sparse_embed)
