"""Root-centred 2D for the tokenizer and the prior.

HiPART's levels are in image coordinates, so a token would have to spend its code on where the person stands in
the image as well as on the body's shape. The recipes therefore tokenize and generate poses centred on the
pelvis and add the centre back after decoding:

- stage 1 (tokenizer) centres the fine and dense poses on the *clean* sparse pelvis (ground truth, training
  only);
- stage 2 (prior) conditions on the observed sparse pose centred on `observed_centre` and predicts the tokens
  of the clean-centred fine pose;
- generation (`generate_centred`, behind `recipes.hipart.train_lifter.generate_levels` and
  `recipes.hipart.inference.HiPART.densify`) centres the observed pose on `observed_centre`, generates, decodes
  and shifts the decoded levels back.

`observed_centre` uses visible joints only (pelvis; else the mid-point of the visible hips, which is how the
Human3.6M pelvis sits; else the mean of the visible joints), so moving a hidden joint never changes it.

A hidden pelvis. The generated levels are relative to the *true* pelvis (the prior predicts the tokens of the
clean-centred pose), so adding a fallback centre back would move every generated point by that centre's error.
With a joint regressor (`fit_joint_regressor`: the 17 sparse joints as fixed weighted means of the 96 fine
points, fitted by least squares on the training poses, weights of each joint summing to 1, as SMPL's joint
regressor does for vertices), `generate_centred` instead solves the translation that best puts the regressed
joints of the generated pose onto the visible observed joints (`solve_translation`) whenever the pelvis is
hidden; a visible pelvis anchors the levels as before.

Snapping. Decoded tokens reproduce a pose only to the tokenizer's quantisation error (about 20 px per point on the
demo's validation poses, against 6 px for a linear map from the 17 joints), even where the sparse input says exactly
where the body is. With ``snap`` `generate_centred` rebuilds the placed levels from the joints (`snap_levels`): the
level regressors (`fit_level_regressor`, affine maps from the pelvis-centred joints to the dense/fine poses) applied to
the observed joints where visible and to the generated pose's own joints where hidden (the prior's guess), plus a
chosen fraction of the generated pose's detail beyond its joints. A prior exported with a learned level map
(`recipes.hipart.densifier.LevelDensifier`: the affine map plus an MLP residual, about 4 px per point on unseen
takes against 7 px) is snapped with that map instead.

Confidence. With ``return_confidence`` `generate_centred` also scores every generated point by how sure the prior
was of its part (`point_confidence`: the mean log-probability of the part's sparse and dense tokens), which a
lifter built with ``confidence=True`` reads beside the coordinates.

Shapes: ``b`` batch, ``j`` = 17 sparse joints (Human3.6M-17 order), normalised screen units.
"""

from __future__ import annotations

import torch

from skeletok.skeleton import H36M_17

__all__ = ["clean_centre", "observed_centre", "encode_centred", "fit_point_regressor", "fit_joint_regressor",
           "solve_translation", "fit_level_regressor", "regress_levels", "snap_levels", "visible_parts", "point_confidence", "generate_centred"]

_PELVIS = H36M_17.index("pelvis")
_HIPS = [H36M_17.index("right_hip"), H36M_17.index("left_hip")]


def clean_centre(sparse_2d_clean: torch.Tensor) -> torch.Tensor:
    """The ground-truth pelvis ``(b, 1, 2)`` of clean sparse poses ``(b, 17, 2)``."""
    return sparse_2d_clean[:, _PELVIS:_PELVIS + 1]


def observed_centre(sparse_2d: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
    """The centre ``(b, 1, 2)`` of observed sparse poses ``(b, 17, 2)`` from their visible joints only.

    Pelvis if visible; else the mean of the visible hips; else the mean of all visible joints; 0 when nothing
    is visible.
    """
    if visible is None:
        return sparse_2d[:, _PELVIS:_PELVIS + 1]
    vis = visible.to(sparse_2d.dtype)
    x = torch.where(visible[..., None], sparse_2d, torch.zeros_like(sparse_2d))  # hidden values never read

    def mean(idx):  # mean of the visible joints among idx (b, 1, 2), and whether any was visible (b,)
        w = vis[:, idx]
        total = (x[:, idx] * w[..., None]).sum(1, keepdim=True)
        return total / w.sum(1).clamp_min(1)[:, None, None], w.sum(1) > 0

    everything, any_seen = mean(slice(None))
    hips, hips_seen = mean(_HIPS)
    pelvis = x[:, _PELVIS:_PELVIS + 1]
    centre = torch.where(hips_seen[:, None, None], hips, everything)
    centre = torch.where(visible[:, _PELVIS, None, None], pelvis, centre)
    return torch.where(any_seen[:, None, None], centre, torch.zeros_like(centre))


def encode_centred(tokenizer, fine_2d: torch.Tensor, sparse_2d_clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's target tokens: ``q_s (b, p)``, ``q_d (b, p, r)`` of fine poses ``(b, 96, 2)`` centred on the
    clean pelvis of their sparse poses ``(b, 17, 2)`` (both on the tokenizer's device)."""
    return tokenizer.encode(fine_2d - clean_centre(sparse_2d_clean))


def fit_point_regressor(source: torch.Tensor, target: torch.Tensor, *, ridge: float = 1e-3) -> torch.Tensor:
    """Weights ``(k, m)`` with rows summing to 1 such that ``target ~ weights @ source``: every target point a fixed
    weighted mean of the source points (least squares shared by the two coordinates, a small ridge towards 0).
    Rows summing to 1 make the map translation-equivariant, so the poses may be in any common frame.

    Args:
        source: ``(n, m, 2)`` poses.
        target: ``(n, k, 2)`` the matching poses.
        ridge: L2 penalty on the weights, relative to the mean diagonal of the normal matrix.
    """
    x = (source - source.mean(1, keepdim=True)).double().transpose(1, 2).reshape(-1, source.shape[1])  # (2n, m)
    y = (target - source.mean(1, keepdim=True)).double().transpose(1, 2).reshape(-1, target.shape[1])  # (2n, k)
    a = x.T @ x
    a = a + ridge * a.diagonal().mean() * torch.eye(a.shape[0], dtype=a.dtype)
    ones = torch.ones(a.shape[0], 1, dtype=a.dtype)
    free = torch.linalg.solve(a, x.T @ y)  # (m, k) unconstrained
    a_ones = torch.linalg.solve(a, ones)  # (m, 1)
    weights = free + a_ones @ ((1 - ones.T @ free) / (ones.T @ a_ones))  # KKT: columns sum to 1
    return weights.T.float()


def fit_joint_regressor(fine: torch.Tensor, sparse: torch.Tensor, *, ridge: float = 1e-3) -> torch.Tensor:
    """Weights ``(17, 96)`` with rows summing to 1 such that ``sparse ~ weights @ fine`` (`fit_point_regressor`
    from the ``(n, 96, 2)`` fine poses to their ``(n, 17, 2)`` sparse poses)."""
    return fit_point_regressor(fine, sparse, ridge=ridge)


def solve_translation(points: torch.Tensor, regressor: torch.Tensor, sparse_2d: torch.Tensor,
                      visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The translation ``(b, 1, 2)`` that puts the regressed joints of ``points`` onto the visible joints.

    Args:
        points: ``(b, 96, 2)`` generated fine pose (any frame).
        regressor: ``(17, 96)`` from `fit_joint_regressor`.
        sparse_2d: ``(b, 17, 2)`` observed sparse pose.
        visible: ``(b, 17)`` bool.

    Returns:
        The translation (mean over visible joints of observed minus regressed) and ``(b,)`` whether any
        joint was visible (the translation is 0 where none was).
    """
    joints = torch.einsum("jk,bkc->bjc", regressor.to(points), points)
    w = visible.to(points.dtype)[..., None]
    total = ((sparse_2d - joints) * w).sum(1, keepdim=True)
    return total / w.sum(1, keepdim=True).clamp_min(1), visible.any(1)


def fit_level_regressor(sparse: torch.Tensor, points: torch.Tensor, *, ridge: float = 1e-4) -> torch.Tensor:
    """An affine map from pelvis-centred sparse poses to pelvis-centred level poses (x and y mixed, since a
    point's horizontal offset from its bones depends on the limbs' vertical layout too), by ridge least squares.

    Args:
        sparse: ``(n, 17, 2)`` sparse poses.
        points: ``(n, k, 2)`` the matching dense or fine poses (same frame).
        ridge: L2 penalty, relative to the mean diagonal of the normal matrix.

    Returns:
        ``(2 k, 33)`` weights for `regress_levels` (the 32 coordinates of the other joints relative to the
        pelvis, and a bias, per output coordinate).
    """
    x, pelvis = _centred_features(sparse.double())
    y = (points.double() - pelvis).flatten(1)
    a = x.T @ x
    a = a + ridge * a.diagonal().mean() * torch.eye(a.shape[0], dtype=a.dtype)
    return torch.linalg.solve(a, x.T @ y).T.float()


def _centred_features(sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 other joints relative to the pelvis, flattened, and a 1: ``(b, 33)``; and the pelvis ``(b, 1, 2)``."""
    pelvis = sparse[:, _PELVIS:_PELVIS + 1]
    x = (sparse - pelvis)[:, [j for j in range(sparse.shape[1]) if j != _PELVIS]].flatten(1)
    return torch.cat((x, torch.ones_like(x[:, :1])), dim=1), pelvis


def regress_levels(weights: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
    """The level pose ``(b, k, 2)`` that ``weights`` (`fit_level_regressor`, ``(2 k, 33)``) gives for sparse poses
    ``(b, 17, 2)``; translation-equivariant (the map works on pelvis-centred coordinates)."""
    x, pelvis = _centred_features(sparse)
    return (x @ weights.to(x).T).unflatten(1, (-1, 2)) + pelvis


def map_levels(poses: torch.Tensor, *, dense_regressor: torch.Tensor, fine_regressor: torch.Tensor,
               densifier=None) -> torch.Tensor:
    """The level map ``L`` of `snap_levels`: the ``(b, 48 + 96, 2)`` dense and fine points of sparse poses
    ``(b, 17, 2)``, by ``densifier`` (a learned map, `recipes.hipart.densifier.LevelDensifier`) or, when it is
    ``None``, the affine level regressors (``(96, 33)``, ``(192, 33)``, `fit_level_regressor`)."""
    if densifier is not None:
        return densifier(poses)
    return regress_levels(torch.cat((dense_regressor, fine_regressor)), poses)


def snap_levels(dense: torch.Tensor, fine: torch.Tensor, sparse_2d: torch.Tensor, visible: torch.Tensor | None, *,
                joint_regressor: torch.Tensor, dense_regressor: torch.Tensor, fine_regressor: torch.Tensor,
                detail: float = 0.0, densifier=None, imputer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Make generated levels agree with the observed joints.

    Decoded tokens reproduce a pose only to the tokenizer's quantisation error, also where the sparse input says
    exactly where the body is. Snapping rebuilds the levels from the joints: ``base = L(joints)`` with the level
    regressors ``L`` (`fit_level_regressor` on the training poses, `regress_levels`), where the joints are the
    observed ones where visible and the generated pose's own joints (``R @ fine``, the prior's guess) where
    hidden; the generated pose's detail beyond its joints, ``levels - L(R @ fine)``, is added back scaled by
    ``detail`` (0 = none, 1 = all: the generated pose moved onto the observed joints).

    Args:
        dense: ``(b, 48, 2)`` generated dense pose.
        fine: ``(b, 96, 2)`` generated fine pose (same frame).
        sparse_2d: ``(b, 17, 2)`` observed sparse pose (same frame).
        visible: ``(b, 17)`` bool, ``None`` = all visible.
        joint_regressor: ``(17, 96)`` (`fit_joint_regressor`).
        dense_regressor: ``(96, 33)``, fine_regressor: ``(192, 33)`` (`fit_level_regressor`).
        detail: weight of the generated pose's detail beyond its joints, in ``[0, 1]``.
        densifier: a learned level map ``(b, 17, 2) -> (b, 144, 2)`` (`recipes.hipart.densifier.LevelDensifier`)
            used as ``L`` in place of the affine regressors; ``None`` = the affine map.
        imputer: ``(sparse_2d, visible) -> (b, 17, 2)`` guessing the hidden joints from the seen ones
            (`recipes.hipart.imputation.JointImputer`) in place of the generated pose's joints; ``None`` = those.

    Returns:
        ``dense (b, 48, 2)``, ``fine (b, 96, 2)`` snapped.
    """
    joints = torch.einsum("jk,bkc->bjc", joint_regressor.to(fine), fine)
    if visible is None:
        seen = sparse_2d
    else:
        seen = torch.where(visible[..., None], sparse_2d, joints if imputer is None else imputer(sparse_2d, visible))
    maps = dict(dense_regressor=dense_regressor, fine_regressor=fine_regressor, densifier=densifier)
    levels = map_levels(seen, **maps)
    if detail:
        levels = levels + detail * (torch.cat((dense, fine), dim=1) - map_levels(joints, **maps))
    return levels[:, :dense.shape[1]], levels[:, dense.shape[1]:]


def visible_parts(visible: torch.Tensor, part_ids: torch.Tensor) -> torch.Tensor:
    """Which level points belong to a part whose two joints are both visible: ``(b, n)`` bool.

    Args:
        visible: ``(b, 17)`` bool visibility of the sparse joints.
        part_ids: ``(n,)`` part of every dense or fine point (the tokenizer's ``dense_part_ids`` /
            ``fine_part_ids``); part ``i`` is the bone ``H36M_17.parts[i]`` = ``(parent, child)``.
    """
    bones = torch.tensor(H36M_17.parts, device=visible.device)  # (p, 2)
    return (visible[:, bones[:, 0]] & visible[:, bones[:, 1]])[:, part_ids.to(visible.device)]


def point_confidence(tokenizer, p_s: torch.Tensor, p_d: torch.Tensor, *,
                     floor: float = -10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point confidence of generated levels: the mean log-probability of each part's ``1 + r`` tokens, given to
    every dense and fine point of that part.

    Args:
        tokenizer: the `skeletok.HierarchicalPoseTokenizer` that decodes the tokens (its ``dense_part_ids`` and
            ``fine_part_ids``; with ``projection="dense"`` every point gets the mean over all parts).
        p_s: ``(b, p)`` probabilities of the chosen sparse tokens.
        p_d: ``(b, p, r)`` probabilities of the chosen dense tokens.
        floor: lower bound of the log-probabilities (keeps near-zero probabilities finite).

    Returns:
        ``dense (b, 48)`` and ``fine (b, 96)`` log-probabilities in ``[floor, 0]`` (0 = certain).
    """
    logp = torch.cat((p_s[..., None], p_d), dim=-1).float().clamp_min(1e-30).log().clamp_min(floor).mean(-1)  # (b, p)
    out = []
    for ids, n in ((tokenizer.dense_part_ids, tokenizer.num_dense), (tokenizer.fine_part_ids, tokenizer.num_fine)):
        out.append(logp[:, ids] if ids is not None else logp.mean(1, keepdim=True).expand(-1, n))
    return out[0], out[1]


def generate_centred(prior, tokenizer, sparse_2d: torch.Tensor, visible: torch.Tensor | None, *,
                     temperature: float = 0.0, use_cache: bool = True, generator: torch.Generator | None = None,
                     regressor: torch.Tensor | None = None, return_confidence: bool = False, decode=None,
                     snap: tuple[torch.Tensor, torch.Tensor, float] | None = None):
    """HiPART's densification in centred coordinates: tokens generated by ``prior`` from the observed pose centred
    on `observed_centre`, decoded by ``tokenizer`` and shifted back to the input's frame.

    Args:
        prior: a `skeletok.HierarchicalARPrior`.
        tokenizer: the `skeletok.HierarchicalPoseTokenizer` whose codes the prior predicts.
        sparse_2d: ``(b, 17, 2)`` observed sparse pose, normalised.
        visible: ``(b, 17)`` bool, ``None`` = all visible.
        temperature: 0 = argmax tokens (the paper); > 0 samples.
        use_cache: reuse attention keys/values while generating.
        generator: random source for sampling.
        regressor: ``(17, 96)`` joint regressor (`fit_joint_regressor`); where the pelvis is hidden, the levels
            are placed by `solve_translation` over the visible joints instead of at the fallback centre.
        decode: ``(q_s, q_d) -> (dense, fine)`` in place of ``tokenizer.decode`` (e.g. a compiled one).
        snap: ``(dense_regressor, fine_regressor, detail, densifier, imputer)`` (`recipes.hipart.train_lifter.snap_of`):
            rebuild the placed levels from the observed joints (`snap_levels`; needs ``regressor``; ``densifier`` and
            ``imputer`` may be ``None``: the affine map, the generated pose's joints); ``None`` returns the decoded
            levels.
        return_confidence: also return `point_confidence` of the generated points.

    Under ``torch.compile`` the prior's `generate_unchecked` runs (its checks are data-dependent and would split the
    graph): the compiled caller checks the input first (`HiPART.densify_and_lift`).

    Returns:
        ``dense (b, 48, 2)``, ``fine (b, 96, 2)`` in the input's frame, and the tokens ``q_s (b, p)``,
        ``q_d (b, p, r)`` (of the centred pose); with ``return_confidence`` a fifth item, the pair
        ``(dense (b, 48), fine (b, 96))`` of `point_confidence`.
    """
    centre = observed_centre(sparse_2d, visible)
    generate = prior.generate_unchecked if torch.compiler.is_compiling() else prior.generate
    tokens = generate(sparse_2d - centre, visible, temperature=temperature, use_cache=use_cache, generator=generator,
                      return_probs=return_confidence)
    q_s, q_d = tokens[:2]
    dense, fine = (tokenizer.decode if decode is None else decode)(q_s, q_d)
    shift = centre
    if regressor is not None and visible is not None:
        solved, any_seen = solve_translation(fine, regressor, sparse_2d, visible)
        use = (~visible[:, _PELVIS] & any_seen)[:, None, None]
        shift = torch.where(use, solved, centre)
    dense, fine = dense + shift, fine + shift
    if snap is not None:
        if regressor is None:
            raise ValueError("snapping the levels needs the joint regressor of the prior's export")
        dense, fine = snap_levels(dense, fine, sparse_2d, visible, joint_regressor=regressor,
                                  dense_regressor=snap[0], fine_regressor=snap[1], detail=snap[2],
                                  densifier=snap[3], imputer=snap[4])
    if return_confidence:
        return dense, fine, q_s, q_d, point_confidence(tokenizer, *tokens[2:])
    return dense, fine, q_s, q_d
