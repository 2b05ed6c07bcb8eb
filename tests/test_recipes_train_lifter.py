"""HiPART stage 3, the lifter's training variants: modes, out-of-fold priors, online generation, snapped and gated
levels, confidence, the auxiliary 3D loss, level dropout, hidden levels (tiny runs of `tests.recipe_runs`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from recipes.hipart import level_gates, train_lifter, train_prior, train_tokenizer
from recipes.hipart.data import make_dataset
from recipes.hipart.inference import HiPART
from recipes.hipart.presets import get_preset
from recipes.hipart.runlog import read_metrics
from skeletok.lifter import HierarchicalLifter
from skeletok.skeleton import H36M_17
from tests.recipe_runs import data_file, script_module, tiny, trained  # noqa: F401 (fixtures)


@pytest.mark.parametrize("mode", ["hipart", "sparse_only", "oracle"])
def test_lifter_modes_train_and_reduce_mpjpe(mode, trained, data_file):
    cfg = tiny("lifter", data_file, trained, f"mode={mode}", "epochs=4", "lr=3e-3", "schedule=constant", "warm_epochs=0")
    path = train_lifter.run(cfg)
    assert path == trained / f"lifter_{mode}.pt"
    model, saved_mode = train_lifter.load_lifter(path)
    assert saved_mode == mode and model.level_points == ((17,) if mode == "sparse_only" else (17, 48, 96))
    mpjpe = [r["mpjpe_mm"] for r in read_metrics(trained / f"lifter_{mode}" / "metrics.jsonl")]
    assert len(mpjpe) == 16 and np.mean(mpjpe[-4:]) < 0.8 * np.mean(mpjpe[:4])


def test_out_of_fold_priors_and_joint_regressor(trained, data_file, tmp_path):
    for k in range(2):
        path = trained / f"prior_fold{k}.pt"
        payload = torch.load(path, map_location="cpu", weights_only=True)
        assert payload["config"]["folds"] == 2 and payload["config"]["fold"] == k
        prior = train_prior.load_prior(path)
        assert prior.joint_regressor.shape == (17, 96)
        torch.testing.assert_close(prior.joint_regressor.sum(1), torch.ones(17), atol=1e-4, rtol=0)
    for bad in (["folds=1"], ["folds=2", "fold=2"], ["folds=-1"]):
        with pytest.raises(ValueError, match="fold"):
            get_preset("prior", "demo", bad)
    with pytest.raises(ValueError, match="oof_folds"):
        get_preset("lifter", "demo", ["oof_folds=1"])
    with pytest.raises(FileNotFoundError, match="prior_fold0.pt not found; train it with .*folds=3 fold=0"):
        train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=hipart", "oof_folds=3", "max_steps=1",
                              f"tokenizer={trained / 'tokenizer.pt'}", f"prior={trained / 'prior.pt'}"))


def test_lifter_generates_online(trained, data_file, tmp_path):
    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "generated=online", "oof_folds=0", "max_steps=2",
               f"tokenizer={trained / 'tokenizer.pt'}", f"prior={trained / 'prior.pt'}")
    train_lifter.run(cfg)
    records = read_metrics(tmp_path / "lifter_hipart" / "metrics.jsonl")
    assert len(records) == 2 and all(0 < r["mpjpe_mm"] < 5000 for r in records)


def test_lifter_generates_levels_for_each_epochs_occlusion_draw(trained, data_file, tmp_path):
    from recipes.hipart.data import EpochDraws, occlusion_of, train_set_of

    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "generated=epoch", "oof_folds=0", "epochs=2",
               "warm_epochs=0", "mask_ratio=0.6", "occlusion_prob=1.0", "level_min_visible=0",
               f"tokenizer={trained / 'tokenizer.pt'}",
               f"prior={trained / 'prior.pt'}")
    dataset = train_set_of(cfg, data_file, occlusion=occlusion_of(cfg))
    prior = train_prior.load_prior(trained / "prior.pt")
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    made = train_lifter._precomputed(cfg, dataset, [prior], tok, "cpu", None, None)
    assert isinstance(made, EpochDraws) and len(made.draws) == 2 and len(made) == len(dataset)
    for epoch in (0, 1, 2):  # epoch e serves the levels generated from the dataset's own draw of epoch e % 2
        made.set_epoch(epoch)
        dataset.set_epoch(epoch % 2)
        item, source = made[5], dataset[5]
        assert torch.equal(item["sparse_visible"], source["sparse_visible"])
        torch.testing.assert_close(item["sparse_2d"], source["sparse_2d"])
        dense, fine = train_lifter.generate_levels(prior, tok, source["sparse_2d"][None],
                                                   source["sparse_visible"][None])
        torch.testing.assert_close(item["fine_hat"], fine[0], atol=1e-5, rtol=0)
    made.set_epoch(0)
    first = torch.stack([made[i]["sparse_visible"] for i in range(len(made))])
    made.set_epoch(1)
    second = torch.stack([made[i]["sparse_visible"] for i in range(len(made))])
    assert (first != second).any()  # two epochs, two occlusion draws (once would repeat epoch 0's)
    once = train_lifter._precomputed(dataclasses.replace(cfg, generated="once"), dataset, [prior], tok, "cpu", None,
                                     None)
    assert not isinstance(once, EpochDraws)
    train_lifter.run(dataclasses.replace(cfg, max_steps=5))
    assert len(read_metrics(tmp_path / "lifter_hipart" / "metrics.jsonl")) == 5
    with pytest.raises(ValueError, match="EpochDraws"):
        EpochDraws([])


def test_precompute_runs_the_prior_only_where_its_tokens_reach_the_lifter(trained, data_file, tmp_path):
    from recipes.hipart.data import occlusion_of, train_set_of

    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "mask_ratio=0.6", "occlusion_prob=0.6")
    dataset = train_set_of(cfg, data_file, occlusion=occlusion_of(cfg))
    prior = train_prior.load_prior(trained / "prior.pt")
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    made = train_lifter._precompute(dataset, [prior], tok, "cpu", snap=0.0, min_visible=12).tensors
    vis = made["sparse_visible"]
    seen = vis.sum(-1)
    need = train_lifter.token_rows(vis, snap=0.0, scored=False, min_visible=12)
    assert torch.equal(need, (seen >= 12) & (seen < 17))
    assert need.any() and (seen == 17).any() and (seen < 12).any()
    dense, fine = train_lifter.generate_levels(prior, tok, made["sparse_2d"], vis, snap=0.0)
    lifted = seen >= 12  # the levels the lifter reads equal those of the prior run on every sample
    torch.testing.assert_close(made["fine_hat"][lifted], fine[lifted], atol=1e-5, rtol=0)
    torch.testing.assert_close(made["dense_hat"][lifted], dense[lifted], atol=1e-5, rtol=0)
    assert not made["fine_hat"][~lifted].any()  # hidden from the lifter: never generated
    assert (made["fine_hat"][seen == 17] - fine[seen == 17]).abs().max() < 1e-5  # the level map, no prior
    # tokens reach the lifter wherever the decoded detail is kept, confidence is read, or no gate hides them
    assert train_lifter.token_rows(vis, snap=0.5, scored=False, min_visible=0).all()
    assert train_lifter.token_rows(vis, snap=None, scored=False, min_visible=0).all()
    assert train_lifter.token_rows(vis, snap=0.0, scored=True, min_visible=0).all()


def test_snapped_levels_from_the_priors_regressors_in_training_and_inference(trained, data_file, tmp_path):
    from recipes.hipart.centring import regress_levels, snap_levels
    from recipes.hipart.inference import HiPART

    prior = train_prior.load_prior(trained / "prior.pt")
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train"), batch_size=64)))
    for name, key in (("dense_regressor", "dense_2d"), ("fine_regressor", "fine_2d")):  # fitted on training poses
        w = getattr(prior, name)
        n = batch[key].shape[1]
        assert w.shape == (2 * n, 33)
        fitted = regress_levels(w, batch["sparse_2d_clean"])  # better than the mean pose placed on the pelvis
        mean = (batch[key] - batch["sparse_2d_clean"][:, :1]).mean(0) + batch["sparse_2d_clean"][:, :1]
        assert (fitted - batch[key]).norm(dim=-1).mean() < 0.7 * (mean - batch[key]).norm(dim=-1).mean()
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    x_s, vis = batch["sparse_2d"][:8], batch["sparse_visible"][:8]
    plain = train_lifter.generate_levels(prior, tok, x_s, vis)
    snapped = train_lifter.generate_levels(prior, tok, x_s, vis, snap=0.25)
    expect = snap_levels(*plain, x_s, vis, joint_regressor=prior.joint_regressor,
                         dense_regressor=prior.dense_regressor, fine_regressor=prior.fine_regressor, detail=0.25,
                         densifier=prior.level_densifier)
    torch.testing.assert_close(snapped, expect)
    for f in ("tokenizer.pt", "prior.pt", "prior_fold0.pt", "prior_fold1.pt"):
        (tmp_path / f).write_bytes((trained / f).read_bytes())
    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "snap_levels=true", "snap_detail=0.25", "max_steps=1",
               "warm_epochs=0")
    train_lifter.run(cfg)
    model = HiPART.load(tmp_path, device="cpu")  # inference lifts the levels the lifter was trained on
    assert model.snap[2] == 0.25
    dense, fine, *_ = model.densify(x_s, vis)
    torch.testing.assert_close((dense, fine), expect)


def test_gated_lifter_hides_guessed_parts_in_training_and_inference(trained, data_file, tmp_path):
    from recipes.hipart.inference import HiPART, root_relative

    for f in ("tokenizer.pt", "prior.pt", "prior_fold0.pt", "prior_fold1.pt"):
        (tmp_path / f).write_bytes((trained / f).read_bytes())
    train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=hipart", "gate_levels=true", "max_steps=1",
                          "warm_epochs=0", "level_min_visible=0"))  # the per-part gate alone
    model = HiPART.load(tmp_path, device="cpu")
    assert model.gate is not None
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train"), batch_size=4)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"].clone()
    vis[:, H36M_17.index("right_wrist")] = False
    dense, fine, _, _, joints = model.densify_and_lift(x_s, vis)
    shown = level_gates.gated_visibility(vis, model.gate)
    assert not shown[2].all() and shown[2].any()
    torch.testing.assert_close(joints, root_relative(model.lifter([x_s, dense, fine], shown)))
    # the lifter never reads a hidden part's points: moving them changes nothing
    moved = torch.where(shown[2][..., None], fine, fine + 0.3)
    torch.testing.assert_close(root_relative(model.lifter([x_s, dense, moved], shown)), joints)


def test_gate_shows_guessed_parts_the_prior_is_sure_of():
    # 2 samples; parts of the 96 fine points: the first 48 on the right wrist's bone, the rest on the head's
    wrist, head = H36M_17.index("right_wrist"), H36M_17.index("head")
    bone = {b: i for i, b in enumerate(H36M_17.parts)}
    part = lambda child: bone[(H36M_17.parents[child], child)]  # noqa: E731
    ids = torch.tensor([part(wrist)] * 48 + [part(head)] * 48)
    vis = torch.ones(2, 17, dtype=torch.bool)
    vis[:, wrist] = False
    logp = torch.tensor([[-0.2] * 48 + [-3.0] * 48, [-0.9] * 48 + [-0.1] * 48])
    plain = level_gates.gated_visibility(vis, (ids[:48], ids))
    assert not plain[2][:, :48].any() and plain[2][:, 48:].all()  # the wrist's bone is guessed: hidden
    sure = level_gates.gated_visibility(vis, (ids[:48], ids), (logp[:, :48], logp), -0.5)
    assert sure[2][0].all()  # sample 0: the guessed wrist scores -0.2 > -0.5: shown
    assert not sure[2][1, :48].any() and sure[2][1, 48:].all()  # sample 1: -0.9 <= -0.5: still hidden
    assert sure[2][:, 48:].all()  # seen parts stay shown whatever their score
    never = level_gates.gated_visibility(vis, (ids[:48], ids), (logp[:, :48], logp), 0.0)
    assert all(torch.equal(a, b) for a, b in zip(never, plain))  # 0 (the default) shows no guess


def test_guess_threshold_travels_from_training_to_inference(trained, data_file, tmp_path):
    from recipes.hipart.inference import HiPART, root_relative

    for f in ("tokenizer.pt", "prior.pt", "prior_fold0.pt", "prior_fold1.pt"):
        (tmp_path / f).write_bytes((trained / f).read_bytes())
    with pytest.raises(ValueError, match="guess_min_logp must be a log-probability threshold <= 0.*got 0.5"):
        tiny("lifter", data_file, tmp_path, "guess_min_logp=0.5")
    with pytest.raises(ValueError, match="below 0 only with gate_levels=true.*got -0.5, gate_levels=False"):
        tiny("lifter", data_file, tmp_path, "gate_levels=false", "guess_min_logp=-0.5")
    train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=hipart", "gate_levels=true", "max_steps=1",
                          "warm_epochs=0", "level_min_visible=0", "guess_min_logp=-0.6"))
    model = HiPART.load(tmp_path, device="cpu")
    assert model.guess_min_logp == -0.6
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train"), batch_size=8)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"].clone()
    vis[:, H36M_17.index("left_knee")] = False
    dense, fine, _, _, joints = model.densify_and_lift(x_s, vis)
    conf = model._densify(x_s, vis, 0.0, None, True, confidence=True)[4]
    shown = level_gates.gated_visibility(vis, model.gate, conf, -0.6)
    assert torch.equal(shown[2], level_gates.gated_visibility(vis, model.gate)[2] | (conf[1] > -0.6))
    torch.testing.assert_close(joints, root_relative(model.lifter([x_s, dense, fine], shown)))
    # the presets' combination: seen parts shown, every level hidden below 12 seen joints
    model.guess_min_logp, model.level_min_visible = 0.0, 12
    vis[:4, :6] = False  # samples 0-3 see 11 joints, 4-7 see 16
    dense, fine, _, _, joints = model.densify_and_lift(x_s, vis)
    shown = level_gates.gated_visibility(vis, model.gate)
    assert shown[2][4:].any() and not shown[2][4:].all()  # 16 seen: the seen parts' points only
    shown = [vis, *(torch.where(torch.arange(8)[:, None] < 4, False, k) for k in shown[1:])]
    torch.testing.assert_close(joints, root_relative(model.lifter([x_s, dense, fine], shown)))


def test_script_adds_the_level_regressors_train_prior_would_have_exported(trained, tmp_path):
    script = script_module("add_level_regressors")
    for name in ("prior.pt", "prior_fold1.pt"):
        payload = torch.load(trained / name, map_location="cpu", weights_only=False)
        payload["extra"].pop("level_regressors")  # as an export of session 4 and earlier
        torch.save(payload, tmp_path / name)
    assert len(script.add_level_regressors(tmp_path)) == 2
    for name in ("prior.pt", "prior_fold1.pt"):
        got = torch.load(tmp_path / name, map_location="cpu", weights_only=False)["extra"]["level_regressors"]
        expect = torch.load(trained / name, map_location="cpu", weights_only=False)["extra"]["level_regressors"]
        for key in ("dense", "fine"):
            torch.testing.assert_close(torch.tensor(got[key]), torch.tensor(expect[key]), atol=1e-5, rtol=0)


def test_generated_levels_come_from_prior_and_tokenizer(trained, data_file):
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    prior = train_prior.load_prior(trained / "prior.pt")
    item = make_dataset(data_file, split="train")[3]
    x_s, vis = item["sparse_2d"][None], item["sparse_visible"][None]
    dense, fine = train_lifter.generate_levels(prior, tok, x_s, vis)
    centre = x_s[:, :1]  # the pelvis is visible: tokens describe the pose centred on it
    expect = tok.decode(*prior.generate(x_s - centre, vis))
    assert vis[0, 0]
    assert torch.equal(dense, expect[0] + centre) and torch.equal(fine, expect[1] + centre) and fine.shape == (1, 96, 2)


def test_level_dropout_hides_generated_levels_of_a_fraction_of_samples():
    torch.manual_seed(0)
    levels = [torch.zeros(4000, 17, 2), torch.zeros(4000, 48, 2), torch.zeros(4000, 96, 2)]
    vis = [torch.ones(4000, 17, dtype=torch.bool), None, None]
    assert level_gates.drop_levels(levels, vis, 0.5, training=False) is vis
    assert level_gates.drop_levels(levels, vis, 0.0, training=True) is vis
    out = level_gates.drop_levels(levels, vis, 0.5, training=True)
    assert out[0] is vis[0]
    dense_kept, fine_kept = out[1].all(1), out[2].all(1)
    assert torch.equal(dense_kept, fine_kept) and torch.equal(out[1].any(1), dense_kept)  # whole levels per sample
    assert 0.45 < dense_kept.float().mean() < 0.55


def test_partial_level_dropout_hides_only_partly_seen_samples():
    torch.manual_seed(0)
    n = 4000
    levels = [torch.zeros(n, 17, 2), torch.zeros(n, 48, 2), torch.zeros(n, 96, 2)]
    seen = torch.ones(n, 17, dtype=torch.bool)
    seen[n // 2:, 3] = False  # the second half misses a knee
    fine = torch.ones(n, 96, dtype=torch.bool)
    fine[:, :10] = False  # already hidden points stay hidden
    out = level_gates.drop_levels(levels, [seen, None, fine], 0.5, True, partial=True)
    kept = out[1].all(1)
    assert kept[: n // 2].all()  # fully seen samples keep their levels
    assert 0.45 < kept[n // 2:].float().mean() < 0.55
    assert torch.equal(out[2], fine & kept[:, None]) and not out[2][:, :10].any()
    assert level_gates.drop_levels(levels, [seen, None, None], 0.5, False, partial=True)[1] is None
    with pytest.raises(ValueError, match="partial_level_dropout"):
        get_preset("lifter", "demo", ["partial_level_dropout=1.5"])
    with pytest.raises(ValueError, match="level_dropout"):
        get_preset("lifter", "demo", ["level_dropout=-0.1"])


def test_wrappers_fetch_batches_like_single_items(data_file):
    from recipes.hipart.data import Attached
    from skeletok.data.views.occlusion import Occlusion

    base = make_dataset(data_file, split="train", occlusion=Occlusion(mask_ratio=0.3, noise_px=2.0), seed=0)
    wrapped = Attached(base, extra=torch.arange(len(base)) * 10)
    wrapped.set_epoch(1)
    many = wrapped.__getitems__([3, 0, 7])
    for i, item in zip([3, 0, 7], many):
        single = wrapped[i]
        assert single.keys() == item.keys() and int(item["index"]) == i and int(item["extra"]) == 10 * i
        for key in single:
            assert torch.equal(single[key], item[key]), key


def test_confidence_lifter_reads_the_priors_scores(trained, data_file, tmp_path):
    cfg = tiny("lifter", data_file, trained, "mode=hipart", "confidence=true", "oof_folds=2", "warm_epochs=0",
               "max_steps=2", "tag=scored")
    lifter, mode = train_lifter.load_lifter(train_lifter.run(cfg))
    assert mode == "hipart" and lifter.point_confidence
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    prior = train_prior.load_prior(trained / "prior.pt")
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="test"), batch_size=8)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"]
    dense, fine, dense_conf, fine_conf = train_lifter.generate_levels(prior, tok, x_s, vis, return_confidence=True)
    assert torch.equal(dense, train_lifter.generate_levels(prior, tok, x_s, vis)[0])
    assert dense_conf.shape == (8, 48) and fine_conf.shape == (8, 96)
    assert (dense_conf <= 0).all() and (dense_conf >= -10).all()
    # every point of a part carries that part's score
    for ids, conf in ((tok.dense_part_ids, dense_conf), (tok.fine_part_ids, fine_conf)):
        for part in ids.unique():
            chosen = conf[:, ids == part]
            torch.testing.assert_close(chosen, chosen[:, :1].expand_as(chosen))
    # HiPART feeds the lifter the same scores: its joints are the lifter's on [sparse, dense, fine] + scores
    model = HiPART(tok, prior, lifter, device="cpu")
    joints = model.predict(x_s, vis).joints_3d
    direct = lifter([x_s, dense, fine], [vis, None, None], confidence=[None, dense_conf, fine_conf])
    torch.testing.assert_close(joints, direct - direct[:, :1])


def test_aux_3d_loss_is_joints_plus_weighted_level_error(trained, data_file, tmp_path):
    torch.manual_seed(0)
    net = HierarchicalLifter(level_points=(17, 48, 96), dim=16, depth=1, heads=2)
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train", levels_3d=True),
                                                  batch_size=4)))
    step = train_lifter._step("oracle", None, aux_3d=0.5)
    loss, metrics = step(net, batch)
    joints, points = net(*train_lifter.lifter_inputs("oracle", batch), return_points=True)
    mpjpe = (joints - batch["sparse_3d"]).norm(dim=-1).mean()
    levels = (points[:, 17:] - torch.cat((batch["dense_3d"], batch["fine_3d"]), 1)).norm(dim=-1).mean()
    torch.testing.assert_close(loss, mpjpe + 0.5 * levels)
    torch.testing.assert_close(metrics["levels_mm"], levels.detach() * 1000)
    # a run with the auxiliary loss logs both errors; the sparse-only lifter ignores the weight
    cfg = tiny("lifter", data_file, trained, "mode=hipart", "aux_3d=0.5", "oof_folds=2", "warm_epochs=0",
               "max_steps=2", "tag=aux")
    train_lifter.run(cfg)
    records = read_metrics(trained / "lifter_hipart_aux" / "metrics.jsonl")
    assert len(records) == 2 and all(0 < r["levels_mm"] < 5000 and 0 < r["mpjpe_mm"] < 5000 for r in records)
    with pytest.raises(ValueError, match="aux_3d"):
        get_preset("lifter", "demo", ["aux_3d=-1"])


def test_hide_levels_lifts_from_the_sparse_pose_alone(trained, data_file):
    torch.manual_seed(0)
    lifter = HierarchicalLifter(level_points=(17, 48, 96), dim=16, depth=1, heads=2).eval()
    model = HiPART(train_tokenizer.load_tokenizer(trained / "tokenizer.pt"),
                   train_prior.load_prior(trained / "prior.pt"), lifter, device="cpu")
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="test"), batch_size=6)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"]
    dense, fine, _, _, shown = model.densify_and_lift(x_s, vis)
    *levels, hidden = model.densify_and_lift(x_s, vis, hide_levels=True)
    assert torch.equal(levels[0], dense) and torch.equal(levels[1], fine)  # still generated and returned
    off = [torch.zeros(6, 48, dtype=torch.bool), torch.zeros(6, 96, dtype=torch.bool)]
    alone = lifter([x_s, torch.zeros(6, 48, 2), torch.zeros(6, 96, 2)], [vis, *off])
    torch.testing.assert_close(hidden, alone - alone[:, :1])
    assert not torch.allclose(hidden, shown)


def test_level_min_visible_hides_the_levels_of_mostly_guessed_poses(trained, data_file, tmp_path):
    levels = [torch.zeros(3, 17, 2), torch.zeros(3, 48, 2), torch.zeros(3, 96, 2)]
    vis = torch.ones(3, 17, dtype=torch.bool)
    vis[1, :12] = False  # 5 joints seen
    vis[2, :6] = False  # 11 joints seen
    gated = level_gates.few_joints_hidden(levels, [vis, None, None], 6)
    assert gated[0] is vis
    assert gated[1].tolist() == [[True] * 48, [False] * 48, [True] * 48]
    assert gated[2][:, 0].tolist() == [True, False, True]
    part = torch.ones(3, 96, dtype=torch.bool)
    part[0, :10] = False  # points already hidden stay hidden
    assert level_gates.few_joints_hidden(levels, [vis, None, part], 12)[2].sum(1).tolist() == [86, 0, 0]
    assert level_gates.few_joints_hidden(levels, [vis, None, None], 0) == [vis, None, None]
    # inference: a gate above every sample's count is hide_levels; a gate of 0 shows the levels
    torch.manual_seed(0)
    lifter = HierarchicalLifter(level_points=(17, 48, 96), dim=16, depth=1, heads=2).eval()
    tok, prior = train_tokenizer.load_tokenizer(trained / "tokenizer.pt"), train_prior.load_prior(trained / "prior.pt")
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="test"), batch_size=6)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"].clone()
    vis[:3, :13] = False  # three samples see 4 joints, three see all 17
    hidden = HiPART(tok, prior, lifter, device="cpu").densify_and_lift(x_s, vis, hide_levels=True)[-1]
    shown = HiPART(tok, prior, lifter, device="cpu").densify_and_lift(x_s, vis)[-1]
    gated = HiPART(tok, prior, lifter, device="cpu", level_min_visible=5).densify_and_lift(x_s, vis)[-1]
    torch.testing.assert_close(gated[:3], hidden[:3])
    torch.testing.assert_close(gated[3:], shown[3:])
    assert not torch.allclose(gated[:3], shown[:3])
    # training with the gate records it in the export, and HiPART.load applies it
    cfg = tiny("lifter", data_file, tmp_path, "mode=hipart", "level_min_visible=9", "oof_folds=0", "warm_epochs=0",
               "max_steps=2", f"tokenizer={trained / 'tokenizer.pt'}", f"prior={trained / 'prior.pt'}")
    train_lifter.run(cfg)
    for f in ("tokenizer.pt", "prior.pt"):
        (tmp_path / f).write_bytes((trained / f).read_bytes())
    assert HiPART.load(tmp_path, device="cpu").level_min_visible == 9
    with pytest.raises(ValueError, match="level_min_visible"):
        get_preset("lifter", "demo", ["level_min_visible=18"])

