"""MLP-Mixer pose encoder and decoder (the PCT / HiPART MSST tokenizer backbone).

Shape notation (see docs/concepts.md): ``b`` batch, ``j`` points, ``m`` tokens, ``c`` coordinates,
``d`` features.

An encoder embeds every point linearly (``c -> d``), replaces missing points by a learned
embedding, runs ``depth`` MLP-Mixer blocks over the points (a token-mixing MLP across points and a
channel MLP, both pre-LayerNorm with residuals) and finally projects *along the point axis* from
``j`` points to ``m`` tokens. The decoder mirrors it: tokens are embedded, projected along the token
axis to ``j`` points, mixed, and a linear head maps each point to ``c`` coordinates.

The point-axis projection is either

* **dense** (``point_parts=None, token_parts=None``): a learned ``(m, j)`` matrix as in PCT, every
  token sees every point; or
* **part-structured**: token ``m`` pools only over points whose part id equals token ``m``'s part id
  (learned weights, initialised near the mean over those points). A token whose part owns no points
  falls back to pooling over *all* points, so no token is ever constant. The decoder applies the same
  rule transposed: point ``n`` is built from the tokens of its own part (all tokens if its part has
  none).

The Mixer blocks still mix information across all points, so part structure makes token ``i`` *about*
part ``i`` (it is read out from part ``i``'s points) without isolating it from the rest of the body.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange
from torch import nn

from skeletok._checks import check_finite_where, check_tensor, check_visibility

__all__ = ["MixerBlock", "PointAxisProjection", "PoseMixerEncoder", "PoseMixerDecoder"]


def _part_ids(name: str, parts, size: int) -> torch.Tensor:
    """Validate a per-point part id sequence and return it as a long tensor ``(size,)``."""
    try:
        ids = torch.as_tensor(list(parts) if not isinstance(parts, torch.Tensor) else parts)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of {size} integer part ids, got {type(parts).__name__}") from err
    if ids.ndim != 1 or ids.numel() != size:
        raise ValueError(f"{name} must hold one part id per point ({size}), got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.dtype == torch.bool:
        if ids.dtype == torch.bool or not torch.equal(ids, ids.round()):
            raise ValueError(f"{name} must hold integer part ids, got dtype {ids.dtype}")
    ids = ids.long()
    if size and int(ids.min()) < 0:
        raise ValueError(f"{name} must hold non-negative part ids, got minimum {int(ids.min())}")
    return ids


class PointAxisProjection(nn.Module):
    """Linear map along the point axis, ``(b, n_in, d) -> (b, n_out, d)``, dense or part-structured.

    Args:
        num_in: number of input points/tokens ``n_in``.
        num_out: number of output points/tokens ``n_out``.
        in_parts: part id of every input (length ``n_in``), or ``None`` for a dense projection.
        out_parts: part id of every output (length ``n_out``); given together with ``in_parts``.

    With parts, output ``o`` is a learned weighted sum over the inputs of its own part, initialised to
    their mean with a +-50% random jitter per weight; an output whose part has no inputs uses all inputs (documented fallback).
    """

    def __init__(self, *, num_in: int, num_out: int, in_parts: Sequence[int] | None = None,
                 out_parts: Sequence[int] | None = None):
        super().__init__()
        if num_in < 1 or num_out < 1:
            raise ValueError(f"num_in and num_out must be >= 1, got num_in={num_in}, num_out={num_out}")
        if (in_parts is None) != (out_parts is None):
            raise ValueError("in_parts and out_parts must be given together (part-structured) or both be None (dense), "
                             f"got in_parts={'None' if in_parts is None else 'given'}, "
                             f"out_parts={'None' if out_parts is None else 'given'}")
        self.structured = in_parts is not None
        if self.structured:
            src = _part_ids("in_parts", in_parts, num_in)
            dst = _part_ids("out_parts", out_parts, num_out)
            mask = (dst[:, None] == src[None, :]).float()
            mask[mask.sum(-1) == 0] = 1.0  # a part with no inputs pools over all of them
            # the mean over the part, jittered by up to +-50% so that several outputs of one part
            # (HiPART's r dense tokens) do not start as identical copies
            weight = mask / mask.sum(-1, keepdim=True) * (1 + 0.5 * (torch.rand(num_out, num_in) * 2 - 1))
        else:
            mask = torch.ones(num_out, num_in)
            weight = (torch.rand(num_out, num_in) * 2 - 1) / num_in**0.5  # nn.Linear's default init
        self.register_buffer("mask", mask)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(num_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x (b, n_in, d)`` to ``(b, n_out, d)``."""
        out = torch.einsum("b n d, m n -> b m d", x, self.weight * self.mask)
        return out + rearrange(self.bias, "m -> m 1")


class MixerBlock(nn.Module):
    """One MLP-Mixer block over ``j`` points: token-mixing MLP across points, then a channel MLP.

    Args:
        num_points: ``j``, the length of the point axis the token-mixing MLP acts on.
        dim: feature width ``d``.
        token_mlp_dim: hidden width of the token-mixing MLP.
        channel_mlp_dim: hidden width of the channel MLP.
        dropout: dropout after each MLP layer.
    """

    def __init__(self, *, num_points: int, dim: int, token_mlp_dim: int, channel_mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.token_norm = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(
            nn.Linear(num_points, token_mlp_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(token_mlp_dim, num_points), nn.Dropout(dropout),
        )
        self.channel_norm = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(
            nn.Linear(dim, channel_mlp_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(channel_mlp_dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix ``x (b, j, d) -> (b, j, d)``."""
        y = rearrange(self.token_norm(x), "b j d -> b d j")
        x = x + rearrange(self.token_mlp(y), "b d j -> b j d")
        return x + self.channel_mlp(self.channel_norm(x))


def _check_parts(point_parts, token_parts, num_points: int, num_tokens: int) -> None:
    """Validate an encoder's/decoder's part arguments under their own names."""
    if (point_parts is None) != (token_parts is None):
        given = {name: "None" if v is None else "given" for name, v in (("p", point_parts), ("t", token_parts))}
        raise ValueError("point_parts and token_parts must be given together (part-structured projection) or both "
                         f"be None (dense projection), got point_parts={given['p']}, token_parts={given['t']}")
    if point_parts is not None:
        _part_ids("point_parts", point_parts, num_points)
        _part_ids("token_parts", token_parts, num_tokens)


def _mixer_stack(*, num_points, dim, depth, token_mlp_dim, channel_mlp_dim, dropout) -> nn.ModuleList:
    if depth < 0 or dim < 1:
        raise ValueError(f"depth must be >= 0 and dim >= 1, got depth={depth}, dim={dim}")
    return nn.ModuleList(
        MixerBlock(num_points=num_points, dim=dim, token_mlp_dim=token_mlp_dim,
                   channel_mlp_dim=channel_mlp_dim, dropout=dropout)
        for _ in range(depth)
    )


class PoseMixerEncoder(nn.Module):
    """Points to tokens: linear embedding, missing-point embedding, Mixer blocks, point-axis projection.

    Args:
        num_points: ``j``, points per pose.
        num_tokens: ``m``, tokens produced.
        in_dim: ``c``, coordinates per point (2 for image poses); also any feature width when the
            "points" are latents of a finer level.
        dim: Mixer width ``d``.
        out_dim: width of the output tokens (a final linear layer); ``None`` keeps ``dim``.
        depth: number of Mixer blocks ``L``.
        token_mlp_dim: hidden width of the token-mixing MLP (default 64).
        channel_mlp_dim: hidden width of the channel MLP (default ``2 * dim``).
        dropout: dropout inside the Mixer blocks.
        point_parts: part id of every point (length ``j``) for the part-structured projection.
        token_parts: part id of every token (length ``m``); ``None`` for both gives a dense projection.

    Missing points (``visibility`` False) are replaced by a learned embedding before any mixing, so
    their coordinates (even NaN) never influence the output.
    """

    def __init__(self, *, num_points: int, num_tokens: int, in_dim: int = 2, dim: int = 128,
                 out_dim: int | None = None, depth: int = 4, token_mlp_dim: int = 64,
                 channel_mlp_dim: int | None = None, dropout: float = 0.0,
                 point_parts: Sequence[int] | None = None, token_parts: Sequence[int] | None = None):
        super().__init__()
        self.num_points, self.num_tokens, self.in_dim = num_points, num_tokens, in_dim
        _check_parts(point_parts, token_parts, num_points, num_tokens)
        self.out_dim = dim if out_dim is None else out_dim
        self.embed = nn.Linear(in_dim, dim)
        self.missing = nn.Parameter(torch.randn(dim) * 0.02)
        self.blocks = _mixer_stack(num_points=num_points, dim=dim, depth=depth, token_mlp_dim=token_mlp_dim,
                                   channel_mlp_dim=channel_mlp_dim or 2 * dim, dropout=dropout)
        self.norm = nn.LayerNorm(dim)
        self.project = PointAxisProjection(num_in=num_points, num_out=num_tokens,
                                           in_parts=point_parts, out_parts=token_parts)
        self.out = nn.Linear(dim, self.out_dim) if self.out_dim != dim else nn.Identity()

    def forward(self, x: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """Encode points into tokens.

        Args:
            x: ``(b, j, c)`` points (normalised image coordinates or features); values at invisible
                points are ignored and may be NaN.
            visibility: optional ``(b, j)`` bool, ``True`` = visible.

        Returns:
            ``(b, m, out_dim)`` token latents.
        """
        dims: dict[str, int] = {}
        check_tensor("x", x, ("b", self.num_points, self.in_dim), dims=dims, finite=visibility is None)
        visibility = check_visibility("visibility", visibility, ("b", self.num_points), dims=dims)
        if visibility is not None:
            vis = rearrange(visibility, "b j -> b j 1")
            check_finite_where("x", x, visibility)
            h = self.embed(x.masked_fill(~vis, 0.0))
            h = torch.where(vis, h, self.missing.to(h.dtype))
        else:
            h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.out(self.project(self.norm(h)))


class PoseMixerDecoder(nn.Module):
    """Tokens to points: token embedding, token-axis projection, Mixer blocks, linear head.

    Args:
        num_tokens: ``m``, tokens in.
        num_points: ``j``, points out.
        in_dim: width of the input tokens.
        out_dim: ``c``, values per output point (2 for image poses; any width for latents).
        dim: Mixer width ``d``.
        depth: number of Mixer blocks.
        token_mlp_dim: hidden width of the token-mixing MLP (default 64).
        channel_mlp_dim: hidden width of the channel MLP (default ``2 * dim``).
        dropout: dropout inside the Mixer blocks.
        token_parts: part id of every input token (length ``m``) for the part-structured projection.
        point_parts: part id of every output point (length ``j``); ``None`` for both is dense.
    """

    def __init__(self, *, num_tokens: int, num_points: int, in_dim: int = 128, out_dim: int = 2, dim: int = 128,
                 depth: int = 4, token_mlp_dim: int = 64, channel_mlp_dim: int | None = None,
                 dropout: float = 0.0, token_parts: Sequence[int] | None = None,
                 point_parts: Sequence[int] | None = None):
        super().__init__()
        self.num_tokens, self.num_points, self.in_dim, self.out_dim = num_tokens, num_points, in_dim, out_dim
        _check_parts(point_parts, token_parts, num_points, num_tokens)
        self.embed = nn.Linear(in_dim, dim)
        self.project = PointAxisProjection(num_in=num_tokens, num_out=num_points,
                                           in_parts=token_parts, out_parts=point_parts)
        self.blocks = _mixer_stack(num_points=num_points, dim=dim, depth=depth, token_mlp_dim=token_mlp_dim,
                                   channel_mlp_dim=channel_mlp_dim or 2 * dim, dropout=dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode ``tokens (b, m, in_dim)`` into ``(b, j, out_dim)`` points."""
        check_tensor("tokens", tokens, (None, self.num_tokens, self.in_dim))
        h = self.project(self.embed(tokens))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))
