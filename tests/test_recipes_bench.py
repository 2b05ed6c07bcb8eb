"""``skeletok hipart bench``: random-weight presets (no run needed) and the ``--peer`` DiffPose comparison.

The peer is a tiny fake DiffPose snapshot written here: the same module names, signatures and config file that
`recipes.hipart.peer.load_diffpose` imports from a real export of GONGJIA0208/Diffpose (which is never vendored).
It calls ``.cuda()`` and imports ``lib2to3`` like the real code, so the CPU shims are exercised too.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch

from recipes.hipart.bench import run_bench, side_by_side
from recipes.hipart.presets import get_preset
from skeletok.cli import main

FAKE_DIFFPOSE = {
    "configs/human36m_diffpose_uvxyz_cpn.yml": """\
        model:
            hid_dim: 8
            coords_dim: [5, 5]
        """,
    "common/__init__.py": "",
    "common/graph_utils.py": """\
        import torch

        def adj_mx_from_edges(num_pts, edges, sparse=True):
            adj = torch.eye(num_pts)
            adj[edges[:, 0], edges[:, 1]] = 1
            return adj
        """,
    "common/utils_diff.py": """\
        import numpy as np
        import torch

        def get_beta_schedule(beta_schedule, *, beta_start, beta_end, num_diffusion_timesteps):
            return np.linspace(beta_start, beta_end, num_diffusion_timesteps, dtype=np.float64)

        def generalized_steps(x, src_mask, seq, model, b, **kwargs):
            xs = [x]
            for i in reversed(list(seq)):
                t = (torch.ones(x.size(0)) * i).cuda()
                xs.append(xs[-1] - 0.1 * model(xs[-1], src_mask, t.float(), 0))
            return xs, xs[1:]
        """,
    "models/__init__.py": "",
    "models/gcndiff.py": """\
        from lib2to3.refactor import get_fixers_from_package
        import torch

        class GCNdiff(torch.nn.Module):
            def __init__(self, adj, config):
                super().__init__()
                self.adj = adj
                self.lin = torch.nn.Linear(config.model.coords_dim[0], config.model.coords_dim[1])

            def forward(self, x, mask, t, cemd):
                return self.adj @ self.lin(x)
        """,
    "models/gcnpose.py": """\
        from lib2to3.refactor import get_fixers_from_package
        import torch

        class GCNpose(torch.nn.Module):
            def __init__(self, adj, config):
                super().__init__()
                self.adj = adj
                self.lin = torch.nn.Linear(*config.model.coords_dim)

            def forward(self, x, mask):
                return self.adj @ self.lin(x)
        """,
}


@pytest.fixture
def fake_diffpose(tmp_path):
    root = tmp_path / "diffpose"
    for name, text in FAKE_DIFFPOSE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("preset", ["demo", "h36m"])
def test_bench_random_weights_from_the_cli(preset, tmp_path, capsys):
    out = tmp_path / "bench.json"
    jobs = ["--jobs", "2", "--threads", "2"] if preset == "demo" else []
    assert main(["hipart", "bench", "--preset", preset, "--batch-sizes", "2", "--min-time", "0.01", *jobs,
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["models"]["source"] == f"random weights, preset {preset}"
    assert all(v > 0 for v in result["fps"]["batch_2"].values())
    assert result["flops_per_frame"]["pipeline_cached"] >= result["flops_per_frame"]["lifter"] > 0
    fraction = result["ratios"]["batch_2"]["pipeline_flops_fraction_of_matmul_peak"]
    assert 0 < fraction < 10   # a fraction of the measured peak (tiny batches can't be judged more tightly)
    assert "targets_fps" not in result and "peer" not in result
    # training throughput of every stage at the preset's batch sizes
    training = result["training"]
    assert all(training[k] > 0 for k in ("tokenizer", "prior", "lifter", "lifter_sparse_only"))
    assert training["batch_size"]["prior"] == get_preset("prior", preset).batch_size
    assert training["batch_size"]["lifter"] == get_preset("lifter", preset).batch_size
    # a training step costs more than the forward pass of inference (forward + backward)
    assert training["flops_per_sample"]["lifter"] > 2 * result["flops_per_frame"]["lifter"]
    assert training["flops_per_sample"]["lifter"] > training["flops_per_sample"]["lifter_sparse_only"] > 0
    # the paper's Table 3 beside our sizes, for the paper-size preset only
    if preset == "h36m":
        paper, params = result["paper"], result["models"]["params"]
        assert paper["table_3"]["params_m"] == 2.4 and paper["table_3"]["flops_g"] == 2.24
        assert paper["ours"]["params_m_tokenizer_prior_lifter"] == pytest.approx(
            (params["tokenizer"] + params["prior"] + params["lifter"]) / 1e6)
        assert paper["ours"]["flops_g_pipeline_uncached"] == pytest.approx(
            result["flops_per_frame"]["pipeline_uncached"] / 1e9)
    else:
        assert "paper" not in result
    # the demo's stages side by side (--jobs 2): one process with 2 threads against 2 processes with 1 thread each
    if preset == "demo":
        side = result["side_by_side"]
        assert set(side) == {"prior", "lifter"}
        for stage, row in side.items():
            assert (row["stage"], row["jobs"], row["threads"], row["threads_per_job"]) == (stage, 2, 2, 1)
            assert row["one_process"] > 0 and row["side_by_side"] > 0
            assert row["ratio"] == pytest.approx(row["side_by_side"] / row["one_process"])
    else:
        assert "side_by_side" not in result


def test_bench_side_by_side_refuses_bad_arguments():
    with pytest.raises(ValueError, match="jobs >= 2"):
        side_by_side("demo", jobs=1)
    with pytest.raises(ValueError, match="stage must be"):
        side_by_side("demo", stage="decoder")


def test_bench_peer_compares_interleaved_rounds(fake_diffpose):
    cuda = torch.Tensor.cuda
    result = run_bench(preset="demo", batch_sizes=(1, 3), min_time_s=0.01, peer=fake_diffpose, rounds=3)
    peer = result["peer"]
    assert peer["source"] == str(fake_diffpose)
    for b in ("batch_1", "batch_3"):
        row = peer[b]
        assert len(row["peer_fps"]) == len(row["skeletok_fps"]) == len(row["ratios"]) == 3
        assert row["ratios"] == pytest.approx([s / p for s, p in zip(row["skeletok_fps"], row["peer_fps"])])
        assert row["min_ratio"] <= row["median_ratio"] <= row["max_ratio"]
        assert row["median_ratio"] == pytest.approx(sorted(row["ratios"])[1])
    # DiffPose's shims and its generic top-level package names do not outlive the comparison
    assert torch.Tensor.cuda is cuda
    assert "models" not in sys.modules and "common" not in sys.modules


def test_bench_peer_that_is_no_diffpose_is_a_clear_error(tmp_path, capsys):
    assert main(["hipart", "bench", "--batch-sizes", "1", "--min-time", "0.01", "--peer", str(tmp_path)]) == 2
    assert "GONGJIA0208/Diffpose" in capsys.readouterr().err


def test_bench_bf16_reports_agreement_with_the_fp32_reference():
    result = run_bench(preset="demo", batch_sizes=(2,), min_time_s=0.01, dtype="bf16")
    fps, fast = result["fps"]["batch_2"], result["fast"]
    assert fps["pipeline_reference"] > 0 and fps["pipeline_cached"] > 0
    assert result["ratios"]["batch_2"]["pipeline_over_reference"] > 0
    assert fast["dtype"] == "bf16" and fast["compile"] is False
    agreement = fast["random_input"]
    assert 0 <= agreement["poses_with_all_tokens_equal"] <= agreement["tokens_equal_fraction"] <= 1
    assert agreement["mean_joint_distance_mm"] >= 0
    assert result["flops_per_frame"]["pipeline_cached"] == result["flops_per_frame"]["pipeline_reference"]


def test_bench_default_is_fp32_eager_without_the_fast_section():
    result = run_bench(preset="demo", batch_sizes=(1,), min_time_s=0.01)
    assert "fast" not in result and "pipeline_reference" not in result["fps"]["batch_1"]


def test_bench_rejects_an_unknown_dtype(capsys):
    with pytest.raises(ValueError, match="dtype must be one of"):
        run_bench(preset="demo", batch_sizes=(1,), min_time_s=0.01, dtype="fp16")
    with pytest.raises(SystemExit) as exit_info:  # argparse: not one of the choices
        main(["hipart", "bench", "--dtype", "fp16"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_bench_compile_options_reach_the_pipeline_and_bad_ones_are_clear_errors(monkeypatch, tmp_path, capsys):
    seen = []

    def record(fn, **kwargs):
        seen.append(kwargs.get("options"))
        return fn

    monkeypatch.setattr(torch, "compile", record)
    out = tmp_path / "b.json"
    assert main(["hipart", "bench", "--batch-sizes", "1", "--min-time", "0.01", "--compile",
                 "--compile-options", "cpp_wrapper=false", "--out", str(out)]) == 0
    fast = json.loads(out.read_text())["fast"]
    assert seen == [{"freezing": True, "cpp_wrapper": False}]
    assert fast["compile_options"] == {"freezing": True, "cpp_wrapper": False} and fast["compile_active"]
    assert main(["hipart", "bench", "--compile", "--compile-options", "cpp_wrapper"]) == 2
    assert "compile options must be KEY=VALUE" in capsys.readouterr().err


def test_bench_lazy_times_and_counts_the_lazy_pipeline_with_the_reference_answer():
    result = run_bench(preset="demo", batch_sizes=(4,), min_time_s=0.01, lazy=True)
    flops, fast = result["flops_per_frame"], result["fast"]
    assert fast["lazy"] is True and fast["compile"] is False and fast["dtype"] == "fp32"
    agreement = fast["random_input"]
    # a quarter of the agreement poses are fully seen: no tokens there, the others' tokens and every joint the same
    assert agreement["poses_with_tokens"] < agreement["samples"]
    assert agreement["tokens_equal_fraction"] == agreement["poses_with_all_tokens_equal"] == 1.0
    assert agreement["mean_joint_distance_mm"] < 1e-3
    # the benchmark input is fully seen: the lazy pipeline is the level map and the lifter, no generation
    assert flops["pipeline_cached"] < flops["pipeline_reference"] - flops["prior_generate_cached"]
    assert flops["pipeline_cached"] >= flops["lifter"]
    assert main(["hipart", "bench", "--batch-sizes", "1", "--min-time", "0.01", "--lazy", "--threads", "1"]) == 0
