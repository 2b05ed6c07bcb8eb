"""Tiny HiPART runs for the recipe tests: a random-walk dataset in the docs/concepts.md file format and the demo
presets shrunk to seconds (import the fixtures ``data_file`` and ``trained`` into a test module to use them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.hipart import train_prior, train_tokenizer
from recipes.hipart.presets import get_preset
from skeletok.data.sets.fileformat import save_dataset

TINY = {
    "tokenizer": ["dim=16", "depth=1", "code_dim=8", "codebook_size_sparse=16", "codebook_size_dense=16"],
    "prior": ["dim=16", "depth=1", "heads=2", "dropout=0.0", "densifier_steps=20"],
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


def script_module(name: str):
    """The module of ``scripts/<name>.py`` (a folder of scripts, not a package), imported from its file."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
