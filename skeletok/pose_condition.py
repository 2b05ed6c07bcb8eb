"""The HiARM condition: a sparse 2D pose with visibility, encoded into prefix tokens.

Shapes: ``b`` batch, ``j`` joints, ``c = 2`` image coordinates (network 2D, about [-1, 1]),
``n`` prefix tokens, ``d`` features.

Each joint becomes a token: a linear embedding of its ``(u, v)`` if visible, a learned "invisible"
embedding otherwise (hidden joints are never zero-filled: their coordinates are not read at all, so
moving a hidden joint cannot change anything downstream). A learned per-joint position embedding
says which joint a token is. A bidirectional x-transformers ``Encoder`` mixes the joint tokens
(this runs once per pose, so its per-call overhead does not matter). The result is either the
``j`` joint tokens themselves (default: the autoregressive stack can attend to the joints of the
part it is predicting) or ``n`` tokens from a learned linear projection along the joint axis
(as in PCT's tokenizer), when ``num_tokens`` is given.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn
from x_transformers import Encoder

__all__ = ["PoseCondition"]


class PoseCondition(nn.Module):
    """Encode ``(x_s, visibility)`` into prefix tokens for an autoregressive prior.

    Args:
        dim: feature width ``d``.
        num_joints: joints ``j`` of the sparse skeleton (17 for Human3.6M).
        depth: x-transformers ``Encoder`` layers over the joint tokens (0: embeddings only).
        heads: attention heads (head width ``dim // heads``).
        num_tokens: prefix tokens ``n``; None keeps one token per joint (``n = j``).
        dropout: attention and MLP dropout in the encoder.
        coord_clamp: coordinates are clamped to ``[-coord_clamp, coord_clamp]`` before embedding
            (far outside the normalised range), so any finite input gives finite outputs.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_joints: int = 17,
        depth: int = 2,
        heads: int = 8,
        num_tokens: int | None = None,
        dropout: float = 0.0,
        coord_clamp: float = 1e4,
    ):
        super().__init__()
        if num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {num_joints}")
        if num_tokens is not None and num_tokens < 1:
            raise ValueError(f"num_tokens must be None or >= 1, got {num_tokens}")
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.num_joints = num_joints
        self.num_tokens = num_joints if num_tokens is None else num_tokens
        self.coord_clamp = coord_clamp
        self.to_embed = nn.Linear(2, dim)
        self.invisible_embed = nn.Parameter(torch.randn(dim) * 0.02)
        self.joint_pos = nn.Parameter(torch.randn(num_joints, dim) * 0.02)
        self.encoder = (
            Encoder(
                dim=dim,
                depth=depth,
                heads=heads,
                attn_dim_head=dim // heads,
                attn_dropout=dropout,
                ff_dropout=dropout,
                attn_flash=True,  # torch's fused scaled_dot_product_attention: same result, faster
            )
            if depth > 0
            else nn.LayerNorm(dim)
        )
        self.to_tokens = nn.Linear(num_joints, num_tokens) if num_tokens is not None else None

    def forward(self, x_s: Tensor, visibility: Tensor) -> Tensor:
        """Embed the visible joints, mask the hidden ones, mix, and return the prefix.

        Args:
            x_s: sparse 2D pose ``(b, j, 2)``, network-normalised image coordinates. Values at
                hidden joints are ignored (they may be anything, NaN included).
            visibility: ``(b, j)`` bool, True = visible.

        Returns:
            Prefix tokens ``(b, n, d)``.
        """
        visible = rearrange(visibility, "b j -> b j 1")
        coords = torch.where(visible, x_s, torch.zeros_like(x_s)).clamp(-self.coord_clamp, self.coord_clamp)
        tokens = torch.where(visible, self.to_embed(coords), self.invisible_embed) + self.joint_pos
        tokens = self.encoder(tokens)
        if self.to_tokens is not None:
            tokens = rearrange(self.to_tokens(rearrange(tokens, "b j d -> b d j")), "b d n -> b n d")
        return tokens
