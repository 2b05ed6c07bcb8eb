"""The HiPART chain after training: evaluation report, inference object, `infer` on keypoint files, bench.

A tiny *real* dataset (the committed mocap retargeted onto the committed body, 30 frames per sequence) and
tiny models trained for a few steps through `run_demo`; the checks are on behaviour and values, not quality.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from recipes.hipart.bench import run_bench
from recipes.hipart.centring import observed_centre, snap_levels
from recipes.hipart.data import make_dataset
from recipes.hipart.demo import run_demo
from recipes.hipart.evaluate import main as evaluate_main
from recipes.hipart.evaluate import CROP_RATIOS, HYPOTHESES, MASK_RATIOS, run_evaluation, sample_hypotheses
from recipes.hipart.inference import HiPART
from recipes.hipart.presets import get_preset
from recipes.hipart.report import GROUPS, METHODS, OCCLUSION_PROTOCOL, REQUIRED_KEYS, validate_report
from skeletok.cli import main
from skeletok.data.sets.build import build_default_dataset
from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset, save_dataset
from skeletok.skeleton import COCO_17

TINY = ["dim=16", "depth=1", "heads=2", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16",
        "max_steps=3", "batch_size=32", "progress=false", "dropout=0.0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hipart")
    data = build_default_dataset(root / "tiny.npz", max_frames_per_sequence=30, progress=False)
    run_demo(root / "run", overrides=[f"data={data}", *TINY], progress=False, evaluate=False)
    return root / "run"


@pytest.fixture(scope="module")
def report(run_dir):
    return run_evaluation(run_dir, max_samples=64, hypothesis_samples=24, progress=False)


def test_report_has_every_key_and_consistent_values(run_dir, report):
    validate_report(report)
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["mpjpe_mm"] == report["mpjpe_mm"]
    for key in REQUIRED_KEYS:
        node = saved
        for part in key.split("."):
            node = node[part]
    assert set(report["occlusion"]["mask"]) == {str(r) for r in MASK_RATIOS}
    assert set(report["occlusion"]["crop"]) == {str(r) for r in CROP_RATIOS}
    # ratio 0 of a protocol is the clean input: same numbers as the clean table
    for m in ("sparse_only", "hipart"):
        assert report["occlusion"]["mask"]["0.0"][m] == pytest.approx(report["mpjpe_mm"][m], rel=1e-5)
    for m in ("sparse_only", "hipart", "oracle"):
        assert 0 < report["p_mpjpe_mm"][m] <= report["mpjpe_mm"][m] * 1.05
        assert np.isfinite(report["mpjpe_mm"][m])
    assert 0 < report["tokenizer"]["usage_sparse"] <= 1 and 0 < report["tokenizer"]["usage_dense"] <= 1
    assert report["tokenizer"]["fine_2d_px"] > 0
    assert {"tokenizer", "prior", "lifter_hipart", "evaluate"} <= set(report["timings_s"])
    assert sum(r["frames"] for r in report["per_action"].values()) == report["meta"]["samples"]
    for name in ("report.md", "occlusion.png", "frame_levels.png", "codebook_similarity.png"):
        assert (run_dir / name).stat().st_size > 0
    assert "| hipart |" in (run_dir / "report.md").read_text()


def test_report_groups_split_the_samples_by_action_seen_in_training(run_dir, report):
    arrays = load_dataset(report["meta"]["data"])
    names = [str(a) for a in arrays["action_names"]]
    train = {names[a] for a in np.unique(arrays["action"][arrays["split"] == SPLIT_CODES["train"]])}
    groups = report["groups"]
    assert set(groups) == set(GROUPS)
    assert sum(g["frames"] for g in groups.values()) == report["meta"]["samples"]
    assert set(groups["seen_action"]["actions"]) <= train
    assert not set(groups["unseen_action"]["actions"]) & train
    assert set(groups["seen_action"]["actions"]) | set(groups["unseen_action"]["actions"]) == set(report["per_action"])
    for g in groups.values():
        assert g["frames"] == sum(report["per_action"][a]["frames"] for a in g["actions"])
    for m in METHODS:
        # MPJPE is a mean over samples: the groups' frame-weighted mean is the overall one, and each group's is
        # the frame-weighted mean of its actions'
        filled = [g for g in groups.values() if g["frames"]]
        total = sum(g["frames"] * g["mpjpe_mm"][m] for g in filled) / report["meta"]["samples"]
        assert total == pytest.approx(report["mpjpe_mm"][m], rel=1e-4)
        for g in filled:
            by_action = sum(report["per_action"][a]["frames"] * report["per_action"][a]["mpjpe_mm"][m]
                            for a in g["actions"]) / g["frames"]
            assert g["mpjpe_mm"][m] == pytest.approx(by_action, rel=1e-4)
    md = (run_dir / "report.md").read_text()
    assert "| seen_action |" in md and "| unseen_action |" in md


def test_report_scores_hypotheses_and_the_oracle_under_occlusion(run_dir, report):
    meta = report["meta"]
    assert meta["temperature"] == 1.0 and meta["hypotheses"] == list(HYPOTHESES)
    assert meta["occlusion_protocol"] == OCCLUSION_PROTOCOL
    for name in ("clean", "mask"):
        h = report["hypotheses"][name]
        assert h["samples"] == meta["hypothesis_samples"] == 24
        ns = [str(n) for n in HYPOTHESES]
        assert h["best_of_n"]["1"] == pytest.approx(h["mean_of_n"]["1"], rel=1e-5)
        assert h["best_of_n"]["1"] == pytest.approx(h["per_hypothesis"]["1"], rel=1e-5)
        for a, b in zip(ns, ns[1:]):  # the first N hypotheses are nested: the best of more is never worse
            assert h["best_of_n"][b] <= h["best_of_n"][a] + 1e-4
        for n in ns:
            assert h["best_of_n"][n] <= h["per_hypothesis"][n] + 1e-4
            assert h["mean_of_n"][n] <= h["per_hypothesis"][n] + 1e-4  # the error of a mean pose (convexity)
    assert report["hypotheses"]["mask"]["argmax"] != report["hypotheses"]["clean"]["argmax"]
    for protocol in ("mask", "crop", "mask_noisy", "crop_noisy"):
        for ratio, row in report["occlusion"][protocol].items():
            assert set(row) == set(METHODS) and all(np.isfinite(v) for v in row.values())
    # ratio 0 of a protocol is the clean input, for the oracle too; hiding joints changes the oracle's error
    assert report["occlusion"]["crop"]["0.0"]["oracle"] == pytest.approx(report["mpjpe_mm"]["oracle"], rel=1e-5)
    assert report["occlusion"]["mask"]["0.8"]["oracle"] != report["occlusion"]["mask"]["0.0"]["oracle"]
    md = (run_dir / "report.md").read_text()
    assert "keypoint-level proxy of the paper's image-level Table 1" in md
    assert "| best of N |" in md and md.count("| oracle |") >= 5


def test_hypotheses_at_temperature_zero_are_the_argmax_path_and_sampling_is_seeded(run_dir):
    model = HiPART.load(run_dir)
    model.level_min_visible = 0  # the sampling itself: a gate would hide the levels of these partly seen poses
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 17, 2, generator=g) * 1.2 - 0.6
    vis = torch.rand(5, 17, generator=g) > 0.3
    argmax = model.predict(x, vis).joints_3d
    # batches of 4 rows cut across the hypotheses of one pose: each must land back on its own pose
    hyp = sample_hypotheses(model, x, vis, 3, temperature=0.0, batch_size=4)
    assert hyp.shape == (5, 3, 17, 3)
    for h in range(3):
        torch.testing.assert_close(hyp[:, h], argmax)
    a = sample_hypotheses(model, x, vis, 4, temperature=1.0, generator=torch.Generator().manual_seed(3))
    c = sample_hypotheses(model, x, vis, 4, temperature=1.0, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(a[:, 0], a[:, 1]) and not torch.equal(a, c)
    assert torch.equal(a, sample_hypotheses(model, x, vis, 4, temperature=1.0,
                                            generator=torch.Generator().manual_seed(3)))


def _with_splits(src, out, recode):
    arrays = dict(load_dataset(src))
    arrays["split"] = recode(np.asarray(arrays["split"]).copy(), arrays)
    return save_dataset(arrays, out)


def test_evaluate_val_split_and_a_split_without_frames(run_dir, tmp_path, capsys):
    data = run_dir.parent / "tiny.npz"

    def no_val(split, arrays):
        split[split == SPLIT_CODES["val"]] = SPLIT_CODES["test"]
        return split

    def first_test_sequence_is_val(split, arrays):
        split[split == SPLIT_CODES["val"]] = SPLIT_CODES["test"]
        seq = np.asarray(arrays["sequence"])
        first = seq[split == SPLIT_CODES["test"]][0]
        split[seq == first] = SPLIT_CODES["val"]
        return split

    plain = _with_splits(data, tmp_path / "no_val.npz", no_val)
    code = main(["hipart", "evaluate", "--run", str(run_dir), "--data", str(plain), "--split", "val",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "'val'" in err and "holds no frames" in err and "['train', 'test']" in err and "'all'" in err
    with pytest.raises(SystemExit) as exc:  # python -m recipes.hipart.evaluate
        evaluate_main(["--run", str(run_dir), "--data", str(plain), "--split", "val"])
    assert exc.value.code == 2 and "holds no frames" in capsys.readouterr().err

    val = _with_splits(data, tmp_path / "val.npz", first_test_sequence_is_val)
    rep = run_evaluation(run_dir, data=val, split="val", out=tmp_path / "val_out", max_samples=16,
                         hypothesis_samples=4, temperature=0.0, pictures=False, progress=False)
    arrays = load_dataset(val)
    assert rep["meta"]["split"] == "val"
    assert rep["meta"]["level_min_visible"] == get_preset("lifter", "demo").level_min_visible  # the lifter's own
    with pytest.raises(ValueError, match="level_min_visible must be a joint count in \\[0, 17\\], got 18"):
        run_evaluation(run_dir, data=val, split="val", out=tmp_path / "bad", level_min_visible=18, progress=False)
    assert rep["meta"]["samples"] == min(16, len(make_dataset(val, split="val")))
    assert 0 < int((arrays["split"] == SPLIT_CODES["val"]).sum()) < len(arrays["split"])
    for name in ("clean", "mask"):  # temperature 0: every hypothesis is the argmax one
        h = rep["hypotheses"][name]
        for n in map(str, HYPOTHESES):
            assert h["mean_of_n"][n] == pytest.approx(h["argmax"], rel=1e-4)
            assert h["best_of_n"][n] == pytest.approx(h["argmax"], rel=1e-4)


def test_predict_is_deterministic_and_respects_visibility(run_dir):
    model = HiPART.load(run_dir)
    model.level_min_visible = 0  # the levels reach the lifter, so a hidden joint's value could leak through them
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 17, 2, generator=g) * 1.2 - 0.6
    vis = torch.ones(5, 17, dtype=torch.bool)
    vis[:, 13] = False
    a = model.predict(x, vis)
    moved = x.clone()
    moved[:, 13] += 0.5  # a hidden joint moves: nothing may change
    b = model.predict(moved, vis, batch_size=2)
    assert torch.equal(a.q_s, b.q_s) and torch.equal(a.q_d, b.q_d)
    torch.testing.assert_close(a.joints_3d, b.joints_3d)
    assert a.joints_3d.shape == (5, 17, 3) and a.dense_2d.shape == (5, 48, 2) and a.fine_2d.shape == (5, 96, 2)
    # the generated levels are the tokenizer's decoding of the returned tokens, shifted to the input's centre (and,
    # when the run's lifter was trained on snapped levels, snapped onto the observed joints)
    dense, fine = model.tokenizer.decode(a.q_s, a.q_d)
    centre = observed_centre(x, vis)
    dense, fine = dense + centre, fine + centre
    if model.snap is not None:
        dense, fine = snap_levels(dense, fine, x, vis, joint_regressor=model.prior.joint_regressor,
                                  dense_regressor=model.snap[0], fine_regressor=model.snap[1], detail=model.snap[2],
                                  densifier=model.snap[3])
    torch.testing.assert_close(dense, a.dense_2d)
    torch.testing.assert_close(fine, a.fine_2d)
    hyp = model.predict(x, vis, temperature=1.0, num_hypotheses=4, generator=torch.Generator().manual_seed(1))
    assert hyp.joints_3d.shape == (5, 4, 17, 3)
    assert (hyp.q_d[:, 0] != hyp.q_d[:, 1]).any()
    with pytest.raises(ValueError, match="num_hypotheses"):
        model.predict(x, vis, num_hypotheses=2)
    with pytest.raises(ValueError, match="sparse_2d"):
        model.predict(x[:, :16], vis[:, :16])


def test_infer_on_coco_json(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.uniform(300, 700, size=(17, 2))
    scores = np.full(17, 0.9)
    scores[COCO_17.index("left_ankle")] = 0.05
    dets = [{"image_id": 1, "category_id": 1, "score": 0.9,
             "keypoints": np.concatenate([xy, scores[:, None]], 1).reshape(-1).tolist()}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out, png = tmp_path / "res.npz", tmp_path / "res.png"
    code = main(["hipart", "infer", "--run", str(run_dir), "--keypoints", str(tmp_path / "dets.json"),
                 "--out", str(out), "--plot", str(png), "--image-size", "1000", "1000"])
    assert code == 0 and png.stat().st_size > 0
    res = np.load(out)
    assert res["joints_3d"].shape == (1, 17, 3) and np.isfinite(res["joints_3d"]).all()
    assert res["dense_2d"].shape == (1, 48, 2) and res["fine_2d"].shape == (1, 96, 2)
    names = list(res["joint_names"])
    assert not res["visible"][0, names.index("left_ankle")]
    np.testing.assert_allclose(res["joints_3d"][0, 0], 0.0, atol=1e-5)  # root-relative
    # --lazy: a fully seen pose gets no tokens, and both poses the same answer
    dets.append({**dets[0], "keypoints": np.concatenate([xy + 20, np.full((17, 1), 0.9)], 1).reshape(-1).tolist()})
    (tmp_path / "two.json").write_text(json.dumps(dets))
    both = []
    for extra in ([], ["--lazy"]):
        assert main(["hipart", "infer", "--run", str(run_dir), "--keypoints", str(tmp_path / "two.json"),
                     "--out", str(out), "--image-size", "1000", "1000", *extra]) == 0
        both.append(dict(np.load(out)))
    full, lazy = both
    np.testing.assert_allclose(lazy["joints_3d"], full["joints_3d"], atol=1e-6)
    np.testing.assert_allclose(lazy["fine_2d"], full["fine_2d"], atol=1e-3)  # pixels
    assert (lazy["q_s"][1] == -1).all() and (full["q_s"][1] >= 0).all()
    np.testing.assert_array_equal(lazy["q_s"][0], full["q_s"][0])
    # unknown image size is a clear error
    assert main(["hipart", "infer", "--run", str(run_dir), "--keypoints", str(tmp_path / "dets.json"),
                 "--out", str(out)]) == 2


def test_evaluate_cli_on_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["hipart", "evaluate", "--run", str(tmp_path / "nope")]) == 2
    assert "tokenizer.pt not found" in capsys.readouterr().err


def test_evaluate_on_a_broken_model_file_is_a_clear_error(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("tokenizer.pt", "prior.pt", "lifter_hipart.pt", "lifter_sparse_only.pt", "lifter_oracle.pt"):
        shutil.copy(run_dir / name, run / name)
    good = (run / "prior.pt").read_bytes()
    (run / "prior.pt").write_bytes(good[: len(good) // 2])  # a half-written file
    with pytest.raises(ValueError, match=r"cannot read the model file .*prior\.pt.*train-prior run_dir="):
        HiPART.load(run)
    assert main(["hipart", "evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(run / "prior.pt") in err and "Traceback" not in err and "skeletok hipart train-prior" in err
    (run / "prior.pt").write_bytes(good)
    torch.save({"state_dict": {}}, run / "lifter_sparse_only.pt")  # a torch file that is not one of ours
    assert main(["hipart", "evaluate", "--run", str(run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "lifter_sparse_only.pt is not a model file written by export_model" in err
    assert "train-lifter mode=sparse_only" in err


def test_bench_reports_every_stage(run_dir):
    result = run_bench(run=run_dir, batch_sizes=(1, 4), min_time_s=0.01)
    for b in ("batch_1", "batch_4"):
        fps = result["fps"][b]
        assert set(fps) >= {"prior_generate_cached", "prior_generate_uncached", "lifter", "pipeline_cached"}
        assert all(v > 0 for v in fps.values())
    flops = result["flops_per_frame"]
    assert flops["prior_generate_uncached"] > flops["prior_generate_cached"] > 0
    assert flops["pipeline_cached"] >= flops["lifter"] + flops["tokenizer_decode"]
    assert result["machine"]["matmul_gflops_fp32"] > 0


def test_ground_truth_columns_never_reach_hipart_or_sparse_only(run_dir):
    """Corrupting the evaluation data's ground-truth columns (dense, fine, clean sparse, 3D) changes neither the
    HiPART nor the sparse-only prediction; only the oracle, which is given the true levels, moves."""
    from recipes.hipart.evaluate import _collect, _lift
    from recipes.hipart.train_lifter import load_lifter

    model = HiPART.load(run_dir, device="cpu")
    lifters = {"hipart": model.lifter, **{m: load_lifter(run_dir / f"lifter_{m}.pt")[0] for m in ("sparse_only", "oracle")}}
    batch = _collect(model.data_file, "test", None, 0, torch.arange(40))
    g = torch.Generator().manual_seed(0)
    corrupted = dict(batch)
    for key in ("sparse_2d_clean", "dense_2d", "fine_2d", "sparse_3d"):
        corrupted[key] = torch.randn(batch[key].shape, generator=g) * 3
    clean, bad = _lift(model, lifters, batch, 16), _lift(model, lifters, corrupted, 16)
    for mode in ("hipart", "sparse_only"):
        torch.testing.assert_close(clean[mode], bad[mode], atol=0, rtol=0)
    assert (clean["oracle"] - bad["oracle"]).abs().max() > 1e-3


def _with_detections(src, out, noise_px=4.0):
    """The dataset with detector-like 2D: the projection plus seeded Gaussian noise (pixels), as det_sparse."""
    arrays = dict(load_dataset(src))
    rng = np.random.default_rng(3)
    arrays["det_sparse"] = (arrays["pix_sparse"] + rng.normal(scale=noise_px, size=arrays["pix_sparse"].shape))
    return save_dataset(arrays, out)


def test_inputs_detections_reach_the_models_and_the_report(run_dir, tmp_path, capsys):
    from recipes.hipart import train_lifter
    from recipes.hipart.presets import get_preset
    from recipes.hipart.data import train_set_of
    from skeletok.data.views.cameras import normalize_screen

    plain = run_dir.parent / "tiny.npz"
    det = _with_detections(plain, tmp_path / "det.npz")
    arrays = load_dataset(det)
    # the datasets: sparse_2d is the detection, the clean columns and targets stay ground truth
    ds = make_dataset(det, split="test", inputs="detections")
    gt = make_dataset(det, split="test")
    item, ref = ds[7], gt[7]
    f, c = int(item["frame"]), int(item["camera"])
    w, h = arrays["cam_size"][c]
    np.testing.assert_allclose(item["sparse_2d"], normalize_screen(arrays["det_sparse"][f, c], w, h), atol=1e-5)
    assert torch.equal(item["sparse_2d_clean"], ref["sparse_2d"]) and torch.equal(item["sparse_3d"], ref["sparse_3d"])
    assert torch.equal(item["fine_2d"], ref["fine_2d"])
    # a training stage with inputs=detections trains on them
    cfg = get_preset("lifter", "demo", [f"data={det}", f"run_dir={tmp_path / 'run'}", "inputs=detections",
                                        "random_views=0", "mode=sparse_only", "warm_epochs=0", *TINY[:3],
                                        "max_steps=1", "progress=false"])
    train = train_set_of(cfg, det)
    assert torch.equal(train[0]["sparse_2d"], make_dataset(det, split="train", inputs="detections")[0]["sparse_2d"])
    assert not torch.equal(train[0]["sparse_2d"], train[0]["sparse_2d_clean"])
    assert train_lifter.run(cfg).is_file()
    # evaluate on detections: recorded, and the 3D errors differ from those on the projected joints
    kw = dict(max_samples=32, hypothesis_samples=4, temperature=0.0, pictures=False, progress=False)
    on_det = run_evaluation(run_dir, data=det, out=tmp_path / "e_det", inputs="detections", **kw)
    on_gt = run_evaluation(run_dir, data=det, out=tmp_path / "e_gt", **kw)
    validate_report(on_det)
    assert on_det["meta"]["inputs"] == "detections" and on_gt["meta"]["inputs"] == "ground_truth"
    assert on_det["meta"]["samples"] == on_gt["meta"]["samples"] == 32
    assert on_det["mpjpe_mm"]["sparse_only"] != pytest.approx(on_gt["mpjpe_mm"]["sparse_only"], rel=1e-6)
    assert "detected 2D input, no occlusion" in (tmp_path / "e_det" / "report.md").read_text()
    # refusals that name the file and the fix
    with pytest.raises(ValueError, match=r"tiny\.npz: inputs=detections needs 2D detections .*--data-2d"):
        run_evaluation(run_dir, data=plain, out=tmp_path / "x", inputs="detections", **kw)
    with pytest.raises(SystemExit) as exc:  # python -m recipes.hipart.evaluate (`skeletok hipart evaluate` alike)
        evaluate_main(["--run", str(run_dir), "--data", str(plain), "--inputs", "detections", "--out",
                       str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err and "inputs=detections needs 2D detections" in err
    with pytest.raises(ValueError, match="inputs=detections needs random_views=0"):
        train_set_of(get_preset("lifter", "demo", [f"data={det}", "inputs=detections", "random_views=0.5"]), det)
    with pytest.raises(ValueError, match="inputs"):
        get_preset("prior", "demo", ["inputs=cpn"])
    assert get_preset("prior", "demo", ["inputs=detections"]).inputs == "detections"


def test_evaluate_writes_the_h36m_table_on_h36m_actions(run_dir, tmp_path):
    arrays = load_dataset(run_dir.parent / "tiny.npz")
    names = np.array(["Walking", "Eating", "Phoning", "Posing", "Sitting", "Smoking", "Waiting", "Greeting"])
    arrays["action_names"] = names[np.arange(len(arrays["action_names"])) % len(names)]
    data = save_dataset(arrays, tmp_path / "h36m_like.npz")
    report = run_evaluation(run_dir, data=data, out=tmp_path / "e", max_samples=32, hypothesis_samples=4,
                            temperature=0.0, pictures=False, progress=False)
    validate_report(report)
    table = report["h36m_table"]
    assert set(table["evaluated"]) == set(report["per_action"]) & set(table["actions"]) and table["evaluated"]
    for a in table["evaluated"]:
        assert table["mpjpe_mm"]["hipart"][a] == report["per_action"][a]["mpjpe_mm"]["hipart"]
    assert "Human3.6M per action" in (tmp_path / "e" / "report.md").read_text()
    plain = run_evaluation(run_dir, out=tmp_path / "p", max_samples=8, hypothesis_samples=2, temperature=0.0,
                           pictures=False, progress=False)
    assert "h36m_table" not in plain

