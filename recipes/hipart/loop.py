"""The training loop shared by the three HiPART stages: data order, optimiser, schedule, resume, DDP.

A stage hands `train` its config, a model, a map-style training set of dict items and a ``step`` function
``step(model, batch) -> (loss, metrics)``; `train` does the rest:

- data order: every epoch is a `DistributedSampler` permutation (seeded by ``cfg.seed``, ``set_epoch(e)``)
  cut into per-rank batches of ``batch_size // world_size``. A single process uses the same sampler with
  one replica, so a step sees the same global batch in one process as across ranks;
- the dataset's own epoch (``set_epoch``) drives its occlusion draws; the DataLoader gets its own seeded
  generator, so making a loader never consumes the global torch RNG;
- resume: the checkpoint stores model, optimiser, scheduler, step, epoch and RNG states; the loop skips the
  batches of the current epoch already seen, so a resumed run is bit-identical to an uninterrupted one;
- DDP: the model is wrapped in `DistributedDataParallel`; every rank runs the same RNG stream (dropout
  masks repeat across ranks on different samples), which keeps rank 0's saved RNG state valid for all;
  metrics are averaged by one explicit all-reduce at log steps; rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .checkpoint import export_model, load_checkpoint, save_checkpoint
from .config import RunConfig, save_config
from .distributed import DistInfo, all_reduce_mean, barrier
from .runlog import MetricsLog

__all__ = ["export_stage", "configure_threads", "seed_all", "build_optimizer", "build_scheduler", "epoch_batches", "train",
           "stage_dir", "autocast", "config_diff", "check_resumable"]

StepFn = Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]]

# Fields that may differ between a run and its resumption (they do not change the trained weights).
RESUMABLE = {"max_steps", "progress", "num_workers", "log_every", "ckpt_every", "device", "data", "run_dir",
             "threads"}


def configure_threads(cfg: RunConfig) -> None:
    """Apply ``cfg.threads`` (torch intra-op CPU threads; 0 leaves torch's default)."""
    if cfg.threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = torch's default), got {cfg.threads}")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stage_dir(cfg: RunConfig, name: str) -> Path:
    """``run_dir/<name>/``: the stage's config.json, metrics.jsonl and resume checkpoint."""
    return Path(cfg.run_dir) / name


def autocast(cfg: RunConfig, device: torch.device):
    """bf16 autocast on CUDA when ``cfg.bf16``; a disabled context on CPU."""
    enabled = bool(cfg.bf16) and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def build_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    """AdamW (decoupled decay) or Adam (L2 decay) over the trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclasses.dataclass
class _LRFactor:
    """Picklable learning-rate multiplier of step ``s`` (a plain object so LambdaLR can save it)."""

    schedule: str
    warmup: int
    total: int
    steps_per_epoch: int
    step_epochs: int
    gamma: float

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "cosine":
            span = max(1, self.total - self.warmup)
            progress = min(1.0, (step - self.warmup) / span)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.schedule == "step":
            return self.gamma ** (step // (self.steps_per_epoch * self.step_epochs))
        return 1.0


def build_scheduler(cfg: RunConfig, optimizer, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up over ``warmup_steps``, then cosine / constant / step decay.

    The horizon is always ``epochs * steps_per_epoch`` (``max_steps`` only stops early).
    """
    factor = _LRFactor(cfg.schedule, cfg.warmup_steps, cfg.epochs * steps_per_epoch, steps_per_epoch,
                       cfg.step_epochs, cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epoch_batches(n: int, cfg: RunConfig, info: DistInfo, epoch: int) -> list[list[int]]:
    """This rank's batches of dataset indices for ``epoch`` (incomplete last batch dropped).

    Raises:
        ValueError: when ``batch_size`` is not a multiple of the world size or the dataset is smaller than
            one global batch.
    """
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size must be a multiple of the world size {info.world_size}, got {cfg.batch_size}")
    local = cfg.batch_size // info.world_size
    if n < cfg.batch_size:
        raise ValueError(f"the training set has {n} samples, fewer than one batch (batch_size={cfg.batch_size})")
    sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i:i + local] for i in range(0, len(order) - local + 1, local)]


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def config_diff(saved: dict, cfg: RunConfig, ignore: frozenset[str] = frozenset()) -> str:
    """``"field: saved -> now, ..."`` for the fields where ``cfg`` differs from a run's ``saved`` config (a
    checkpoint's or a config.json's ``config``) in something that changes training (every field but `RESUMABLE`
    and ``ignore``); empty when none."""
    now = dataclasses.asdict(cfg)
    diff = sorted(k for k in now if k not in RESUMABLE | ignore and saved.get(k) != now[k])
    return ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)


def check_resumable(saved: dict, cfg: RunConfig) -> None:
    """Raise ``ValueError`` naming the fields where ``cfg`` differs from a run's ``saved`` config in something that
    changes training (`config_diff`)."""
    pairs = config_diff(saved, cfg)
    if pairs:
        raise ValueError(f"cannot resume: the config differs from the checkpoint's in {pairs}")


def train(cfg: RunConfig, *, name: str, model: torch.nn.Module, train_set: Dataset, step: StepFn,
          info: DistInfo, resume: bool = False, extra_config: dict | None = None,
          find_unused_parameters: bool = False) -> torch.nn.Module:
    """Train ``model`` on ``train_set`` and return it (unwrapped, on ``info.device``, in eval mode).

    Args:
        cfg: the resolved stage config.
        name: the stage name; files go to ``run_dir/<name>/`` (config.json, metrics.jsonl, checkpoint.pt).
        model: the module to train (seeded construction is the caller's job).
        train_set: map-style dataset of dict items; its ``set_epoch(e)`` is called each epoch if it has one.
        step: ``step(model, batch) -> (loss, metrics)``; ``model`` may be the DDP wrapper; ``metrics`` maps
            names to scalar tensors or floats.
        info: the process's `DistInfo`.
        resume: continue from ``run_dir/<name>/checkpoint.pt``.
        extra_config: plain values written into config.json beside the config (e.g. data sizes).
        find_unused_parameters: DDP only: let parameters that get no gradient in a step pass (the tokenizer's
            dense encoder has a missing-point embedding it never uses, for example).

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint.
        ValueError: a resumed config that differs in a field that changes training.
    """
    folder = stage_dir(cfg, name)
    ckpt_path = folder / "checkpoint.pt"
    model = model.to(info.device)
    optimizer = build_optimizer(cfg, model.parameters())
    n = len(train_set)
    spe = len(epoch_batches(n, cfg, info, 0))
    scheduler = build_scheduler(cfg, optimizer, spe)
    done = 0
    if resume:
        payload = load_checkpoint(ckpt_path, model=model, optimizer=optimizer, scheduler=scheduler)
        check_resumable(payload["config"], cfg)
        done = payload["step"]
    total = cfg.epochs * spe
    stop = min(total, cfg.max_steps) if cfg.max_steps > 0 else total
    if info.is_main:
        save_config(cfg, folder / "config.json", name=name, steps_per_epoch=spe, train_samples=n,
                    world_size=info.world_size, **(extra_config or {}))
    log = MetricsLog(folder / "metrics.jsonl", enabled=info.is_main, resume_step=done if resume else None)
    net = model
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        # No per-forward buffer broadcast (a hidden collective): buffers that must agree across ranks (the
        # tokenizer's codebook statistics) are all-reduced explicitly by their module (sync_codebook).
        new_api = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        no_sync = {"forward_sync_buffers": False} if new_api else {"broadcast_buffers": False}
        net = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters, **no_sync)
    config_dict = dataclasses.asdict(cfg)

    def checkpoint(at: int) -> None:
        if info.is_main:
            save_checkpoint(ckpt_path, model=model, optimizer=optimizer, scheduler=scheduler, step=at,
                            epoch=at // spe, config=config_dict, extra={"name": name})

    bar = tqdm(total=stop, initial=done, desc=name, disable=not (info.is_main and cfg.progress), dynamic_ncols=True)
    tic, seen = time.perf_counter(), 0
    while done < stop:
        epoch = done // spe
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        batches = epoch_batches(n, cfg, info, epoch)[done % spe:]
        loader = DataLoader(train_set, batch_sampler=batches, num_workers=cfg.num_workers,
                            generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch),
                            pin_memory=info.device.type == "cuda")
        net.train()
        for batch in loader:
            batch = _to(batch, info.device)
            with autocast(cfg, info.device):
                loss, metrics = step(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            done += 1
            seen += cfg.batch_size
            bar.update(1)
            if done % cfg.log_every == 0 or done == stop:
                values = {"loss": float(loss.detach())}
                values.update({k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                               for k, v in metrics.items()})
                values = all_reduce_mean(info, values)
                elapsed = time.perf_counter() - tic
                log.log({"step": done, "epoch": epoch, "lr": lr,
                         "samples_per_s": seen / max(elapsed, 1e-9), **values})
                bar.set_postfix(loss=f"{values['loss']:.4f}")
                tic, seen = time.perf_counter(), 0
            if done % cfg.ckpt_every == 0 or done % spe == 0 or done == stop:
                checkpoint(done)
            if done >= stop:
                break
    bar.close()
    barrier(info)
    return model.eval()


def export_stage(cfg: RunConfig, name: str, model: torch.nn.Module, *, kwargs: dict, extra: dict,
                 info: DistInfo) -> Path:
    """Write the trained stage to ``run_dir/<name>.pt`` (`export_model`, on rank 0), wait for every rank, and
    return the path."""
    out = Path(cfg.run_dir) / f"{name}.pt"
    if info.is_main:
        export_model(out, model, kind=type(model).__name__, kwargs=kwargs, config=dataclasses.asdict(cfg),
                     extra=extra)
    barrier(info)
    return out
