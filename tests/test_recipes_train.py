"""HiPART training recipes: configs and presets, the stage chain, exact resume, checkpoints, CLI errors.

Everything runs on a tiny random-walk dataset in the docs/concepts.md file format (written with
`skeletok.data.sets.fileformat.save_dataset`) and tiny model widths, so each stage takes seconds on a CPU.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.hipart import train_lifter, train_prior, train_tokenizer
from recipes.hipart.checkpoint import atomic_save, capture_rng, load_exported, restore_rng
from recipes.hipart.config import STAGES, apply_overrides, config_from_dict
from recipes.hipart.presets import PRESETS, get_preset
from recipes.hipart.data import dataset_meta, make_dataset
from recipes.hipart.demo import split_overrides
from recipes.hipart.loop import build_scheduler, epoch_batches
from recipes.hipart.distributed import DistInfo
from recipes.hipart.inference import HiPART
from recipes.hipart.runlog import read_metrics
from skeletok.data.sets.fileformat import save_dataset
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer
from skeletok.skeleton import H36M_17

TINY = {
    "tokenizer": ["dim=16", "depth=1", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16"],
    "prior": ["dim=16", "depth=1", "heads=2", "dropout=0.0"],
    "lifter": ["dim=16", "depth=1", "heads=2"],
}


def write_random_walk(path: Path, *, sequences: int = 4, frames: int = 24, cameras: int = 2, seed: int = 0) -> Path:
    """A small dataset file: 17 joints random-walking in front of ``cameras`` pinhole cameras, dense and fine
    points as fixed offsets from the joints (parts assigned round robin), the last sequence as test split."""
    rng = np.random.default_rng(seed)
    n = sequences * frames
    base = rng.normal(0.0, 0.3, (17, 3)) + np.array([0.0, 0.0, 1.0])
    world_sparse = (base + rng.normal(0.0, 0.01, (sequences, frames, 17, 3)).cumsum(1)).reshape(n, 17, 3)
    parts_fine, parts_dense = np.arange(96) % 16, np.arange(48) % 16
    world_fine = world_sparse[:, parts_fine + 1] + rng.normal(0.0, 0.05, (96, 3))
    world_dense = 0.5 * (world_fine[:, 0::2] + world_fine[:, 1::2])
    angles = np.linspace(0.0, 2 * np.pi, cameras, endpoint=False)
    rot = np.stack([[[-np.sin(a), np.cos(a), 0.0], [0.0, 0.0, -1.0], [-np.cos(a), -np.sin(a), 0.0]] for a in angles])
    trans = np.tile([0.0, 1.0, 5.0], (cameras, 1))
    focal, centre, size = (np.full((cameras, 2), v) for v in (1000.0, 500.0, 1000.0))

    def project(points):
        cam = np.einsum("cij,nkj->ncki", rot, points) + trans[None, :, None]
        return cam, focal[None, :, None] * cam[..., :2] / cam[..., 2:] + centre[None, :, None]

    cam_sparse, pix_sparse = project(world_sparse)
    sequence = np.repeat(np.arange(sequences), frames)
    arrays = dict(world_sparse=world_sparse, world_dense=world_dense, world_fine=world_fine, cam_R=rot, cam_t=trans,
                  cam_f=focal, cam_c=centre, cam_size=size, pix_sparse=pix_sparse, pix_dense=project(world_dense)[1],
                  pix_fine=project(world_fine)[1], cam_sparse=cam_sparse - cam_sparse[:, :, :1],
                  parts_dense=parts_dense, parts_fine=parts_fine, fine_to_dense=np.arange(96) // 2,
                  action=sequence % 2, action_names=np.array(["walk", "wave"]), sequence=sequence,
                  sequence_names=np.array([f"seq{i}" for i in range(sequences)]),
                  split=(sequence == sequences - 1).astype(np.int8), fps=np.array(30.0))
    return save_dataset(arrays, path)




@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return write_random_walk(tmp_path_factory.mktemp("data") / "walk.npz")


def tiny(stage: str, data: Path, run_dir: Path, *extra: str):
    """The demo preset of ``stage`` shrunk to seconds: 144 training samples, batch 32 (4 steps per epoch)."""
    common = [f"data={data}", f"run_dir={run_dir}", "batch_size=32", "epochs=2", "warmup_steps=2", "log_every=1",
              "ckpt_every=100", "progress=false", "device=cpu"]
    return get_preset(stage, "demo", [*common, *TINY[stage], *extra])


@pytest.fixture(scope="module")
def trained(data_file, tmp_path_factory) -> Path:
    """A run directory with a tiny tokenizer and prior (stage 1 and 2 chained)."""
    run_dir = tmp_path_factory.mktemp("run")
    train_tokenizer.run(tiny("tokenizer", data_file, run_dir, "max_steps=6"))
    train_prior.run(tiny("prior", data_file, run_dir, "max_steps=4"))
    for k in range(2):  # the out-of-fold priors of the demo lifter's oof_folds=2
        train_prior.run(tiny("prior", data_file, run_dir, "max_steps=2", "folds=2", f"fold={k}"))
    return run_dir


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


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
                         dense_regressor=prior.dense_regressor, fine_regressor=prior.fine_regressor, detail=0.25)
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
                          "warm_epochs=0"))
    model = HiPART.load(tmp_path, device="cpu")
    assert model.gate is not None
    batch = next(iter(torch.utils.data.DataLoader(make_dataset(data_file, split="train"), batch_size=4)))
    x_s, vis = batch["sparse_2d"], batch["sparse_visible"].clone()
    vis[:, H36M_17.index("right_wrist")] = False
    dense, fine, _, _, joints = model.densify_and_lift(x_s, vis)
    shown = train_lifter.gated_visibility(vis, model.gate)
    assert not shown[2].all() and shown[2].any()
    torch.testing.assert_close(joints, root_relative(model.lifter([x_s, dense, fine], shown)))
    # the lifter never reads a hidden part's points: moving them changes nothing
    moved = torch.where(shown[2][..., None], fine, fine + 0.3)
    torch.testing.assert_close(root_relative(model.lifter([x_s, dense, moved], shown)), joints)


def test_script_adds_the_level_regressors_train_prior_would_have_exported(trained, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("alr", Path(__file__).parents[1] / "scripts" / "add_level_regressors.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
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
    train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=sparse_only", "max_steps=1"))
    with pytest.raises(ValueError, match=r"cannot resume.*lr: 0.002 -> 0.005"):
        train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=sparse_only", "lr=5e-3"), resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train_lifter.run(tiny("lifter", data_file, tmp_path, "mode=oracle"), resume=True)


def test_exported_files_reject_the_wrong_class(trained):
    with pytest.raises(ValueError, match="holds a HierarchicalPoseTokenizer, expected a HierarchicalLifter"):
        load_exported(trained / "tokenizer.pt", HierarchicalLifter)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        train_prior.load_prior(trained / "missing.pt")


def test_demo_command_trains_every_stage(data_file, tmp_path, capsys):
    from skeletok.cli import main

    out = tmp_path / "demo"
    args = ["hipart", "demo", "--out", str(out), f"data={data_file}", "batch_size=32", "max_steps=2", "dim=16",
            "depth=1", "heads=2", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16", "device=cpu"]
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
    assert timings["total"] >= sum(v for k, v in timings.items() if k != "total")
    assert "[demo] lifter_oracle:" in capsys.readouterr().out


def test_level_dropout_hides_generated_levels_of_a_fraction_of_samples():
    torch.manual_seed(0)
    levels = [torch.zeros(4000, 17, 2), torch.zeros(4000, 48, 2), torch.zeros(4000, 96, 2)]
    vis = [torch.ones(4000, 17, dtype=torch.bool), None, None]
    assert train_lifter._drop_levels(levels, vis, 0.5, training=False) is vis
    assert train_lifter._drop_levels(levels, vis, 0.0, training=True) is vis
    out = train_lifter._drop_levels(levels, vis, 0.5, training=True)
    assert out[0] is vis[0]
    dense_kept, fine_kept = out[1].all(1), out[2].all(1)
    assert torch.equal(dense_kept, fine_kept) and torch.equal(out[1].any(1), dense_kept)  # whole levels per sample
    assert 0.45 < dense_kept.float().mean() < 0.55


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
