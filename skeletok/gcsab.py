"""GCSAB: the Global Causal Self-Attention Block stack of HiARM (HiPART stage 2).

Shapes: ``b`` batch, ``n`` tokens fed in this call, ``m`` tokens seen so far (cached + new),
``d`` features, ``h`` heads, ``e`` features per head.

GCSAB runs causally over ``[condition prefix, g^1, ..., g^i]`` where ``g^i`` is the LSAB summary of
part ``i``; its output ``h^i`` at the last position predicts part ``i + 1``. Learned absolute
position embeddings (the sequence is short and of fixed layout) are added at the right offset
when decoding incrementally.

Incremental decoding: ``forward`` returns a `skeletok.cached_block.KVCache`; passing it
back with only the new token(s) reuses every earlier key/value, and gives the same outputs as a
full pass over the whole sequence (up to float rounding). For generation loops, `GCSAB.new_cache` and
`GCSAB.forward_static` do the same with a preallocated `skeletok.cached_block.StaticKVCache` that is
filled in place (no concatenation, no input checks inside the loop). The stack is built from
`skeletok.cached_block.CachedBlock` rather than an x-transformers ``Decoder``: the
x-transformers cache API works (``Decoder(x, cache=..., return_hiddens=True)``), but its per-step
Python overhead (about 1.3 ms per step at dim 64 / depth 4, batch 1, on 2 CPU cores) is four
times that of the lean block, and the prior takes 16 such steps per pose. See ``cached_block.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skeletok._checks import check_tensor
from skeletok.cached_block import CachedBlock, KVCache, StaticKVCache, eval_block

__all__ = ["GCSAB"]


class GCSAB(nn.Module):
    """Causal transformer over the condition prefix and the per-part summaries, with a KV cache.

    Args:
        dim: feature width ``d`` (128 in the paper, ``D_2``).
        depth: number of causal blocks (12 in the paper, ``L_2``).
        heads: attention heads (head width ``dim // heads``).
        max_seq_len: longest sequence (prefix + parts) it will see; sizes the position table.
        dropout: dropout inside every block (0.25 in the paper).
        ff_mult: MLP hidden width as a multiple of ``dim``.

    Example:
        >>> net = GCSAB(dim=32, depth=2, heads=4, max_seq_len=8)
        >>> x = torch.randn(2, 5, 32)
        >>> full, _ = net(x)
        >>> h, cache = net(x[:, :3])
        >>> h, cache = net(x[:, 3:4], cache=cache)
        >>> torch.allclose(h[:, -1], full[:, 3], atol=1e-5)
        True
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int = 12,
        heads: int = 8,
        max_seq_len: int = 64,
        dropout: float = 0.0,
        ff_mult: int = 4,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.dim = dim
        self.max_seq_len = max_seq_len
        self.pos_emb = nn.Parameter(torch.randn(max_seq_len, dim) * 0.02)
        self.blocks = nn.ModuleList(
            CachedBlock(dim=dim, heads=heads, causal=True, dropout=dropout, ff_mult=ff_mult) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, *, cache: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """Attend causally over the new tokens ``x`` placed after the cached ones.

        Args:
            x: new tokens ``(b, n, d)``; with ``cache=None`` this is the whole sequence.
            cache: keys/values returned by an earlier call on the preceding tokens, or None.

        Returns:
            ``(h, cache)``: ``h`` ``(b, n, d)`` the (layer-normed) outputs at the new positions, and
            the cache covering all ``m`` positions so far.

        Raises:
            ValueError: if ``x`` is not ``(b, n, dim)``, its batch differs from the cache's, or the
                sequence would exceed ``max_seq_len``.
        """
        check_tensor("x", x, (None, None, self.dim), finite=False)
        offset = 0 if cache is None else cache.length
        if cache is not None and cache.kv and cache.batch != x.shape[0]:
            raise ValueError(f"x has batch {x.shape[0]} but cache was built for batch {cache.batch}")
        if offset + x.shape[1] > self.max_seq_len:
            raise ValueError(
                f"x would extend the sequence to {offset + x.shape[1]} tokens (cached {offset} + new "
                f"{x.shape[1]}), expected at most max_seq_len={self.max_seq_len}"
            )
        x = x + self.pos_emb[offset : offset + x.shape[1]]
        past = cache.kv if cache is not None and cache.kv else (None,) * len(self.blocks)
        new_kv = []
        for block, kv in zip(self.blocks, past):
            x, kv = block(x, kv)
            new_kv.append(kv)
        return self.norm(x), KVCache(tuple(new_kv))

    def new_cache(self, batch: int, *, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> StaticKVCache:
        """A preallocated cache of ``max_seq_len`` positions for `forward_static`."""
        block = self.blocks[0]
        return StaticKVCache.empty(depth=len(self.blocks), batch=batch, heads=block.heads, length=self.max_seq_len,
                                   head_dim=self.dim // block.heads, dtype=dtype, device=device)

    def forward_static(self, x: Tensor, cache: StaticKVCache, start: int) -> Tensor:
        """`forward` (eval mode) of new tokens ``x`` ``(b, n, d)`` at positions ``start .. start + n - 1``, keys and
        values written into ``cache`` in place; returns ``h`` ``(b, n, d)``. No checks: the caller keeps
        ``start + n <= max_seq_len`` and the cache's batch equal to ``x``'s."""
        return self.stepper(cache)(x, start)

    def stepper(self, cache: StaticKVCache):
        """`forward_static` on ``cache`` with the weights fetched once: ``step(x, start) -> h``, for a generation
        loop in eval mode (the weights must not change while it is used)."""
        blocks = [(block.weights(), cache.keys[layer], cache.values[layer]) for layer, block in enumerate(self.blocks)]
        pos_emb, norm = self.pos_emb, self.norm
        shape, norm_weight, norm_bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps

        def step(x: Tensor, start: int) -> Tensor:
            x = x + pos_emb[start : start + x.shape[1]]
            for weights, keys, values in blocks:
                x = eval_block(x, weights, keys, values, start)
            return F.layer_norm(x, shape, norm_weight, norm_bias, eps)

        return step
