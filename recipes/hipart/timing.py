"""Measurement helpers for ``skeletok hipart bench``: wall-clock throughput, FLOPs, matmul speed.

Numbers from these functions go into benchmark JSON, never into test assertions.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["throughput", "count_flops", "matmul_gflops"]


def throughput(fn: Callable[[], object], *, items: int, min_time_s: float = 1.0, warmup: int = 2) -> float:
    """Items per second of ``fn`` (which processes ``items`` items per call), timed for at least ``min_time_s``.

    Args:
        fn: a zero-argument callable doing one batch of work.
        items: items (frames) processed per call.
        min_time_s: keep calling until this much time has passed (at least 3 calls).
        warmup: untimed calls first.
    """
    for _ in range(warmup):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time_s and calls >= 3:
            return calls * items / elapsed


def count_flops(fn: Callable[[], object]) -> int:
    """Floating point operations of one call of ``fn`` as counted by torch's FlopCounterMode (matmuls, convs, attention)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def matmul_gflops(*, dtype: torch.dtype = torch.float32, n: int = 1024, min_time_s: float = 1.0) -> float:
    """Measured square-matmul throughput of this machine in GFLOP/s (``2 n^3`` flops per product)."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    per_second = throughput(lambda: a @ b, items=1, min_time_s=min_time_s)
    return per_second * 2 * n**3 / 1e9
