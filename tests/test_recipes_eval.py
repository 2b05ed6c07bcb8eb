"""The HiPART chain after training: evaluation report, inference object, `infer` on keypoint files, bench.

A tiny *real* dataset (the committed mocap retargeted onto the committed body, 30 frames per sequence) and
tiny models trained for a few steps through `run_demo`; the checks are on behaviour and values, not quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recipes.hipart.bench import run_bench
from recipes.hipart.centring import observed_centre
from recipes.hipart.demo import run_demo
from recipes.hipart.evaluate import CROP_RATIOS, MASK_RATIOS, run_evaluation
from recipes.hipart.inference import HiPART
from recipes.hipart.report import REQUIRED_KEYS, validate_report
from skeletok.cli import main
from skeletok.data.build import build_default_dataset
from skeletok.skeleton import COCO_17

TINY = ["dim=16", "depth=1", "heads=2", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16",
        "max_steps=3", "batch_size=32", "progress=false", "dropout=0.0"]




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hipart")
    data = build_default_dataset(root / "tiny.npz", max_frames_per_sequence=30, progress=False)
    run_demo(root / "run", overrides=[f"data={data}", *TINY], progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def report(run_dir):
    return run_evaluation(run_dir, max_samples=64, progress=False)


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


def test_predict_is_deterministic_and_respects_visibility(run_dir):
    model = HiPART.load(run_dir)
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
    # the generated levels are the tokenizer's decoding of the returned tokens, shifted to the input's centre
    dense, fine = model.tokenizer.decode(a.q_s, a.q_d)
    centre = observed_centre(x, vis)
    torch.testing.assert_close(dense + centre, a.dense_2d)
    torch.testing.assert_close(fine + centre, a.fine_2d)
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
    # unknown image size is a clear error
    assert main(["hipart", "infer", "--run", str(run_dir), "--keypoints", str(tmp_path / "dets.json"),
                 "--out", str(out)]) == 2


def test_evaluate_cli_on_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["hipart", "evaluate", "--run", str(tmp_path / "nope")]) == 2
    assert "tokenizer.pt not found" in capsys.readouterr().err


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


def test_observed_centre_uses_visible_joints_only():
    x = torch.zeros(3, 17, 2)
    x[:, 0] = torch.tensor([0.1, 0.2])                       # pelvis
    x[:, 1], x[:, 4] = torch.tensor([0.0, 0.2]), torch.tensor([0.3, 0.2])   # hips
    x[:, 5:] = 0.9
    vis = torch.ones(3, 17, dtype=torch.bool)
    vis[1, 0] = False                                          # pelvis hidden: mid-hips
    vis[2, :5] = False                                         # pelvis and hips hidden: mean of the rest
    c = observed_centre(x, vis)
    torch.testing.assert_close(c[0, 0], torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(c[1, 0], torch.tensor([0.15, 0.2]))
    torch.testing.assert_close(c[2, 0], torch.tensor([0.9, 0.9]))
    moved = x.clone()
    moved[2, :5] += 5.0
    torch.testing.assert_close(observed_centre(moved, vis), c)
    assert torch.equal(observed_centre(x, torch.zeros_like(vis)), torch.zeros(3, 1, 2))
