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
import pickle
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
    "retrain_hint",
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
        ValueError: when the file is unreadable (truncated, random bytes), not a recipe checkpoint (names the
            missing field) or does not fit ``model``/``optimizer``/``scheduler``; the message says what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path}")
    fix = (f"it cannot be resumed from: move it away and run the stage again without --resume (it starts "
           f"from step 0)")
    payload = _read(path, "resume checkpoint", fix)
    for key in ("model", "optimizer", "scheduler", "step", "epoch", "config", "rng"):
        if not isinstance(payload, dict) or key not in payload:
            raise ValueError(f"checkpoint {path} has no field {key!r}; expected a file written by save_checkpoint; "
                             f"{fix}")
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        restore_rng(payload["rng"])
    except Exception as err:  # noqa: BLE001 - any mismatch is the same answer for the user
        raise ValueError(f"checkpoint {path} does not fit this run's model ({_why(err)}); {fix}") from err
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
        ValueError: when the file is unreadable (truncated, half-written, random bytes), is a torch file that is
            not an exported model (e.g. a bare state dict or a pickled module), holds another kind of module, or
            does not rebuild into ``cls``. The message names the file and what to do (`retrain_hint`); no raw
            torch traceback reaches the user.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    fix = retrain_hint(path, cls.__name__)
    payload = _read(path, "model file", fix, map_location=map_location)
    fields = {"kind": str, "kwargs": dict, "state_dict": dict, "extra": dict}
    if not isinstance(payload, dict) or any(not isinstance(payload.get(k), t) for k, t in fields.items()):
        have = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a model file written by export_model (expected the fields "
                         f"{list(fields)}, found {have}); {fix}")
    if payload["kind"] != cls.__name__:
        raise ValueError(f"{path} holds a {payload['kind']}, expected a {cls.__name__}")
    missing = [k for k in _REQUIRED_EXTRA.get(cls.__name__, ()) if k not in payload["extra"]]
    if missing:
        raise ValueError(f"{path} has no {missing} in its 'extra' field; {fix}")
    try:
        model = cls(**payload["kwargs"])
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # noqa: BLE001 - any mismatch is the same answer for the user
        raise ValueError(f"{path} does not rebuild into a {cls.__name__} ({_why(err)}); {fix}") from err
    return model.eval(), payload


# The command that writes each kind of exported file, and what its 'extra' field must hold.
_COMMANDS = {"HierarchicalPoseTokenizer": "train-tokenizer", "HierarchicalARPrior": "train-prior",
             "HierarchicalLifter": "train-lifter"}
_REQUIRED_EXTRA = {"HierarchicalLifter": ("mode",)}


def retrain_hint(path: str | Path, kind: str) -> str:
    """What to do about a bad exported file ``run_dir/<name>.pt`` of class ``kind``: the command that writes it
    again, and ``--resume`` when the stage's resume checkpoint ``run_dir/<name>/checkpoint.pt`` exists."""
    path = Path(path)
    by_name = {"tokenizer": "train-tokenizer", "prior": "train-prior"}
    if path.stem.startswith("lifter_"):
        command = f"train-lifter mode={path.stem[len('lifter_'):]}"
    else:
        command = by_name.get(path.stem, _COMMANDS.get(kind))
    if command is None:
        return "write it again with the `skeletok hipart train-...` stage that made it"
    text = (f"retrain that stage with `skeletok hipart {command} run_dir={path.parent}` (with the preset and "
            f"overrides it was trained with)")
    checkpoint = path.parent / path.stem / "checkpoint.pt"
    if checkpoint.is_file():
        text += (f", or write it again from its resume checkpoint {checkpoint} by adding `--resume` to that "
                 f"command (a finished run is exported again without training)")
    return text


def _why(err: BaseException) -> str:
    """A short reason naming an exception: its type and the first sentence of its message (no traceback)."""
    if isinstance(err, pickle.UnpicklingError):  # torch's text here suggests weights_only=False: not for us
        return f"{type(err).__name__}: not a weights-only torch file of tensors and plain values"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text.split(". ")[0]
    return f"{type(err).__name__}: {text[:120]}" if text else type(err).__name__


def _read(path: Path, what: str, fix: str, *, map_location="cpu"):
    """`torch.load` (weights only) that turns any failure into a ``ValueError`` naming ``path`` and ``fix``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, ... here
        raise ValueError(f"cannot read the {what} {path} ({_why(err)}): the file is truncated, corrupted or not "
                         f"written by skeletok's HiPART recipes; {fix}") from err
