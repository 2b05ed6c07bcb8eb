"""HiPART recipes under DDP: two CPU processes (``torchrun``, gloo) against one process, same global batch.

Equivalence is tested on the prior and the lifter (dropout 0; the occlusion draws are a function of
(seed, epoch, index), so they do not depend on the rank): both see the same global batches and DDP averages
the gradients of per-rank means, so the weights agree up to float reduction order. The tokenizer is only run
under DDP, not compared: its local-alignment InfoNCE takes negatives from the local batch and its k-means
initialisation sees each rank's samples, so a 2-rank run is a different (valid) optimisation problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recipes.hipart import train_lifter, train_prior, train_tokenizer
from recipes.hipart.runlog import read_metrics

from tests.recipe_runs import tiny, write_random_walk

pytestmark = pytest.mark.slow




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = write_random_walk(root / "walk.npz")
    train_tokenizer.run(tiny("tokenizer", data, root / "single", "max_steps=4"))
    return root, data


def torchrun(module: str, overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", module,
           "--preset", "demo", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _overrides(cfg) -> list[str]:
    return [f"{k}={v}" for k, v in vars(cfg).items()]


def _compare(single: Path, ddp: Path, stage_dir: str) -> None:
    a = torch.load(single, weights_only=True)["state_dict"]
    b = torch.load(ddp, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    assert worst < 1e-4, worst
    logs = [read_metrics(path.parent / stage_dir / "metrics.jsonl") for path in (single, ddp)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]]
    for r0, r1 in zip(*logs):  # the logged loss is the all-reduced mean over ranks = the global-batch loss
        assert r1["loss"] == pytest.approx(r0["loss"], rel=1e-4, abs=1e-6)
    info = json.loads((ddp.parent / stage_dir / "config.json").read_text())
    assert info["world_size"] == 2 and info["steps_per_epoch"] == 4


def test_prior_ddp_matches_single_process(setup):
    root, data = setup
    tok = root / "single" / "tokenizer.pt"
    single = train_prior.run(tiny("prior", data, root / "single", f"tokenizer={tok}", "max_steps=6"))
    cfg = tiny("prior", data, root / "ddp", f"tokenizer={tok}", "max_steps=6", "threads=1")
    torchrun("recipes.hipart.train_prior", _overrides(cfg))
    _compare(single, root / "ddp" / "prior.pt", "prior")


def test_lifter_ddp_matches_single_process(setup):
    root, data = setup
    single = train_lifter.run(tiny("lifter", data, root / "single", "mode=oracle"))
    cfg = tiny("lifter", data, root / "ddp", "mode=oracle", "threads=1")
    torchrun("recipes.hipart.train_lifter", _overrides(cfg))
    _compare(single, root / "ddp" / "lifter_oracle.pt", "lifter_oracle")


def test_tokenizer_trains_under_ddp_with_synchronised_codebooks(setup):
    root, data = setup
    cfg = tiny("tokenizer", data, root / "ddp_tok", "max_steps=4", "threads=1")
    torchrun("recipes.hipart.train_tokenizer", _overrides(cfg))
    tok = train_tokenizer.load_tokenizer(root / "ddp_tok" / "tokenizer.pt")
    records = read_metrics(root / "ddp_tok" / "tokenizer" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in records)
    codes = tok.codebook.codes(0)
    assert torch.isfinite(codes).all() and codes.std() > 0
