"""HiPART training recipes: configs and presets, the stage chain, exact resume, checkpoints, CLI errors.

Everything runs on a tiny random-walk dataset (`tests.recipe_runs`) and tiny model widths, so each stage takes
seconds on a CPU. The lifter's training variants are in test_recipes_train_lifter.py.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil

import numpy as np
import pytest
import torch

from recipes.hipart import train_lifter, train_prior, train_tokenizer
from recipes.hipart.checkpoint import atomic_save, capture_rng, load_exported, restore_rng
from recipes.hipart.config import STAGES, apply_overrides, config_from_dict
from recipes.hipart.data import dataset_meta, make_dataset
from recipes.hipart.demo import split_overrides
from recipes.hipart.distributed import DistInfo
from recipes.hipart.loop import build_scheduler, epoch_batches
from recipes.hipart.presets import PRESETS, get_preset
from recipes.hipart.runlog import read_metrics
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer
from tests.recipe_runs import _state, data_file, tiny, trained  # noqa: F401 (fixtures)


# --- configs ----------------------------------------------------------------------------------------------


def test_h36m_presets_are_the_papers_settings():
    tok, prior, lifter = (get_preset(stage, "h36m") for stage in ("tokenizer", "prior", "lifter"))
    assert (tok.optimizer, tok.lr, tok.weight_decay, tok.warmup_steps, tok.schedule) == ("adamw", 1e-3, 0.15, 500,
                                                                                          "cosine")
    assert (tok.beta, tok.lambda_local, tok.lambda_global, tok.tau) == (0.25, 1.0, 0.3, 0.07)
    assert (tok.batch_size, tok.epochs, tok.depth, tok.dim) == (128, 20, 4, 128)
    assert (prior.optimizer, prior.lr, prior.weight_decay, prior.lambda_d, prior.dropout) == ("adamw", 5e-4, 0.03,
                                                                                              1.5, 0.25)
    assert (prior.batch_size, prior.epochs, prior.depth, prior.dim) == (64, 50, 12, 128)
    assert (lifter.optimizer, lifter.lr, lifter.schedule, lifter.gamma, lifter.step_epochs) == ("adam", 1e-3, "step",
                                                                                                0.96, 4)
    assert (lifter.epochs, lifter.batch_size) == (25, 256)


@pytest.mark.parametrize("stage,name", [(s, n) for s in PRESETS for n in PRESETS[s]])
def test_every_preset_builds_its_model(stage, name, data_file):
    cfg = get_preset(stage, name)
    assert config_from_dict(stage, dataclasses.asdict(cfg)) == cfg
    meta = dataset_meta(data_file)
    tok = HierarchicalPoseTokenizer(**train_tokenizer.tokenizer_kwargs(get_preset("tokenizer", name), meta))
    if stage == "tokenizer":
        model = tok
        assert model.num_actions == 2 and model.codebook.sizes == [cfg.codebook_size_sparse, cfg.codebook_size_dense]
    elif stage == "prior":
        model = HierarchicalARPrior(**train_prior.prior_kwargs(cfg, tok))
    else:
        model = HierarchicalLifter(**train_lifter.lifter_kwargs(cfg))
        pred = model([torch.zeros(2, 17, 2), torch.zeros(2, 48, 2), torch.zeros(2, 96, 2)])
        assert pred.shape == (2, 17, 3)
    assert sum(p.numel() for p in model.parameters()) > 1000


def test_overrides_are_typed():
    cfg = get_preset("lifter", "demo", ["lr=3e-4", "epochs=7", "bf16=false", "mode=oracle", "data=x.npz"])
    assert (cfg.lr, cfg.epochs, cfg.bf16, cfg.mode, cfg.data) == (3e-4, 7, False, "oracle", "x.npz")
    assert get_preset("lifter", "demo").mode == "hipart"  # presets are fresh objects


@pytest.mark.parametrize("item,match", [
    ("nope=1", r"unknown override key 'nope'.*valid keys: \['data', 'run_dir'"),
    ("epochs=two", r"epochs='two'.*expected int"),
    ("lr=fast", r"lr='fast'.*expected float"),
    ("bf16=maybe", r"expected a bool"),
    ("mode=dense", r"expected one of \['hipart', 'sparse_only', 'oracle'\]"),
    ("epochs", r"expected key=value"),
    ("epochs=0", r"epochs must be >= 1, got 0"),
    ("lr=-1", r"lr must be > 0"),
    ("gamma=1.5", r"gamma must lie in \(0, 1\]"),
])
def test_bad_overrides_are_rejected(item, match):
    with pytest.raises(ValueError, match=match):
        get_preset("lifter", "demo", [item])


def test_unknown_stage_or_preset_and_demo_routing():
    with pytest.raises(ValueError, match=r"preset for stage 'prior' must be one of \['demo', 'full', 'h36m'\]"):
        get_preset("prior", "huge")
    with pytest.raises(ValueError, match="stage must be one of"):
        get_preset("decoder", "demo")
    routed = split_overrides(["seed=3", "mode=oracle", "lambda_d=2"])
    assert routed == {"tokenizer": ["seed=3"], "prior": ["seed=3", "lambda_d=2"], "lifter": ["seed=3", "mode=oracle"]}
    with pytest.raises(ValueError, match="valid keys"):
        split_overrides(["colour=red"])
    assert set(STAGES) == set(PRESETS)


def test_cli_reports_bad_override_with_exit_code_2(capsys):
    from skeletok.cli import main

    assert main(["hipart", "train-prior", "--preset", "demo", "heads=eight"]) == 2
    assert "heads='eight'" in capsys.readouterr().err


# --- mechanics ------------------------------------------------------------------------------------------------


def test_schedules_follow_the_paper(tmp_path):
    param = torch.nn.Parameter(torch.zeros(1))
    cfg = apply_overrides(get_preset("tokenizer", "h36m"), ["epochs=2"])
    opt = torch.optim.AdamW([param], lr=cfg.lr)
    sched = build_scheduler(cfg, opt, steps_per_epoch=1000)
    lrs = []
    for _ in range(2000):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-3 / 500) and lrs[499] == pytest.approx(1e-3)
    assert lrs[1250] == pytest.approx(0.5e-3, rel=1e-3) and lrs[-1] < 1e-8
    cfg = get_preset("lifter", "h36m")
    opt = torch.optim.Adam([param], lr=cfg.lr)
    sched = build_scheduler(cfg, opt, steps_per_epoch=10)
    for _ in range(80):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.96**2)


def test_ddp_batches_partition_the_single_process_batches():
    cfg = get_preset("lifter", "demo", ["batch_size=8", "seed=5"])
    one = epoch_batches(43, cfg, DistInfo(0, 1, 0, torch.device("cpu")), epoch=3)
    two = [epoch_batches(43, cfg, DistInfo(r, 2, r, torch.device("cpu")), epoch=3) for r in range(2)]
    assert len(one) == len(two[0]) == len(two[1]) == 5
    for step, batch in enumerate(one):
        assert sorted(batch) == sorted(two[0][step] + two[1][step])
    assert one != epoch_batches(43, cfg, DistInfo(0, 1, 0, torch.device("cpu")), epoch=4)


def test_atomic_save_and_rng_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_rng()
    atomic_save({"rng": state}, tmp_path / "rng.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["rng.pt"]  # no temporary file left behind
    expect = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expect[:2] == again[:2] and torch.equal(expect[2], again[2])


# --- stages ------------------------------------------------------------------------------------------------------


def test_tokenizer_and_prior_chain(trained, data_file):
    tok = train_tokenizer.load_tokenizer(trained / "tokenizer.pt")
    prior = train_prior.load_prior(trained / "prior.pt")
    assert torch.equal(prior.codebook_sparse.weight, tok.codebook.codes(0))
    assert torch.equal(prior.codebook_dense.weight, tok.codebook.codes(1))
    for stage, steps in (("tokenizer", 6), ("prior", 4)):
        records = read_metrics(trained / stage / "metrics.jsonl")
        assert [r["step"] for r in records] == list(range(1, steps + 1))
        assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in records)
        saved = json.loads((trained / stage / "config.json").read_text())
        assert saved["stage"] == stage and saved["config"]["max_steps"] == steps and saved["steps_per_epoch"] == 4
    tok_records = read_metrics(trained / "tokenizer" / "metrics.jsonl")
    assert tok_records[0]["lr"] == pytest.approx(0.5 * 2e-3) and "perplexity_dense" in tok_records[0]
    # precomputed targets are the frozen tokenizer's tokens of the clean, centred fine poses
    data = make_dataset(data_file, split="train")
    q_s, q_d = train_prior.encode_dataset(tok, data, batch_size=50)
    assert q_s.shape == (len(data), 16) and q_d.shape == (len(data), 16, 3)
    item = data[7]  # targets are the tokens of the pelvis-centred fine pose
    s7, d7 = tok.encode(item["fine_2d"][None] - item["sparse_2d_clean"][None, :1])
    assert torch.equal(q_s[7], s7[0]) and torch.equal(q_d[7], d7[0])


@pytest.mark.parametrize("stage", ["tokenizer", "lifter"])
def test_resume_is_bit_identical(stage, trained, data_file, tmp_path):
    """Stop mid-epoch 2 (step 6 of 8), resume to the end: same weights as one uninterrupted run.

    The tokenizer carries k-means/EMA codebook state and random masking; the lifter's occluded input is
    redrawn every epoch (dropout on to exercise the RNG)."""
    extra = ("mode=sparse_only", "dropout=0.1") if stage == "lifter" else ()
    run = train_tokenizer.run if stage == "tokenizer" else train_lifter.run
    whole = run(tiny(stage, data_file, tmp_path / "whole", *extra))
    run(tiny(stage, data_file, tmp_path / "split", *extra, "max_steps=6"))
    split = run(tiny(stage, data_file, tmp_path / "split", *extra), resume=True)
    a, b = _state(whole), _state(split)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    name = stage if stage == "tokenizer" else "lifter_sparse_only"
    whole_log = read_metrics(tmp_path / "whole" / name / "metrics.jsonl")
    split_log = read_metrics(tmp_path / "split" / name / "metrics.jsonl")
    assert [r["loss"] for r in whole_log] == [r["loss"] for r in split_log] and len(whole_log) == 8


def test_resume_refuses_a_changed_config_or_a_missing_checkpoint(data_file, tmp_path):
    # the lifter's own checkpoint (no warm start: its check is test_recipes_train_lifter's)
    train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=sparse_only", "max_steps=1", "warm_epochs=0"))
    with pytest.raises(ValueError, match=r"cannot resume.*lr: 0.002 -> 0.005"):
        train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=sparse_only", "lr=5e-3", "warm_epochs=0"),
                         resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=oracle", "warm_epochs=0"), resume=True)


def test_exported_files_reject_the_wrong_class(trained):
    with pytest.raises(ValueError, match="holds a HierarchicalPoseTokenizer, expected a HierarchicalLifter"):
        load_exported(trained / "tokenizer.pt", HierarchicalLifter)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        train_prior.load_prior(trained / "missing.pt")


# the demo's overrides that shrink every stage to seconds (with the data file: ``data=...``)
DEMO_TINY = ["batch_size=32", "max_steps=2", "dim=16", "depth=1", "heads=2", "code_dim=8", "codebook_size_sparse=16",
             "codebook_size_dense=16", "device=cpu", "densifier_steps=5"]


def test_demo_command_trains_every_stage(data_file, tmp_path, capsys):
    from skeletok.cli import main

    out = tmp_path / "demo"
    args = ["hipart", "demo", "--out", str(out), f"data={data_file}", *DEMO_TINY, "progress=false"]
    assert main(args) == 0
    for name in ("tokenizer", "prior", "lifter_hipart", "lifter_sparse_only", "lifter_oracle"):
        assert (out / f"{name}.pt").is_file() and len(read_metrics(out / name / "metrics.jsonl")) == 1
    timings = json.loads((out / "timings.json").read_text())
    assert {"data", "tokenizer", "prior", "prior_fold0", "prior_fold1", "lifter_sparse_only_warm", "lifter_hipart",
            "lifter_sparse_only", "lifter_oracle", "total"} <= set(timings)
    for mode in ("hipart", "sparse_only", "oracle"):  # every lifter started from the shared sparse-only lifter
        payload = torch.load(out / f"lifter_{mode}.pt", map_location="cpu", weights_only=True)
        assert payload["extra"]["warm_start"] == str(out / "lifter_sparse_only_warm.pt")
    assert json.loads((out / "machine.json").read_text())["matmul_gflops_fp32"] > 0
    priors = ("prior", "prior_fold0", "prior_fold1", "lifter_sparse_only_warm")  # a wave's stages may overlap
    lifters = ("lifter_hipart", "lifter_sparse_only", "lifter_oracle")
    assert timings["wave_priors"] >= max(timings[k] for k in priors)
    assert timings["wave_lifters"] >= max(timings[k] for k in lifters)
    assert timings["total"] >= timings["tokenizer"] + timings["wave_priors"] + timings["wave_lifters"]
    captured = capsys.readouterr()
    assert "[demo] lifter_oracle:" in captured.out
    assert "tokenizer:" not in captured.err  # progress=false reaches the stages: no progress bars, prints stay


def test_demo_jobs_train_the_same_files_as_one_process(data_file, tmp_path):
    """Stages side by side in 2 worker processes give, bitwise, what one process gives at the same thread count
    (``threads=1``: each worker gets max(1, 1 // 2) = 1 thread)."""
    from recipes.hipart.demo import run_demo

    tiny = [f"data={data_file}", *DEMO_TINY]
    run_demo(tmp_path / "one", overrides=[*tiny, "threads=1"], progress=False, evaluate=False, jobs=1)
    run_demo(tmp_path / "two", overrides=[*tiny, "threads=1"], progress=False, evaluate=False, jobs=2)
    names = sorted(p.name for p in (tmp_path / "one").glob("*.pt"))
    assert names == sorted(p.name for p in (tmp_path / "two").glob("*.pt")) and len(names) == 8
    for name in names:
        one, two = _state(tmp_path / "one" / name), _state(tmp_path / "two" / name)
        assert one.keys() == two.keys()
        assert all(torch.equal(one[k], two[k]) for k in one), name
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_demo(tmp_path / "bad", overrides=tiny, progress=False, evaluate=False, jobs=0)


def test_demo_resume_keeps_finished_stages_and_continues_the_rest(data_file, tmp_path):
    """``demo --resume`` after a kill: stages exported before are kept (not retrained), a stage killed while
    exporting is exported from its checkpoint, a stage never started trains; the files equal an uninterrupted
    run's, bitwise. Other settings are refused with the fields named."""
    from recipes.hipart.demo import resume_plan, run_demo

    tiny = [f"data={data_file}", *DEMO_TINY, "threads=1"]
    run_demo(tmp_path / "one", overrides=tiny, progress=False, evaluate=False, jobs=1)
    two = tmp_path / "two"
    shutil.copytree(tmp_path / "one", two)
    (two / "prior.pt").unlink()  # killed while exporting: its checkpoint holds the last step
    (two / "lifter_hipart.pt").unlink()
    (two / "lifter_oracle.pt").unlink()
    shutil.rmtree(two / "lifter_oracle")  # never started
    kept = (two / "tokenizer.pt").stat().st_mtime_ns
    cfg = get_preset("prior", "demo", [f"run_dir={two}", *split_overrides(tiny)["prior"]])
    fold0 = dataclasses.replace(cfg, folds=2, fold=0)
    assert resume_plan(cfg, "prior") == "resume" and resume_plan(fold0, "prior_fold0") == "keep"
    timings = run_demo(two, overrides=tiny, progress=False, evaluate=False, jobs=1, resume=True)
    assert timings["tokenizer"] == 0.0 and timings["prior_fold1"] == 0.0 and timings["lifter_sparse_only"] == 0.0
    assert (two / "tokenizer.pt").stat().st_mtime_ns == kept
    names = sorted(p.name for p in (tmp_path / "one").glob("*.pt"))
    assert names == sorted(p.name for p in two.glob("*.pt")) and len(names) == 8
    for name in names:
        one, again = _state(tmp_path / "one" / name), _state(two / name)
        assert all(torch.equal(one[k], again[k]) for k in one), name
    with pytest.raises(ValueError, match="cannot resume: the config differs .* lr"):
        run_demo(two, overrides=[*tiny, "lr=0.5"], progress=False, evaluate=False, jobs=1, resume=True)
