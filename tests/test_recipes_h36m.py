"""Human3.6M end to end on VideoPose3D-layout files written from shipped real mocap (the fixture of
tests/h36m_fixtures.py): ``from-h36m`` with CPN-like scored detections, ``(t, 17, 3)`` with misses and frames where
nobody was found (tests/h36m_detections.py) -> every stage of the ``h36m`` preset at tiny size with
``inputs=detections`` -> ``evaluate --inputs detections`` -> the paper's per-action table."""

from __future__ import annotations

import json

import numpy as np

from recipes.hipart.demo import run_demo
from recipes.hipart.evaluate import run_evaluation
from recipes.hipart.report import validate_report
from skeletok.cli import main
from skeletok.data.sets.fileformat import load_dataset
from tests.h36m_fixtures import SCORED_2D, calibration_files, h36m_files, mocap  # noqa: F401 (fixtures)

TINY = ["dim=16", "depth=1", "heads=2", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16",
        "batch_size=8", "epochs=1", "max_steps=2", "warmup_steps=1", "random_views=0", "inputs=detections",
        "threads=1", "device=cpu"]


def test_h36m_files_to_the_papers_table_with_detections(h36m_files, tmp_path, capsys):
    root, pos3d, _, cameras = h36m_files
    data = tmp_path / "h36m.npz"
    assert main(["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--cameras", str(cameras), "--data-2d",
                 str(root / SCORED_2D), "--out", str(data)]) == 0
    arrays = load_dataset(data)
    assert np.isfinite(arrays["world_fine"]).all() and np.isfinite(arrays["det_sparse"]).all()
    missed = arrays["det_score"] == 0
    assert 0 < missed.mean() < 0.1 and missed.all(-1).any()  # misses, and a frame and view where nobody was found
    assert "2D read as x, y, score" in capsys.readouterr().out  # the command says what it read
    run = tmp_path / "run"
    timings = run_demo(run, preset="h36m", overrides=[f"data={data}", *TINY], progress=False, eval_samples=16)
    assert {"tokenizer", "prior", "lifter_hipart", "lifter_sparse_only", "lifter_oracle", "evaluate"} <= set(timings)
    # the demo's own evaluation reads the input the lifters were trained on
    assert json.loads((run / "report.json").read_text())["meta"]["inputs"] == "detections"
    for stage in ("prior", "lifter_hipart", "lifter_sparse_only"):  # the detections were the input of training
        assert json.loads((run / stage / "config.json").read_text())["config"]["inputs"] == "detections"
    report = run_evaluation(run, data=data, out=tmp_path / "eval", inputs="detections", max_samples=0,
                            hypothesis_samples=4, temperature=0.0, pictures=False, progress=False)
    validate_report(report)
    assert report["meta"]["inputs"] == "detections" and report["meta"]["split"] == "test"
    # the test subject's actions (S9: Eating) fill their column of Protocol #1 and #2, the rest stay empty
    table = report["h36m_table"]
    assert table["evaluated"] == ["Eating"]
    for metric in ("mpjpe_mm", "p_mpjpe_mm"):
        for method, row in table[metric].items():
            assert row["Eating"] == report["per_action"]["Eating"][metric][method] == row["Avg"]
            assert row["Walking"] is None and 0 < row["Avg"] < 5000
            assert row["Avg"] == report[metric][method]  # one action: the table's average is the split's mean
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "Human3.6M per action, Protocol #1, MPJPE" in md and "detected 2D input" in md
    assert sum(len(v) for v in pos3d.values()) == len(arrays["sequence_names"])
