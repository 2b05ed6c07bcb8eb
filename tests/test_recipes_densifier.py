"""The learned level map (`recipes.hipart.densifier`): it fits what an affine map cannot, is translation-equivariant,
refuses bad input, and travels with the prior's export into snapping."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from recipes.hipart.centring import fit_level_regressor, regress_levels, snap_levels
from recipes.hipart.densifier import LevelDensifier, fit_densifier
from tests.recipe_runs import data_file, trained  # noqa: F401 (fixtures)


def _bodies(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse poses (n, 17, 2) and 6 level points that depend on them non-linearly (a point out from the joint by
    the squared length of its bone, and one at the product of two coordinates), so no affine map fits them."""
    g = torch.Generator().manual_seed(seed)
    sparse = torch.randn(n, 17, 2, generator=g) * 0.3 + torch.randn(n, 1, 2, generator=g)
    c = sparse - sparse[:, :1]
    bone = (c[:, 2] - c[:, 1]).pow(2).sum(-1, keepdim=True)
    points = torch.stack((c[:, 2] + bone, c[:, 5] * c[:, 6].flip(-1), c[:, 3].abs(), c[:, 8],
                          c[:, 9] + 0.1, torch.tanh(3 * c[:, 11])), dim=1)
    return sparse, points + sparse[:, :1]


def test_fits_what_the_affine_map_misses_and_generalises():
    sparse, points = _bodies(3000, 0)
    test_sparse, test_points = _bodies(500, 1)
    model = fit_densifier(sparse, points, steps=600, hidden=64, seed=0)
    affine = regress_levels(fit_level_regressor(sparse, points), test_sparse)
    err_affine = (affine - test_points).norm(dim=-1).mean()
    err = (model(test_sparse) - test_points).norm(dim=-1).mean()
    assert err < 0.75 * err_affine, (float(err), float(err_affine))  # 0.137 against 0.196 when written
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    # the same seed gives the same map
    again = fit_densifier(sparse, points, steps=600, hidden=64, seed=0)
    torch.testing.assert_close(again(test_sparse), model(test_sparse))


def test_a_new_densifier_is_its_affine_map_and_the_map_is_translation_equivariant():
    sparse, points = _bodies(400, 2)
    model = fit_densifier(sparse, points, steps=0, hidden=16)  # no MLP steps: the affine map alone
    torch.testing.assert_close(model(sparse), regress_levels(fit_level_regressor(sparse, points), sparse))
    model = fit_densifier(sparse, points, steps=50, hidden=16)
    shift = torch.tensor([0.7, -2.0])
    torch.testing.assert_close(model(sparse[:5] + shift), model(sparse[:5]) + shift, atol=1e-5, rtol=0)
    collapsed = torch.zeros(2, 17, 2)  # every joint on one point: finite, on that point's affine image
    assert torch.isfinite(model(collapsed)).all()
    with torch.no_grad():  # a caller under no_grad still gets a trained MLP
        trained = fit_densifier(sparse, points, steps=5, hidden=16)
    assert trained.mlp[-1].weight.abs().sum() > 0


def test_bad_input_is_refused_with_what_was_expected():
    sparse, points = _bodies(10, 3)
    with pytest.raises(ValueError, match=r"sparse \(m, j, 2\) and points \(m, n, 2\)"):
        fit_densifier(sparse, points[:5])
    with pytest.raises(ValueError, match="finite"):
        fit_densifier(sparse, torch.where(points > 0, points, math.nan))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        fit_densifier(sparse, points, steps=-1)
    with pytest.raises(ValueError, match="must be >= 1"):
        LevelDensifier(hidden=0)


def test_snapping_uses_the_learned_map_in_place_of_the_affine_one():
    sparse, points = _bodies(600, 4)
    g = torch.Generator().manual_seed(5)
    points = torch.cat((points, torch.randn(600, 138, 2, generator=g) * 0.01 + sparse[:, :1]), dim=1)  # 144 points
    model = fit_densifier(sparse, points, steps=30, hidden=16)
    joint = torch.softmax(torch.randn(17, 96, generator=g), dim=1)
    dense, fine = torch.randn(3, 48, 2, generator=g), torch.randn(3, 96, 2, generator=g)
    kw = dict(joint_regressor=joint, dense_regressor=torch.zeros(96, 33), fine_regressor=torch.zeros(192, 33))
    observed = sparse[:3]
    d0, f0 = snap_levels(dense, fine, observed, None, detail=0.0, densifier=model, **kw)
    torch.testing.assert_close(torch.cat((d0, f0), 1), model(observed))
    own = torch.einsum("jk,bkc->bjc", joint, fine)
    d1, f1 = snap_levels(dense, fine, own, None, detail=1.0, densifier=model, **kw)  # own joints: unchanged
    torch.testing.assert_close((d1, f1), (dense, fine), atol=1e-5, rtol=0)


def test_prior_export_carries_the_densifier_into_snapping(trained, data_file, tmp_path):
    import importlib.util

    from recipes.hipart import train_lifter, train_prior, train_tokenizer
    from recipes.hipart.data import make_dataset

    spec = importlib.util.spec_from_file_location("alr", Path(__file__).parents[1] / "scripts" / "add_level_regressors.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    exported = train_prior.load_prior(trained / "prior.pt")  # train-prior densifier_steps=20 (tests/recipe_runs.py)
    assert isinstance(exported.level_densifier, LevelDensifier) and exported.level_densifier.num_points == 144
    payload = torch.load(trained / "prior.pt", map_location="cpu", weights_only=False)
    payload["extra"].pop("level_densifier")  # as an export without one
    torch.save(payload, tmp_path / "prior.pt")
    assert not hasattr(train_prior.load_prior(tmp_path / "prior.pt"), "level_densifier")
    assert train_lifter.snap_of(train_prior.load_prior(tmp_path / "prior.pt"), 0.0)[3] is None
    script.add_level_regressors(tmp_path, densifier_steps=20)  # the one train-prior fits, at the prior's own lr
    prior = train_prior.load_prior(tmp_path / "prior.pt")
    for key, value in exported.level_densifier.state_dict().items():
        torch.testing.assert_close(prior.level_densifier.state_dict()[key], value)
    assert train_lifter.snap_of(prior, 0.0)[3] is prior.level_densifier
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train"), batch_size=8)))
    x_s = batch["sparse_2d_clean"]
    vis = torch.ones(8, 17, dtype=torch.bool)
    dense, fine = train_lifter.generate_levels(prior, tok, x_s, vis, snap=0.0)
    torch.testing.assert_close(torch.cat((dense, fine), 1), prior.level_densifier(x_s), atol=1e-5, rtol=0)
    # another level map on the same run: the script refits it at another learning rate and records both settings
    assert payload["config"]["densifier_lr"] == 3e-3  # the demo preset's (tests/recipe_runs.py)
    script.add_level_regressors(tmp_path, densifier_steps=20, densifier_lr=1e-3)
    payload = torch.load(tmp_path / "prior.pt", map_location="cpu", weights_only=False)
    assert (payload["config"]["densifier_steps"], payload["config"]["densifier_lr"]) == (20, 1e-3)
    slower = train_prior.load_prior(tmp_path / "prior.pt").level_densifier
    assert not torch.equal(slower.mlp[0].weight, prior.level_densifier.mlp[0].weight)
    torch.testing.assert_close(slower.affine, prior.level_densifier.affine)  # the least-squares part is the same
    from recipes.hipart.presets import get_preset

    for bad in ("densifier_lr=0", "densifier_steps=-1"):
        with pytest.raises(ValueError, match="densifier_steps must be >= 0 .* and densifier_lr > 0"):
            get_preset("prior", "demo", [bad])
