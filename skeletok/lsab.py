"""LSAB: the Local Self-Attention Block of HiARM (HiPART stage 2, Alg. 2 lines 4-5).

Shapes: ``b`` batch, ``p`` parts, ``n = 1 + r`` code vectors of one part (its sparse code then its
``r`` dense codes), ``d`` features.

A small bidirectional transformer over the ``1 + r`` code embeddings of one part; ``g^i`` is the mean
of its outputs. All parts are processed in parallel as a batch of ``b * p`` short sequences. A learned
slot embedding tells the sparse code from the ``r`` dense ones (and the dense ones apart), otherwise
attention plus mean pooling would be blind to which code sits in which slot.

Built from `skeletok.cached_block.CachedBlock` (bidirectional, no cache) rather than an
x-transformers ``Encoder``: during generation LSAB runs once per part at batch 1, where the
x-transformers forward costs about 0.4-0.5 ms per call against about 0.09 ms (dim 64, depth 1,
2 CPU cores); see ``cached_block.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from skeletok._checks import check_tensor
from skeletok.cached_block import CachedBlock, eval_block

__all__ = ["LSAB"]


class LSAB(nn.Module):
    """Bidirectional self-attention over the code vectors of each part, mean-pooled per part.

    Args:
        dim: feature width ``d``.
        depth: number of transformer blocks (1 by default: the sequences have only ``1 + r`` tokens).
        heads: attention heads (head width ``dim // heads``).
        num_slots: code vectors per part, ``1 + r`` (4 in HiPART).
        dropout: dropout inside the blocks.
        ff_mult: MLP hidden width as a multiple of ``dim``.

    Example:
        >>> lsab = LSAB(dim=32, heads=4, num_slots=4)
        >>> lsab(torch.randn(2, 16, 4, 32)).shape
        torch.Size([2, 16, 32])
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int = 1,
        heads: int = 8,
        num_slots: int = 4,
        dropout: float = 0.0,
        ff_mult: int = 4,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if num_slots < 1:
            raise ValueError(f"num_slots must be >= 1, got {num_slots}")
        self.dim = dim
        self.num_slots = num_slots
        self.slot_emb = nn.Parameter(torch.randn(num_slots, dim) * 0.02)
        self.blocks = nn.ModuleList(
            CachedBlock(dim=dim, heads=heads, causal=False, dropout=dropout, ff_mult=ff_mult) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, codes: Tensor) -> Tensor:
        """Summarise each part's code vectors into one vector ``g^i``.

        Args:
            codes: ``(b, p, 1 + r, d)`` embeddings of part ``i``'s sparse code (slot 0) and its ``r``
                dense codes (slots 1..r), already projected to width ``d``.

        Returns:
            ``g`` ``(b, p, d)``: the mean over slots of the (layer-normed) block outputs.

        Raises:
            ValueError: if ``codes`` is not ``(b, p, num_slots, dim)``.
        """
        check_tensor("codes", codes, (None, None, self.num_slots, self.dim), finite=False)
        b = codes.shape[0]
        return rearrange(self.summarise(rearrange(codes, "b p n d -> (b p) n d")), "(b p) d -> b p d", b=b)

    def summarise(self, codes: Tensor) -> Tensor:
        """`forward` without checks over a flat batch of parts: ``(m, 1 + r, d) -> (m, d)``.

        For generation loops (one part per step) whose inputs were checked at their entry.
        """
        x = codes + self.slot_emb
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x).mean(dim=1)

    def summariser(self):
        """`summarise` in eval mode with the weights fetched once: ``fn(codes (m, 1 + r, d)) -> (m, d)``, for a
        generation loop (the weights must not change while it is used)."""
        blocks = [block.weights() for block in self.blocks]
        slot_emb, norm = self.slot_emb, self.norm
        shape, norm_weight, norm_bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps

        def summarise(codes: Tensor) -> Tensor:
            x = codes + slot_emb
            for weights in blocks:
                x = eval_block(x, weights)
            return F.layer_norm(x, shape, norm_weight, norm_bias, eps).mean(dim=1)

        return summarise
