"""Single-process and `torchrun` (DDP) setup for the HiPART recipes.

`init_distributed` reads the environment that `torchrun` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and starts a process group (``nccl`` on CUDA, ``gloo`` on CPU). Without
those variables it is a single process and nothing collective happens. Every collective used by the recipes
is a call in this file, made explicitly by the caller (no hidden collectives).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "pick_device", "barrier", "all_reduce_mean", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` on ``device``; ``is_main`` logs and saves."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` if CUDA is available, else ``cpu``; ``cpu``/``cuda`` as asked.

    Raises:
        ValueError: for another value, or ``cuda`` on a machine without CUDA.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of ['auto', 'cpu', 'cuda'], got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available; use device=auto or cpu")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto") -> DistInfo:
    """Initialise from the ``torchrun`` environment (or a single process when ``WORLD_SIZE`` is unset/1).

    Args:
        device: ``auto``, ``cpu`` or ``cuda``; under DDP each rank takes ``cuda:<LOCAL_RANK>``.

    Returns:
        The process's `DistInfo`.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.distributed:
        dist.barrier()


def all_reduce_mean(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over ranks (one explicit all-reduce; identity in a single process)."""
    if not info.distributed or not values:
        return dict(values)
    keys = sorted(values)
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    packed /= info.world_size
    return {k: float(v) for k, v in zip(keys, packed.tolist())}


def cleanup(info: DistInfo) -> None:
    """Destroy the process group if this process started one."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
