"""A learned level densifier: the dense and fine 2D poses regressed directly from the 17 sparse joints.

Snapping (`recipes.hipart.centring.snap_levels`) rebuilds HiPART's generated levels from the joints with a *level
map*; by default the affine one (`recipes.hipart.centring.fit_level_regressor`, about 7 px per point on unseen
takes of the demo data). `LevelDensifier` is that affine map plus a residual MLP on the pose's shape, trained with an
L1 loss on the same clean training poses: on the demo's validation takes it misses the true points by about 4 px
(``scripts/densifier_probe.py``), against 9-13 px for the affine map plus the tokens' own detail. The prior
exports it beside the affine regressors when ``PriorConfig.densifier_steps > 0`` (fitted on the prior's own
training items, so an out-of-fold prior carries an out-of-fold densifier), and snapping then uses it as its map.

The map is translation-equivariant (it works on pelvis-centred joints and adds the pelvis back) and
scale-equivariant in its residual (the MLP sees the centred joints divided by the pose's size and its output is
multiplied by that size), like the affine map it extends.

Shapes: ``b`` batch, ``j`` = 17 sparse joints (Human3.6M-17 order), ``n`` = 48 + 96 level points, normalised
screen units.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from skeletok.skeleton import H36M_17

from .centring import fit_level_regressor, regress_levels

__all__ = ["LevelDensifier", "fit_densifier"]

KWARGS = ("num_joints", "num_points", "hidden", "depth")  # what rebuilds a LevelDensifier (see `kwargs`)

_PELVIS = H36M_17.index("pelvis")


def _shape_features(sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pelvis-centred joints divided by the pose's size, flattened ``(b, 2 j)``, and that size ``(b, 1)``: the
    norm of the flattened centred joints over 4 (about a limb's length), at least 1e-6 so that a pose collapsed
    onto one point still gives finite features."""
    centred = sparse - sparse[:, _PELVIS:_PELVIS + 1]
    flat = rearrange(centred, "b j c -> b (j c)")
    size = (flat.norm(dim=1, keepdim=True) / 4).clamp_min(1e-6)
    return flat / size, size


class LevelDensifier(nn.Module):
    """The level points of a sparse pose: an affine map of the pelvis-centred joints plus an MLP residual.

    Args:
        num_joints: sparse joints ``j`` (17).
        num_points: level points ``n`` regressed (48 dense + 96 fine = 144).
        hidden: width of the MLP.
        depth: hidden layers of the MLP (GELU).

    The affine weights (``(2 n, 2 j - 1)``, `recipes.hipart.centring.regress_levels`) are a buffer set by
    `fit_densifier`; a new module has zero weights everywhere and maps every pose onto its pelvis.
    """

    def __init__(self, *, num_joints: int = 17, num_points: int = 144, hidden: int = 512, depth: int = 2):
        super().__init__()
        if min(num_joints, num_points, hidden, depth) < 1:
            raise ValueError(f"num_joints, num_points, hidden and depth must be >= 1, got {num_joints}, "
                             f"{num_points}, {hidden}, {depth}")
        self.num_joints, self.num_points, self.hidden, self.depth = num_joints, num_points, hidden, depth
        self.register_buffer("affine", torch.zeros(2 * num_points, 2 * (num_joints - 1) + 1))
        layers: list[nn.Module] = []
        width = 2 * num_joints
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, 2 * num_points))
        self.mlp = nn.Sequential(*layers)
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the affine map
        nn.init.zeros_(self.mlp[-1].bias)

    def kwargs(self) -> dict:
        """The constructor arguments that rebuild this module (for an export)."""
        return {k: getattr(self, k) for k in KWARGS}

    def residual_target(self, sparse: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """What the MLP is trained to output for ``sparse (b, j, 2)`` and its true ``points (b, n, 2)``:
        ``(points - affine(sparse)) / size``, flattened ``(b, 2 n)``."""
        _, size = _shape_features(sparse)
        return rearrange((points - regress_levels(self.affine, sparse)) / size[:, :, None], "b n c -> b (n c)")

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        """Level points ``(b, n, 2)`` of sparse poses ``(b, j, 2)`` (same frame and units as the input)."""
        features, size = _shape_features(sparse)
        residual = rearrange(self.mlp(features), "b (n c) -> b n c", c=2)
        return regress_levels(self.affine, sparse) + residual * size[:, :, None]


def fit_densifier(sparse: torch.Tensor, points: torch.Tensor, *, steps: int = 3000, batch_size: int = 256,
                  lr: float = 1e-3, weight_decay: float = 1e-2, hidden: int = 512, depth: int = 2,
                  seed: int = 0) -> LevelDensifier:
    """Fit a `LevelDensifier` to training poses: the affine map by ridge least squares, then the MLP on the
    remaining residual (L1 loss, AdamW, cosine schedule, ``steps`` batches drawn with a generator seeded by ``seed``).

    Args:
        sparse: ``(m, j, 2)`` clean sparse poses.
        points: ``(m, n, 2)`` their true level points (dense then fine), same frame.

    Returns:
        The fitted densifier, in eval mode, parameters frozen, on the CPU.

    Raises:
        ValueError: on mismatched or non-finite inputs, or ``steps < 0``.
    """
    if sparse.ndim != 3 or points.ndim != 3 or sparse.shape[0] != points.shape[0] or sparse.shape[-1] != 2 \
            or points.shape[-1] != 2:
        raise ValueError(f"fit_densifier needs sparse (m, j, 2) and points (m, n, 2) of the same m, got "
                         f"{tuple(sparse.shape)} and {tuple(points.shape)}")
    if not (torch.isfinite(sparse).all() and torch.isfinite(points).all()):
        raise ValueError("fit_densifier needs finite poses (clean training poses, no hidden points)")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    sparse, points = sparse.float().cpu(), points.float().cpu()
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LevelDensifier(num_joints=sparse.shape[1], num_points=points.shape[1], hidden=hidden, depth=depth)
    model.affine.copy_(fit_level_regressor(sparse, points))
    features, _ = _shape_features(sparse)
    target = model.residual_target(sparse, points)
    opt = torch.optim.AdamW(model.mlp.parameters(), lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    model.train()
    with torch.enable_grad():  # also when the caller runs under no_grad
        for _ in range(steps):
            i = torch.randint(0, len(features), (batch_size,), generator=gen)
            loss = (model.mlp(features[i]) - target[i]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval().requires_grad_(False)
