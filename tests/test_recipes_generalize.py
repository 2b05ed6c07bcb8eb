"""What makes HiPART transfer: fallback centring and the joint-regressor placement of generated levels, out-of-fold
generation, mean +- std over seeds, leave-one-source-out data."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from recipes.hipart.centring import (fit_joint_regressor, fit_level_regressor, generate_centred, observed_centre,
                                     point_confidence, regress_levels, snap_levels, solve_translation)
from recipes.hipart.cross_source import format_table, leave_one_out, run_cross_source, split_sources
from recipes.hipart.data import TensorItems, sequence_folds
from recipes.hipart.seeds import aggregate_reports, format_aggregate
from recipes.hipart import train_lifter
from recipes.hipart.train_lifter import _precompute
from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.splits import frame_sources
from skeletok.skeleton import H36M_17
from tests.recipe_runs import data_file, tiny, write_random_walk  # noqa: F401 (fixture)

PELVIS, R_HIP, L_HIP = H36M_17.index("pelvis"), H36M_17.index("right_hip"), H36M_17.index("left_hip")


def test_observed_centre_falls_back_on_visible_joints_only():
    x = torch.randn(4, 17, 2)
    vis = torch.ones(4, 17, dtype=torch.bool)
    vis[1, PELVIS] = False  # hips visible
    vis[2, [PELVIS, R_HIP, L_HIP]] = False  # only other joints
    vis[3] = False  # nothing
    poisoned = torch.where(vis[..., None], x, torch.full_like(x, float("nan")))  # hidden values are never read
    c = observed_centre(poisoned, vis)
    torch.testing.assert_close(c[0, 0], x[0, PELVIS])
    torch.testing.assert_close(c[1, 0], x[1, [R_HIP, L_HIP]].mean(0))
    torch.testing.assert_close(c[2, 0], x[2, vis[2]].mean(0))
    assert torch.equal(c[3, 0], torch.zeros(2))


def test_joint_regressor_recovers_weights_and_is_translation_equivariant():
    g = torch.Generator().manual_seed(0)
    true = torch.rand(17, 96, generator=g) ** 4
    true = true / true.sum(1, keepdim=True)
    fine = torch.randn(500, 96, 2, generator=g)
    sparse = torch.einsum("jk,bkc->bjc", true, fine)
    w = fit_joint_regressor(fine, sparse, ridge=1e-8)
    torch.testing.assert_close(w.sum(1), torch.ones(17), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.einsum("jk,bkc->bjc", w, fine), sparse, atol=1e-3, rtol=0)
    shift = torch.tensor([[[0.3, -0.2]]])
    vis = torch.rand(500, 17, generator=g) > 0.5
    vis[:, 0] = True
    t, seen = solve_translation(fine[:5], w, sparse[:5] + shift, vis[:5])
    assert seen.all()
    torch.testing.assert_close(t, shift.expand(5, 1, 2), atol=1e-3, rtol=0)


def _weights(g, rows: int, cols: int) -> torch.Tensor:
    w = torch.rand(rows, cols, generator=g) ** 4
    return w / w.sum(1, keepdim=True)


def _level_weights(g, k: int) -> torch.Tensor:
    return torch.randn(2 * k, 33, generator=g) * 0.2


def test_level_regressors_recover_an_affine_body_and_snap_onto_the_observed_joints():
    g = torch.Generator().manual_seed(1)
    w_fine, w_dense, joint = _level_weights(g, 96), _level_weights(g, 48), _weights(g, 17, 96)
    sparse = torch.randn(400, 17, 2, generator=g)
    fitted = fit_level_regressor(sparse, regress_levels(w_fine, sparse), ridge=1e-10)
    torch.testing.assert_close(fitted, w_fine, atol=1e-4, rtol=0)
    shift = torch.tensor([3.0, -1.0])  # translation-equivariant
    torch.testing.assert_close(regress_levels(w_fine, sparse[:4] + shift), regress_levels(w_fine, sparse[:4]) + shift,
                               atol=1e-5, rtol=0)

    fine = torch.randn(3, 96, 2, generator=g)
    dense = torch.randn(3, 48, 2, generator=g)
    own = torch.einsum("jk,bkc->bjc", joint, fine)  # the generated pose's joints
    kw = dict(joint_regressor=joint, dense_regressor=w_dense, fine_regressor=w_fine)
    # observed = the generated pose's own joints: detail 1 changes nothing
    d1, f1 = snap_levels(dense, fine, own, None, detail=1.0, **kw)
    torch.testing.assert_close((d1, f1), (dense, fine), atol=1e-5, rtol=0)
    # observed = own joints moved by t: detail 1 moves every point by t
    t = torch.tensor([0.2, -0.3])
    d1, f1 = snap_levels(dense, fine, own + t, None, detail=1.0, **kw)
    torch.testing.assert_close((d1, f1), (dense + t, fine + t), atol=1e-5, rtol=0)
    # detail 0: the levels are the regressors applied to the observed joints, whatever the generated detail
    observed = torch.randn(3, 17, 2, generator=g)
    d0, f0 = snap_levels(dense, fine, observed, None, detail=0.0, **kw)
    torch.testing.assert_close(f0, regress_levels(w_fine, observed), atol=1e-5, rtol=0)
    torch.testing.assert_close(d0, regress_levels(w_dense, observed), atol=1e-5, rtol=0)
    # hidden joints: their observed values are never read; the generated pose's own joints stand in
    vis = torch.rand(3, 17, generator=g) > 0.4
    poisoned = torch.where(vis[..., None], observed, torch.full_like(observed, float("nan")))
    dh, fh = snap_levels(dense, fine, poisoned, vis, detail=0.5, **kw)
    seen = torch.where(vis[..., None], observed, own)
    expect = regress_levels(w_fine, seen) + 0.5 * (fine - regress_levels(w_fine, own))
    torch.testing.assert_close(fh, expect, atol=1e-5, rtol=0)
    assert torch.isfinite(dh).all()


def test_snapping_through_generation_and_the_lifter_export(tmp_path):
    g = torch.Generator().manual_seed(2)
    w_fine, w_dense, joint = _level_weights(g, 96), _level_weights(g, 48), _weights(g, 17, 96)
    prior, tok = _FixedPrior(0), _ShapeTokenizer(torch.randn(96, 2, generator=g) * 0.1)
    sparse = torch.randn(2, 17, 2, generator=g) * 0.1
    vis = torch.ones(2, 17, dtype=torch.bool)
    plain = generate_centred(prior, tok, sparse, vis, regressor=joint)
    snapped = generate_centred(prior, tok, sparse, vis, regressor=joint, snap=(w_dense, w_fine, 0.0, None, None))
    torch.testing.assert_close(snapped[1], regress_levels(w_fine, sparse), atol=1e-5, rtol=0)
    assert not torch.allclose(plain[1], snapped[1])
    with pytest.raises(ValueError, match="joint regressor"):
        generate_centred(prior, tok, sparse, vis, snap=(w_dense, w_fine, 0.0, None, None))
    from recipes.hipart.train_lifter import snap_of
    assert snap_of(prior, None) is None
    with pytest.raises(ValueError, match="level regressors"):
        snap_of(prior, 0.0)  # a prior exported without them
    from recipes.hipart.config import LifterConfig
    with pytest.raises(ValueError, match="snap_detail"):
        LifterConfig(snap_levels=True, snap_detail=1.5)


def test_gated_points_are_those_of_parts_with_a_hidden_joint():
    from recipes.hipart.centring import visible_parts
    from recipes.hipart.level_gates import drop_levels

    part_ids = torch.arange(96) % len(H36M_17.parts)
    vis = torch.ones(2, 17, dtype=torch.bool)
    knee = H36M_17.index("left_knee")
    vis[1, knee] = False
    shown = visible_parts(vis, part_ids)
    assert shown[0].all()
    with_knee = torch.tensor([knee in H36M_17.parts[p] for p in part_ids.tolist()])
    assert with_knee.sum() > 0 and torch.equal(shown[1], ~with_knee)  # thigh and shin points hidden, no others
    levels = [torch.zeros(2, 17, 2), torch.zeros(2, 48, 2), torch.zeros(2, 96, 2)]
    torch.manual_seed(0)
    dropped = drop_levels(levels, [vis, torch.ones(2, 48, dtype=torch.bool), shown], 0.5, True)
    assert not (dropped[2] & ~shown).any()  # level dropout never shows a gated point again


class _FixedPrior:
    """Stands in for the prior: every pose gets token ``k`` (its id), whatever the condition."""

    def __init__(self, k: int):
        self.k = k

    def generate(self, x, visible, **_):
        return torch.full((x.shape[0], 16), self.k), torch.full((x.shape[0], 16, 3), self.k)


class _ShapeTokenizer:
    """Stands in for the tokenizer: decodes the same pelvis-centred body, moved by 0.01 per token value."""

    def __init__(self, fine: torch.Tensor):
        self.fine = fine  # (96, 2) relative to the true pelvis

    def decode(self, q_s, q_d):
        fine = self.fine.expand(q_s.shape[0], -1, -1) + 0.01 * q_s[:, :1, None].float()
        return fine[:, ::2], fine


def test_hidden_pelvis_placed_by_visible_joints():
    g = torch.Generator().manual_seed(3)
    fine_rel = torch.randn(96, 2, generator=g) * 0.2
    w = torch.rand(17, 96, generator=g) ** 4
    w = w / w.sum(1, keepdim=True)
    fine_rel = fine_rel - (w @ fine_rel)[PELVIS]  # the regressed pelvis of the body is its origin
    where = torch.tensor([0.4, -0.1])
    sparse = (w @ fine_rel + where)[None]  # the observed joints of that body standing at `where`
    vis = torch.ones(1, 17, dtype=torch.bool)
    vis[0, [PELVIS, R_HIP, L_HIP]] = False  # the fallback centre is then the mean of the other joints
    prior, tok = _FixedPrior(0), _ShapeTokenizer(fine_rel)
    _, fine_fallback, _, _ = generate_centred(prior, tok, sparse, vis)
    _, fine_solved, _, _ = generate_centred(prior, tok, sparse, vis, regressor=w)
    truth = fine_rel + where
    fallback_error = sparse[0, vis[0]].mean(0) - where  # the fallback centre minus the true pelvis
    assert fallback_error.norm() > 1e-3
    torch.testing.assert_close(fine_fallback[0] - truth, fallback_error.expand(96, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(fine_solved[0], truth, atol=1e-5, rtol=0)
    # a visible pelvis anchors the levels exactly as before, with or without the regressor
    vis_all = torch.ones(1, 17, dtype=torch.bool)
    a = generate_centred(prior, tok, sparse + 0.05, vis_all)[1]
    b = generate_centred(prior, tok, sparse + 0.05, vis_all, regressor=w)[1]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], fine_rel + sparse[0, PELVIS] + 0.05, atol=1e-6, rtol=0)


def test_out_of_fold_levels_come_from_the_prior_that_never_saw_the_take(tmp_path):
    data = write_random_walk(tmp_path / "walk.npz", sequences=5)
    folds = sequence_folds(data, 2)
    arrays = load_dataset(data)
    train_seq = np.unique(arrays["sequence"][arrays["split"] == 0])
    assert set(folds[train_seq].tolist()) == {0, 1} and (np.delete(folds, train_seq) == -1).all()
    n = 10
    items = TensorItems(sparse_2d=torch.randn(n, 17, 2), sparse_visible=torch.ones(n, 17, dtype=torch.bool),
                        sparse_3d=torch.randn(n, 17, 3))
    items.set_epoch = lambda epoch: None
    which = torch.tensor([0, 1, 1, 0, 0, 1, 0, 1, 1, 1])
    tok = _ShapeTokenizer(torch.zeros(96, 2))
    out = _precompute(items, [_FixedPrior(0), _FixedPrior(7)], tok, "cpu", which)
    fine = torch.stack([out[i]["fine_hat"] for i in range(n)])
    centre = observed_centre(items.tensors["sparse_2d"], items.tensors["sparse_visible"])
    torch.testing.assert_close(fine - centre, 0.07 * which[:, None, None].float().expand(n, 96, 2), atol=1e-6,
                               rtol=0)


def test_mean_and_std_over_seeds_and_ordering():
    def report(clean_s, clean_h, mask_s, mask_h):
        return {"mpjpe_mm": {"sparse_only": clean_s, "hipart": clean_h, "oracle": 90.0},
                "p_mpjpe_mm": {"sparse_only": 1.0, "hipart": 1.0, "oracle": 1.0},
                "occlusion": {"mask": {"0.4": {"sparse_only": mask_s, "hipart": mask_h}}},
                "meta": {"split": "test", "seed": 0}, "pictures": ["a.png"]}

    agg = aggregate_reports([report(100, 95, 150, 140), report(110, 100, 160, 165), report(120, 105, 170, 150)])
    assert agg["seeds"] == 3 and "pictures" not in agg
    assert agg["mpjpe_mm"]["hipart"]["mean"] == pytest.approx(100.0)
    assert agg["mpjpe_mm"]["sparse_only"]["std"] == pytest.approx(10.0)
    assert agg["mpjpe_mm"]["hipart"]["values"] == [95, 100, 105]
    assert agg["ordering"] == {"of": 3, "clean": 3, "mask/0.4": 2}
    assert agg["meta"]["split"] == "test"
    text = format_aggregate(agg)
    assert "| hipart | 100.0 +- 5.0 |" in text and "2/3" in text and "keypoint-level proxies" in text
    with pytest.raises(ValueError, match="at least one report"):
        aggregate_reports([])


def test_seeds_command_aggregates_run_directories(tmp_path, capsys):
    from recipes.hipart.seeds import main

    for k, (s, h) in enumerate([(100, 95), (110, 100)]):
        (tmp_path / f"seed{k}").mkdir()
        report = {"mpjpe_mm": {"sparse_only": s, "hipart": h, "oracle": 90.0}, "meta": {"split": "test"}}
        (tmp_path / f"seed{k}" / "report.json").write_text(json.dumps(report))
    assert main(["--out", str(tmp_path / "agg"), str(tmp_path / "seed0"), str(tmp_path / "seed1")]) == 0
    agg = json.loads((tmp_path / "agg" / "report.json").read_text())
    assert agg["mpjpe_mm"]["hipart"]["mean"] == pytest.approx(97.5) and agg["ordering"]["clean"] == 2
    assert "| hipart | 97.5 +- 3.5 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "agg"), str(tmp_path / "nothing")])
    assert "no report in" in capsys.readouterr().err


def test_leave_one_source_out(tmp_path):
    data = write_random_walk(tmp_path / "walk.npz", sequences=4)  # sequences seq0..seq3, seq3 is test
    out = leave_one_out(data, "seq1", tmp_path / "without_seq1.npz")
    before, after = load_dataset(data), load_dataset(out)
    seq = after["sequence"]
    assert (after["split"][seq == 1] == 1).all()  # the held-out source is the test split
    assert (after["split"][seq != 1] == 0).all()  # every other frame trains, the old test sequence included
    assert (before["split"][seq == 3] == 1).all()
    np.testing.assert_array_equal(after["pix_sparse"], before["pix_sparse"])
    assert sorted(set(frame_sources(after).tolist())) == ["seq0", "seq1", "seq2", "seq3"]
    with pytest.raises(ValueError, match="not in .* its sources are"):
        leave_one_out(data, "mocap", tmp_path / "x.npz")
    row = {"test_samples": 48, "mpjpe_mm": {"sparse_only": 100.0, "hipart": 90.0, "oracle": 80.0},
           "p_mpjpe_mm": {}, "mask_0.4_mpjpe_mm": {"sparse_only": 150.0, "hipart": 140.0}}
    assert "| seq1 | 48 | 100.0 | 90.0 | 80.0 | 150.0 | 140.0 | - |" in format_table({"seq1": row})
    # `--sources a b key=value`: argparse hands the overrides to --sources; they go back to the overrides
    assert split_sources(["seq1", "threads=2", "seq2", "x=1"], ["y=2"]) == (["seq1", "seq2"], ["threads=2", "x=1", "y=2"])
    assert split_sources(["x=1"], []) == (None, ["x=1"]) and split_sources(None, ["y=2"]) == (None, ["y=2"])
    # an unknown source is refused before any fold trains
    with pytest.raises(ValueError, match=r"\['mocap'\] are not in .* its sources are"):
        run_cross_source(tmp_path / "cs", sources=["seq1", "mocap"], overrides=[f"data={data}"], progress=False)
    assert not (tmp_path / "cs").exists()


def test_warm_start_copies_the_sparse_lifter_into_the_hierarchical_one():
    from recipes.hipart.train_lifter import warm_start
    from skeletok.lifter import HierarchicalLifter

    torch.manual_seed(0)
    sparse = HierarchicalLifter(level_points=(17,), dim=16, depth=1, heads=2)
    hier = HierarchicalLifter(level_points=(17, 48, 96), dim=16, depth=1, heads=2)
    fresh = {k: v.clone() for k, v in hier.state_dict().items()}
    warm_start(hier, sparse)
    own, theirs = hier.state_dict(), sparse.state_dict()
    for key, value in theirs.items():
        torch.testing.assert_close(own[key][: value.shape[0]], value, atol=0, rtol=0)
    torch.testing.assert_close(own["pos_embed"][17:], fresh["pos_embed"][17:], atol=0, rtol=0)  # new points untouched
    torch.testing.assert_close(own["level_embed"][1:], fresh["level_embed"][1:], atol=0, rtol=0)
    with pytest.raises(ValueError, match="same width"):
        warm_start(HierarchicalLifter(level_points=(17, 48, 96), dim=32, depth=1, heads=2), sparse)


def test_stages_that_need_levels_refuse_a_file_without_them(tmp_path):
    from recipes.hipart import train_lifter, train_prior, train_tokenizer
    from recipes.hipart.presets import get_preset
    from skeletok.data.sets.fileformat import save_dataset

    data = write_random_walk(tmp_path / "walk.npz")
    arrays = load_dataset(data)
    for key in ("world_dense", "world_fine", "pix_dense", "pix_fine"):
        arrays[key] = np.full_like(arrays[key], np.nan)  # as Human3.6M converted without body meshes
    bare = save_dataset(arrays, tmp_path / "bare.npz")
    common = [f"data={bare}", f"run_dir={tmp_path}", "progress=false", "max_steps=1"]
    for stage, module, extra in (("tokenizer", train_tokenizer, []), ("prior", train_prior, []),
                                 ("lifter", train_lifter, ["mode=oracle", "warm_epochs=0"])):
        with pytest.raises(ValueError, match=r"bare\.npz: 72 of 72 training frames have no dense/fine ground truth"):
            module.run(get_preset(stage, "demo", common + extra))
    path = train_lifter.run(get_preset("lifter", "demo", common + ["mode=sparse_only", "warm_epochs=0", "dim=16",
                                                                   "depth=1", "heads=2"]))
    assert path.is_file()  # the sparse-only lifter needs no levels


def test_point_confidence_is_the_parts_mean_log_probability():
    class _Tok:
        num_dense, num_fine = 4, 6
        dense_part_ids = torch.tensor([0, 0, 1, 1])
        fine_part_ids = torch.tensor([1, 0, 1, 0, 0, 1])

    p_s = torch.tensor([[0.5, 1.0]])
    p_d = torch.tensor([[[0.5, 0.25], [1.0, 1e-40]]])
    dense, fine = point_confidence(_Tok(), p_s, p_d, floor=-10.0)
    part = torch.tensor([(math.log(0.5) * 2 + math.log(0.25)) / 3, (0.0 + 0.0 - 10.0) / 3])
    torch.testing.assert_close(dense, part[[0, 0, 1, 1]][None])
    torch.testing.assert_close(fine, part[[1, 0, 1, 0, 0, 1]][None])
    _Tok.dense_part_ids = None  # no part structure: every point gets the mean over parts
    dense, _ = point_confidence(_Tok(), p_s, p_d, floor=-10.0)
    torch.testing.assert_close(dense, part.mean().expand(1, 4))


def test_a_kept_warm_start_serves_lifters_that_differ_only_where_a_sparse_lifter_does_not_read(data_file, tmp_path):
    cfg = tiny("lifter", data_file, tmp_path / "a", "mode=hipart", "warm_epochs=1")
    path = train_lifter.warm_lifter(cfg)
    levels = dict(mode="oracle", aux_3d=0.5, level_dropout=1.0, level_min_visible=17, gate_levels=not cfg.gate_levels,
                  generated="online", snap_levels=False, oof_folds=0)
    assert set(levels) - {"mode"} <= train_lifter.LEVEL_FIELDS
    # trained with other values of the level fields, the warm start is the same lifter: they are never read
    other = train_lifter.warm_lifter(dataclasses.replace(cfg, run_dir=str(tmp_path / "b"), **levels))
    a, b = (train_lifter.load_lifter(p)[0].state_dict() for p in (path, other))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # so a kept warm start serves them as it is
    stamp = path.stat().st_mtime_ns
    assert train_lifter.warm_lifter(dataclasses.replace(cfg, **levels)) == path and path.stat().st_mtime_ns == stamp
    # and a killed one (its checkpoint without the export) continues for them
    assert (tmp_path / "a" / "lifter_sparse_only_warm" / "checkpoint.pt").is_file()
    path.unlink()
    assert train_lifter.warm_lifter(dataclasses.replace(cfg, **levels)) == path
    c = train_lifter.load_lifter(path)[0].state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)
    # what a sparse-only lifter reads must match: a clear error, not a start from other settings
    with pytest.raises(ValueError, match=r"trained with other settings \(lr: 0\.002 -> 0\.001\); delete it"):
        train_lifter.warm_lifter(dataclasses.replace(cfg, lr=1e-3))
    with pytest.raises(ValueError, match=r"mask_ratio: 0\.4 -> 0\.8"):
        train_lifter.warm_lifter(dataclasses.replace(cfg, mask_ratio=0.8, aux_3d=0.5))
