"""A lean pre-norm transformer block with an optional key/value cache.

Shapes: ``b`` batch, ``n`` new tokens, ``m`` tokens attended to (cached + new), ``d`` features,
``h`` heads, ``e`` features per head (``d // h``).

Why not x-transformers' ``Encoder``/``Decoder`` here: x-transformers 2.31 does support cached
decoding for continuous inputs (``Decoder(x, cache=intermediates, return_hiddens=True)`` appends
``x[:, -cache_age:]`` to the keys/values kept in ``LayerIntermediates.attn_intermediates``), and a
full pass and a cached pass agree. But its forward is general-purpose Python: measured on the
2-core machine at batch 1, one cached ``Decoder`` step of dim 64 / depth 4 costs about 1.3 ms and a
depth-1 ``Encoder`` over 4 tokens about 0.4-0.5 ms, against about 0.3 ms and 0.09 ms for this block.
The prior calls both once per part (16 sequential steps per pose), so x-transformers alone would
cost about 27 ms per pose at batch 1, far from the 60 poses/s target. This block is therefore
written out (one fused qkv projection, ``F.scaled_dot_product_attention``, a SiLU MLP).
``GCSAB`` (causal, cached) and ``LSAB`` (bidirectional) are both stacks of it.

Generation loops use `eval_block`: the same arithmetic in eval mode on the block's parameters fetched once
(`CachedBlock.weights`), optionally with a `StaticKVCache` preallocated for the whole sequence and filled in place
(no concatenation of the earlier keys/values at every step). Outputs are bit for bit those of `CachedBlock.forward`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CachedBlock", "KVCache", "StaticKVCache", "BlockWeights", "attend", "eval_block"]


@dataclass(frozen=True)
class KVCache:
    """Keys and values of every block of a stack, for incremental decoding.

    Attributes:
        kv: one ``(keys, values)`` pair per block, each ``(b, h, m, e)``.
    """

    kv: tuple[tuple[Tensor, Tensor], ...]

    @property
    def length(self) -> int:
        """Number of positions already cached (``m``)."""
        return self.kv[0][0].shape[-2] if self.kv else 0

    @property
    def batch(self) -> int:
        """Batch size the cache was built for."""
        return self.kv[0][0].shape[0] if self.kv else 0


@dataclass(frozen=True)
class StaticKVCache:
    """Preallocated keys and values of every block of a stack, filled in place (`CachedBlock.forward_static`).

    Attributes:
        keys: ``(depth, b, h, L, e)``, position ``i`` of block ``l`` at ``keys[l, :, :, i]``.
        values: ``(depth, b, h, L, e)``, likewise.
    """

    keys: Tensor
    values: Tensor

    @classmethod
    def empty(cls, *, depth: int, batch: int, heads: int, length: int, head_dim: int,
              dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> "StaticKVCache":
        """An unfilled cache for ``length`` positions (contents undefined until written)."""
        shape = (depth, batch, heads, length, head_dim)
        return cls(torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device))


class CachedBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` (SiLU MLP).

    The forward calls ``F.layer_norm``/``F.linear`` on the submodules' weights instead of calling
    the submodules: at batch 1 the per-module call overhead is about half of this block's run time
    (about 0.09 ms against 0.16 ms per cached step at dim 64 on one core). The MLP uses SiLU rather
    than GELU: as good in practice, and on CPU exact GELU has a fixed cost of about 10 us per call
    against 3 us (batch 1; SiLU is also faster at batch 256, where tanh-GELU is three times slower).

    Args:
        dim: feature width ``d``.
        heads: attention heads; ``dim`` must be divisible by it (head width ``dim // heads``).
        causal: if True, position ``i`` attends only to positions ``<= i`` (cached ones included).
        dropout: dropout on attention weights, on the attention output, inside and after the MLP.
        ff_mult: MLP hidden width as a multiple of ``dim``.
    """

    def __init__(self, *, dim: int, heads: int = 8, causal: bool = False, dropout: float = 0.0, ff_mult: int = 4):
        super().__init__()
        if dim <= 0 or heads <= 0 or dim % heads:
            raise ValueError(f"dim must be a positive multiple of heads, got dim={dim}, heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dim, self.heads, self.causal, self.dropout = dim, heads, causal, dropout
        self.attn_norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff_in = nn.Linear(dim, ff_mult * dim)
        self.ff_out = nn.Linear(ff_mult * dim, dim)

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the block on new tokens, attending to cached keys/values first.

        Args:
            x: new tokens ``(b, n, d)``.
            kv: cached ``(keys, values)`` ``(b, h, m - n, e)`` of earlier positions, or None.

        Returns:
            ``(y, (keys, values))``: ``y`` ``(b, n, d)`` and the keys/values of all ``m``
            positions, to pass back as ``kv`` for the next tokens.
        """
        drop = self.dropout if self.training else 0.0
        h = F.layer_norm(x, (self.dim,), self.attn_norm.weight, self.attn_norm.bias)
        b, n, _ = x.shape
        # views, not einops: this runs (1 + depth) times per part while generating, where einops' parsing shows
        q, k, v = F.linear(h, self.to_qkv.weight).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if kv is not None:
            k = torch.cat((kv[0], k), dim=-2)
            v = torch.cat((kv[1], v), dim=-2)
        m = k.shape[-2]
        mask, is_causal = None, False
        if self.causal and n > 1:
            if n == m:
                is_causal = True
            else:  # new query i sits at position m - n + i and sees keys 0 .. m - n + i
                mask = torch.ones(n, m, dtype=torch.bool, device=x.device).tril(m - n)
        out = attend(q, k, v, mask=mask, is_causal=is_causal, dropout_p=drop)
        out = F.linear(out.transpose(1, 2).reshape(b, n, self.dim), self.to_out.weight)
        x = x + (F.dropout(out, drop, True) if drop else out)
        h = F.layer_norm(x, (self.dim,), self.ff_norm.weight, self.ff_norm.bias)
        h = F.silu(F.linear(h, self.ff_in.weight, self.ff_in.bias))
        if drop:
            h = F.dropout(h, drop, True)
        h = F.linear(h, self.ff_out.weight, self.ff_out.bias)
        return x + (F.dropout(h, drop, True) if drop else h), (k, v)

    def weights(self) -> "BlockWeights":
        """The block's parameters, fetched once for an eval-mode loop (`eval_block`)."""
        return BlockWeights(self.dim, self.heads, self.causal, self.attn_norm.weight, self.attn_norm.bias,
                            self.to_qkv.weight, self.to_out.weight, self.ff_norm.weight, self.ff_norm.bias,
                            self.ff_in.weight, self.ff_in.bias, self.ff_out.weight, self.ff_out.bias)

    def forward_static(self, x: Tensor, keys: Tensor, values: Tensor, start: int) -> Tensor:
        """`forward` in eval mode with a preallocated cache (`eval_block` on this block's weights)."""
        return eval_block(x, self.weights(), keys, values, start)


def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, is_causal: bool = False,
           dropout_p: float = 0.0) -> Tensor:
    """Scaled dot-product attention of ``q`` ``(b, h, n, e)`` over ``k``, ``v`` ``(b, h, m, e)``; ``(b, h, n, e)``.

    A single query without dropout (every generation step) is written as plain matmuls and a softmax: on a CPU the
    fused kernel's per-call setup costs more than the arithmetic there (measured at batch 256 on the demo prior:
    199 against 292 us per call eager, and 10-25 % more generation frames/s compiled). It rounds differently from
    the fused kernel in the last bits; the static and the concatenating caches both come here, so they agree
    exactly. Anything else goes to ``F.scaled_dot_product_attention``.
    """
    if q.shape[-2] == 1 and mask is None and not dropout_p:
        return ((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)


class BlockWeights(NamedTuple):
    """The parameters of one `CachedBlock` (and its sizes), fetched once for a generation loop: at batch 1,
    going through the modules' attributes at every step costs about as much as the small matmuls themselves."""

    dim: int
    heads: int
    causal: bool
    attn_norm_weight: Tensor
    attn_norm_bias: Tensor
    qkv: Tensor
    out: Tensor
    ff_norm_weight: Tensor
    ff_norm_bias: Tensor
    ff_in_weight: Tensor
    ff_in_bias: Tensor
    ff_out_weight: Tensor
    ff_out_bias: Tensor


def eval_block(x: Tensor, w: BlockWeights, keys: Tensor | None = None, values: Tensor | None = None,
               start: int = 0) -> Tensor:
    """`CachedBlock.forward` in eval mode on prefetched weights: the same arithmetic, no checks, no dropout.

    Without ``keys``/``values`` the block attends over ``x`` alone (causally if the block is causal). With them,
    a preallocated cache: the new keys/values are written in place at positions ``start .. start + n - 1`` and the
    queries attend to positions ``0 .. start + n - 1`` (a view of the buffers), so a step costs no copy of the
    earlier keys/values (at batch 256 the copies of `CachedBlock.forward`'s concatenation were a quarter of the
    prior's generation time). For inner loops whose inputs were checked at their entry.

    Args:
        x: new tokens ``(b, n, d)``.
        w: `CachedBlock.weights` of the block.
        keys: ``(b, h, L, e)`` buffer, positions ``< start`` filled by earlier calls, or None.
        values: ``(b, h, L, e)`` buffer, likewise.
        start: position of ``x``'s first token (``start + n <= L``).

    Returns:
        ``y`` ``(b, n, d)``.
    """
    b, n, _ = x.shape
    shape = (w.dim,)
    q, k, v = F.linear(F.layer_norm(x, shape, w.attn_norm_weight, w.attn_norm_bias), w.qkv).view(
        b, n, 3, w.heads, -1).permute(2, 0, 3, 1, 4)
    mask = None
    if keys is not None:
        end = start + n
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        k, v = keys[:, :, :end], values[:, :, :end]
        if w.causal and n > 1 and start > 0:  # new query i sits at position start + i and sees keys 0 .. start + i
            mask = torch.ones(n, end, dtype=torch.bool, device=x.device).tril(start)
    out = attend(q, k, v, mask=mask, is_causal=w.causal and n > 1 and mask is None)
    x = x + F.linear(out.transpose(1, 2).reshape(b, n, w.dim), w.out)
    h = F.silu(F.linear(F.layer_norm(x, shape, w.ff_norm_weight, w.ff_norm_bias), w.ff_in_weight, w.ff_in_bias))
    return x + F.linear(h, w.ff_out_weight, w.ff_out_bias)
