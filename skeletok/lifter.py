"""HierarchicalLifter: a spatial transformer lifting hierarchical 2D poses to a 3D pose.

The levels (sparse ``x_s``, dense ``x_d``, fine ``x_f``; any subset) are concatenated along the
point axis, 17 + 48 + 96 = 161 points by default. Each point gets a shared linear point embedding
plus a learned per-point position and a learned per-level embedding; a hidden point's embedding is
replaced by a learned "missing" embedding (its coordinates are never read). An x-transformers
``Encoder`` mixes the points and a linear head regresses the 3D joints.

Readout (``head``): ``"sparse"`` (default) reads the outputs of the first level's points, which
must be the ``num_joints`` sparse joints, and maps each to its own 3D joint with one shared linear
layer (the sparse-only baseline is the same class with ``level_points=(17,)``). ``"query"`` appends
``num_joints`` learned query tokens and reads those instead, for level sets without the sparse level.

Confidence (``confidence=True``): every point may carry a score beside its coordinates (for generated levels,
the prior's log-probability of the point's part, `recipes.hipart.centring.point_confidence`; 0 = certain), added
to its embedding through a linear map that starts at zero, so a lifter warm-started from one without scores
begins as that lifter and learns how far to trust each point.

Temporal mode (``num_frames = t > 1``): inputs are ``(b, t, j, c)`` windows; the spatial encoder
runs on every frame, then a temporal ``Encoder`` (``temporal_depth`` layers, learned frame position)
attends over time separately for each readout token, and the centre frame ``t // 2`` is regressed.

Shapes: ``b`` batch, ``t`` frames, ``j`` points of a level, ``c`` input coordinates, ``d`` features.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange, repeat
from torch import nn
from x_transformers import Encoder

from skeletok._checks import check_choice, check_finite_where, check_tensor, check_visibility

__all__ = ["HierarchicalLifter"]


class HierarchicalLifter(nn.Module):
    """Lift concatenated hierarchical 2D poses to root-relative 3D joints.

    Args:
        level_points: points per input level, in input order; ``(17, 48, 96)`` is
            ``[x_s, x_d, x_f]``, ``(17,)`` the sparse-only baseline.
        num_joints: 3D joints predicted (17 for Human3.6M).
        in_dim: coordinates per input point (2 for normalised image coordinates).
        dim: feature width ``d``.
        depth: spatial transformer layers (attention + feed-forward pairs).
        heads: attention heads; ``dim`` must be divisible by ``heads``.
        ff_mult: feed-forward expansion.
        dropout: attention and feed-forward dropout.
        num_frames: frames per input window ``t``; 1 for single-frame lifting.
        temporal_depth: temporal transformer layers, used only when ``num_frames > 1``.
        head: ``"sparse"`` or ``"query"``, see the module docstring.
        confidence: read a per-point score (``forward``'s ``confidence``), see the module docstring.

    The defaults give 2.39 M parameters (2.37 M with ``level_points=(17,)``); the recipe's ``h36m``
    preset uses 4 blocks (0.81 M). The paper reports 2.4 M parameters for HiPART (supplementary
    Table 3, a number that changes with the tokenizer's and prior's depths, so not the lifter's
    alone); ``skeletok hipart bench --preset h36m`` prints ours per stage beside it. Output unit and frame are those of the training targets: root-relative
    camera-frame metres in the recipes (``docs/concepts.md``).

    Example:
        >>> lifter = HierarchicalLifter(dim=32, depth=2, heads=4)
        >>> levels = [torch.randn(2, 17, 2), torch.randn(2, 48, 2), torch.randn(2, 96, 2)]
        >>> lifter(levels).shape
        torch.Size([2, 17, 3])
    """

    def __init__(
        self,
        *,
        level_points: Sequence[int] = (17, 48, 96),
        num_joints: int = 17,
        in_dim: int = 2,
        dim: int = 128,
        depth: int = 12,
        heads: int = 8,
        ff_mult: int = 4,
        dropout: float = 0.0,
        num_frames: int = 1,
        temporal_depth: int = 2,
        head: str = "sparse",
        confidence: bool = False,
    ):
        super().__init__()
        level_points = tuple(level_points)
        if not level_points or any(not isinstance(n, int) or n < 1 for n in level_points):
            raise ValueError(f"level_points must be a non-empty sequence of positive ints, got {level_points}")
        for name, value in (("num_joints", num_joints), ("in_dim", in_dim), ("dim", dim), ("depth", depth),
                            ("heads", heads), ("ff_mult", ff_mult), ("num_frames", num_frames)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_choice("head", head, ("sparse", "query"))
        if head == "sparse" and level_points[0] != num_joints:
            raise ValueError(
                f"level_points[0] must be num_joints ({num_joints}) for head='sparse' (the sparse level "
                f"comes first), got level_points={level_points}; use head='query' without a sparse level"
            )
        if num_frames > 1 and (not isinstance(temporal_depth, int) or temporal_depth < 1):
            raise ValueError(f"temporal_depth must be a positive int when num_frames > 1, got {temporal_depth!r}")

        self.level_points, self.num_joints, self.in_dim = level_points, num_joints, in_dim
        self.num_frames, self.head = num_frames, head
        total = sum(level_points)
        self.point_embed = nn.Linear(in_dim, dim)
        self.missing_embed = nn.Parameter(torch.randn(dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(total, dim) * 0.02)
        self.level_embed = nn.Parameter(torch.randn(len(level_points), dim) * 0.02)
        self.register_buffer(
            "point_level", torch.repeat_interleave(torch.arange(len(level_points)), torch.tensor(level_points)),
            persistent=False,
        )  # fmt: skip
        self.queries = nn.Parameter(torch.randn(num_joints, dim) * 0.02) if head == "query" else None
        self.encoder = Encoder(
            dim=dim, depth=depth, heads=heads, attn_dim_head=dim // heads, ff_mult=ff_mult,
            attn_dropout=dropout, ff_dropout=dropout, attn_flash=True,
        )  # fmt: skip  (attn_flash: torch's fused attention, same result, ~3x faster over 161 points on a CPU)
        if num_frames > 1:
            self.frame_embed = nn.Parameter(torch.randn(num_frames, dim) * 0.02)
            self.temporal = Encoder(
                dim=dim, depth=temporal_depth, heads=heads, attn_dim_head=dim // heads, ff_mult=ff_mult,
                attn_dropout=dropout, ff_dropout=dropout, attn_flash=True,
            )  # fmt: skip
        else:
            self.frame_embed, self.temporal = None, None
        self.to_joint = nn.Linear(dim, 3)
        self.confidence_embed = nn.Linear(1, dim) if confidence else None
        if self.confidence_embed is not None:  # starts as a lifter without scores (exact warm start)
            nn.init.zeros_(self.confidence_embed.weight)
            nn.init.zeros_(self.confidence_embed.bias)

    @property
    def point_confidence(self) -> bool:
        """Whether ``forward`` reads per-point confidence scores."""
        return self.confidence_embed is not None

    def _check(self, levels, visibility) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.level_points)
        if not isinstance(levels, (list, tuple)) or len(levels) != n:
            got = f"{len(levels)} item(s)" if isinstance(levels, (list, tuple)) else type(levels).__name__
            raise ValueError(f"levels must be a list of {n} tensors, one per level {self.level_points}, got {got}")
        if visibility is None:
            visibility = [None] * n
        if not isinstance(visibility, (list, tuple)) or len(visibility) != n:
            got = f"{len(visibility)} item(s)" if isinstance(visibility, (list, tuple)) else type(visibility).__name__
            raise ValueError(f"visibility must be None or a list of {n} masks (or None), one per level, got {got}")
        time = () if self.num_frames == 1 else (self.num_frames,)
        dims: dict[str, int] = {}
        xs, vs = [], []
        for i, (x, v, size) in enumerate(zip(levels, visibility, self.level_points)):
            check_tensor(f"levels[{i}]", x, ("b", *time, size, self.in_dim), dims=dims, finite=False)
            v = check_visibility(f"visibility[{i}]", v, ("b", *time, size), dims=dims)
            if v is None:
                v = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
            check_finite_where(f"levels[{i}]", x, v)
            xs.append(x)
            vs.append(v)
        return torch.cat(xs, dim=-2), torch.cat(vs, dim=-1)

    def _scores(self, confidence, x: torch.Tensor) -> torch.Tensor | None:
        """Concatenated per-point scores ``(b, [t,] j)`` (None when the lifter reads none)."""
        if self.confidence_embed is None:
            if confidence is not None:
                raise ValueError("confidence given to a lifter built without confidence=True")
            return None
        n = len(self.level_points)
        if confidence is None:
            return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        if not isinstance(confidence, (list, tuple)) or len(confidence) != n:
            raise ValueError(f"confidence must be None or a list of {n} score tensors (or None), one per level")
        time = () if self.num_frames == 1 else (self.num_frames,)
        scores = []
        for i, (c, size) in enumerate(zip(confidence, self.level_points)):
            shape = (x.shape[0], *time, size)
            if c is None:
                c = torch.zeros(shape, dtype=x.dtype, device=x.device)
            elif not torch.is_tensor(c) or tuple(c.shape) != shape:
                got = tuple(c.shape) if torch.is_tensor(c) else type(c).__name__
                raise ValueError(f"confidence[{i}] must have shape {shape} (b, [t,] points), got {got}")
            scores.append(c.to(x.dtype))
        out = torch.cat(scores, dim=-1)
        if not torch.isfinite(out).all():
            raise ValueError("confidence must be finite (log-probabilities, 0 = certain)")
        return out

    def forward(
        self,
        levels: Sequence[torch.Tensor],
        visibility: Sequence[torch.Tensor | None] | None = None,
        confidence: Sequence[torch.Tensor | None] | None = None,
        *,
        return_points: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict the 3D joints.

        Args:
            levels: one tensor per level, ``(b, j_l, c)``, or ``(b, t, j_l, c)`` when
                ``num_frames > 1``, with ``j_l = level_points[l]`` and ``c = in_dim``
                (normalised image coordinates in the recipes).
            visibility: ``None`` (all visible) or one mask per level, each ``(b, [t,] j_l)``
                bool (or 0/1) or ``None``; ``True`` = visible. Hidden points' coordinates are
                ignored and may be NaN.
            confidence: for a lifter built with ``confidence=True``: ``None`` (every point certain) or
                one score per level, each ``(b, [t,] j_l)`` float (log-probability, 0 = certain) or
                ``None``; ignored at hidden points.
            return_points: single-frame ``head="sparse"`` lifters only: also return a 3D point for
                every input point, regressed from its own output token by the joints' head.

        Returns:
            ``(b, num_joints, 3)`` joints (of the centre frame ``t // 2`` in temporal mode),
            in the unit and frame of the training targets; with ``return_points`` the pair
            ``(joints, points (b, sum(level_points), 3))``, the first ``num_joints`` points being the joints.

        Raises:
            ValueError: on a wrong number of levels or masks, wrong point counts or coordinates,
                mismatched batch or frame sizes, or NaN/inf at a visible point.
        """
        x, visible = self._check(levels, visibility)
        score = self._scores(confidence, x)
        if self.num_frames > 1:
            x, visible = rearrange(x, "b t j c -> (b t) j c"), rearrange(visible, "b t j -> (b t) j")
            score = None if score is None else rearrange(score, "b t j -> (b t) j")
        x = torch.where(visible[..., None], x, torch.zeros_like(x))  # hidden values never reach the graph
        embedded = self.point_embed(x)
        if score is not None:
            score = torch.where(visible, score, torch.zeros_like(score))
            embedded = embedded + self.confidence_embed(score[..., None])
        tokens = torch.where(visible[..., None], embedded, self.missing_embed)
        tokens = tokens + self.pos_embed + self.level_embed[self.point_level]
        if self.queries is not None:
            tokens = torch.cat((tokens, repeat(self.queries, "j d -> n j d", n=tokens.shape[0])), dim=1)
        tokens = self.encoder(tokens)
        if return_points:
            if self.head != "sparse" or self.temporal is not None:
                raise ValueError("return_points needs a single-frame lifter with head='sparse'")
            points = self.to_joint(tokens)
            return points[:, : self.num_joints], points
        out = tokens[:, : self.num_joints] if self.head == "sparse" else tokens[:, -self.num_joints :]
        if self.temporal is not None:
            out = rearrange(out, "(b t) j d -> (b j) t d", t=self.num_frames)
            out = self.temporal(out + self.frame_embed)
            out = rearrange(out[:, self.num_frames // 2], "(b j) d -> b j d", j=self.num_joints)
        return self.to_joint(out)
