"""Atomic checkpoints, RNG state capture, and exported model files for the HiPART recipes.

Everything written here loads with ``torch.load(weights_only=True)``: tensors, plain dicts, lists, strings and
numbers only. RNG states are stored as tensors/lists (torch, numpy, python, CUDA), configs as plain dicts.

Two kinds of files:

- the resume checkpoint ``run_dir/<name>/checkpoint.pt``: model, optimiser, scheduler, step, epoch, config and
  RNG states (`save_checkpoint` / `load_checkpoint`);
- the exported model ``run_dir/<name>.pt``: the constructor keyword arguments, the state dict and the config,
  enough to rebuild the module without the recipe (`export_model` / `load_exported`).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "atomic_save",
    "capture_rng",
    "restore_rng",
    "save_checkpoint",
    "load_checkpoint",
    "export_model",
    "load_exported",
]


def atomic_save(obj: dict, path: str | Path) -> Path:
    """`torch.save` to a temporary file in the same directory, fsync it, then `os.replace` onto ``path``.

    A run killed at any moment leaves either the previous file or the new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def capture_rng() -> dict:
    """Snapshot of the torch, CUDA, numpy and python RNG states as tensors and plain lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Restore the RNG states captured by `capture_rng`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer, scheduler, step: int, epoch: int,
                    config: dict, extra: dict | None = None) -> Path:
    """Atomically write a resume checkpoint.

    Args:
        path: destination file.
        model: the (unwrapped) module.
        optimizer: its ``state_dict`` is stored.
        scheduler: its ``state_dict`` is stored.
        step: optimiser steps done so far.
        epoch: the epoch the next step belongs to (the sampler/dataset epoch).
        config: the resolved config as a plain dict.
        extra: further plain values (e.g. the data-order seed).
    """
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": int(step),
        "epoch": int(epoch),
        "config": dict(config),
        "rng": capture_rng(),
        "extra": dict(extra or {}),
    }
    return atomic_save(payload, path)


def load_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer, scheduler) -> dict:
    """Load a resume checkpoint into ``model``, ``optimizer`` and ``scheduler`` and restore the RNG states.

    Returns:
        The checkpoint dict (``step``, ``epoch``, ``config``, ``extra``).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a recipe checkpoint (names the missing field).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "step", "epoch", "config", "rng"):
        if key not in payload:
            raise ValueError(f"checkpoint {path} has no field {key!r}; expected a file written by save_checkpoint")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    restore_rng(payload["rng"])
    return payload


def export_model(path: str | Path, model: torch.nn.Module, *, kind: str, kwargs: dict, config: dict,
                 extra: dict | None = None) -> Path:
    """Atomically write the final model file ``{kind, kwargs, state_dict, config, extra}``.

    Args:
        path: destination, e.g. ``run_dir/tokenizer.pt``.
        model: the trained module (unwrapped).
        kind: the module's class name, checked again on load.
        kwargs: the constructor keyword arguments (plain values) that rebuild the module.
        config: the resolved training config as a plain dict.
        extra: further plain values (e.g. the lifter's mode and input levels).
    """
    payload = {"kind": kind, "kwargs": dict(kwargs), "state_dict": model.state_dict(), "config": dict(config),
               "extra": dict(extra or {})}
    return atomic_save(payload, path)


def load_exported(path: str | Path, cls: type[torch.nn.Module], *, map_location="cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a module written by `export_model`.

    Args:
        path: the exported file.
        cls: the module class (its name must match the stored ``kind``).
        map_location: passed to `torch.load`.

    Returns:
        ``(module in eval mode, payload dict)``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file holds another kind of module or is not an exported model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "kind" not in payload or "state_dict" not in payload:
        raise ValueError(f"{path} is not a model file written by export_model (no 'kind'/'state_dict' field)")
    if payload["kind"] != cls.__name__:
        raise ValueError(f"{path} holds a {payload['kind']}, expected a {cls.__name__}")
    model = cls(**payload["kwargs"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload
