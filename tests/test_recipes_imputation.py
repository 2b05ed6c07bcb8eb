"""``recipes.hipart.imputation``: hidden joints guessed as the conditional mean of a Gaussian of training poses,
and ``guess=gaussian`` from lifter training to inference (tiny runs of `tests.recipe_runs`)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes.hipart import train_lifter, train_prior
from recipes.hipart.config import LifterConfig
from recipes.hipart.imputation import JointImputer, fit_joint_imputer
from recipes.hipart.inference import HiPART
from tests.recipe_runs import data_file, tiny, trained  # noqa: F401 (fixtures)


def _poses(n: int = 3000, seed: int = 0) -> torch.Tensor:
    """Pelvis-centred ``(n, 17, 2)`` poses with correlated joints: a mean pose, scaled and bent by 2 latents."""
    shape = torch.Generator().manual_seed(0)  # one body for every seed; the seed draws the poses
    mean = torch.randn(17, 2, generator=shape) * 0.2
    bend = torch.randn(17, 2, generator=shape) * 0.05
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 1, 1, generator=g), torch.randn(n, 1, 1, generator=g)
    x = mean * (1 + 0.1 * a) + bend * b + 0.003 * torch.randn(n, 17, 2, generator=g)
    return x - x[:, :1]


def test_hidden_joints_are_the_conditional_mean_and_seen_ones_are_kept():
    poses = _poses()
    imputer = fit_joint_imputer(poses, translation_var=10.0)
    x = _poses(6, seed=1) + torch.tensor([0.3, -0.2])
    vis = torch.ones(6, 17, dtype=torch.bool)
    vis[0, [0, 3]] = False  # the pelvis too
    vis[1, 5:12] = False
    vis[2] = False  # nothing seen: the Gaussian's mean
    out = imputer(torch.where(vis[..., None], x, float("nan")), vis)  # hidden values never read
    assert torch.isfinite(out).all() and torch.equal(out[vis], x[vis])
    torch.testing.assert_close(out[3:], x[3:], rtol=0, atol=0)  # fully seen: unchanged
    mean, cov = imputer.mean, imputer.cov
    for i in (0, 1):  # the textbook formula, one pose at a time
        v = vis[i].repeat_interleave(2)
        flat = x[i].double().flatten()
        expect = mean[~v] + cov[~v][:, v] @ torch.linalg.solve(cov[v][:, v], flat[v] - mean[v])
        torch.testing.assert_close(out[i].double().flatten()[~v], expect, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[2].double().flatten(), mean, rtol=0, atol=1e-6)
    # far better than the mean pose placed on the seen joints' centre
    err = (out[:2] - x[:2]).norm(dim=-1)[~vis[:2]].mean()
    centre = torch.stack([(x[i] - mean.view(17, 2).float())[vis[i]].mean(0) for i in (0, 1)])[:, None]
    naive = mean.view(17, 2).float() + centre - x[:2]
    assert err < 0.05 and err < 0.5 * naive.norm(dim=-1)[~vis[:2]].mean()


@settings(max_examples=25, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1), st.integers(0, 16))
def test_guess_moves_with_the_pose(dx, dy, hidden):
    imputer = fit_joint_imputer(_poses(), translation_var=10.0)
    x = _poses(4, seed=2)
    vis = torch.ones(4, 17, dtype=torch.bool)
    vis[:, hidden] = False
    shift = torch.tensor([dx, dy])
    torch.testing.assert_close(imputer(x + shift, vis), imputer(x, vis) + shift, rtol=0, atol=2e-3)


def test_export_round_trip_and_clear_errors():
    imputer = fit_joint_imputer(_poses(200))
    again = JointImputer.from_export(imputer.export())
    assert torch.equal(again.mean, imputer.mean) and torch.equal(again.cov, imputer.cov)
    with pytest.raises(ValueError, match="mean \\(2 j,\\) and cov"):
        JointImputer.from_export({"mean": [0.0] * 34, "cov": [[0.0] * 3] * 3})
    with pytest.raises(ValueError, match="sparse \\(b, 17, 2\\) and visible"):
        imputer(torch.zeros(2, 16, 2), torch.ones(2, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="finite poses"):
        fit_joint_imputer(torch.full((4, 17, 2), float("nan")))
    with pytest.raises(ValueError, match="n >= 2"):
        fit_joint_imputer(torch.zeros(1, 17, 2))
    with pytest.raises(ValueError, match="guess=gaussian needs snap_levels"):
        LifterConfig(guess="gaussian", snap_levels=False)


def test_gaussian_guess_from_training_to_inference_without_the_prior(trained, data_file, tmp_path, monkeypatch):
    for f in ("tokenizer.pt", "prior.pt", "prior_fold0.pt", "prior_fold1.pt"):
        (tmp_path / f).write_bytes((trained / f).read_bytes())
    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "snap_levels=true", "snap_detail=0", "guess=gaussian",
               "gate_levels=true", "level_min_visible=12", "mask_ratio=0.3", "occlusion_prob=1", "max_steps=2",
               "warm_epochs=0", "generated=epoch")
    calls = []
    generate = train_lifter.generate_levels
    monkeypatch.setattr(train_lifter, "generate_levels", lambda *a, **k: calls.append(1) or generate(*a, **k))
    train_lifter.run(cfg)
    assert not calls  # every training level came from the level map of seen and imputed joints
    model = HiPART.load(tmp_path, device="cpu")
    lazy = HiPART.load(tmp_path, device="cpu", lazy=True)
    assert isinstance(model.imputer, JointImputer) and model.snap[4] is model.imputer
    prior = train_prior.load_prior(tmp_path / "prior.pt")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 17, 2, generator=g) - 0.5
    vis = torch.rand(6, 17, generator=g) > 0.15
    vis[0] = True
    ref = model.predict(x, vis)
    joints = model.imputer(x, vis)
    dense, fine = train_lifter.mapped_levels(prior, joints)  # the levels: the map of seen and guessed joints
    torch.testing.assert_close((ref.dense_2d, ref.fine_2d), (dense, fine), rtol=0, atol=1e-5)
    monkeypatch.setattr(lazy.prior, "generate", lambda *a, **k: pytest.fail("lazy ran the prior"))
    out = lazy.predict(x, vis)  # no pose's answer reads a token
    assert (out.q_s == -1).all()
    torch.testing.assert_close(out.joints_3d, ref.joints_3d, rtol=0, atol=1e-5)
