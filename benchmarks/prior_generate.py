"""Benchmark `HierarchicalARPrior.generate`: poses per second, cached vs uncached, two model sizes.

Usage:
    python benchmarks/prior_generate.py [--threads 2] [--batches 1 256] [--min-time 2]

Prints one JSON object per line: model size, batch, ``use_cache``, milliseconds per call, poses per second,
parameter count. Random weights (speed does not depend on training); argmax decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from skeletok.prior import HierarchicalARPrior

SIZES = {
    "demo": dict(dim=64, depth=4, heads=4),
    "default": dict(),  # dim 128, depth 12, heads 8: the paper's D2, L2
}


def time_generate(model: HierarchicalARPrior, batch: int, use_cache: bool, min_time: float) -> tuple[float, float]:
    """Wall and process-CPU seconds per ``generate`` call, over at least ``min_time`` seconds and 3 calls.

    On a shared machine the CPU time (summed over threads) is the better guess of the unloaded wall time
    with one thread; with several threads it also counts spinning.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, model.num_joints, 2, generator=g) * 2 - 1
    vis = torch.rand(batch, model.num_joints, generator=g) > 0.2
    model.generate(x, vis, use_cache=use_cache)
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while calls < 3 or time.perf_counter() - start < min_time:
        model.generate(x, vis, use_cache=use_cache)
        calls += 1
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds to time each setting")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for size in args.sizes:
        torch.manual_seed(0)
        model = HierarchicalARPrior(codebook_size_sparse=256, codebook_size_dense=512, **SIZES[size]).eval()
        params = sum(p.numel() for p in model.parameters())
        for batch in args.batches:
            for use_cache in (True, False):
                sec, cpu = time_generate(model, batch, use_cache, args.min_time)
                print(json.dumps(dict(size=size, params=params, threads=args.threads, batch=batch, use_cache=use_cache,
                                      ms_per_call=round(sec * 1e3, 2), poses_per_s=round(batch / sec, 1),
                                      cpu_ms_per_call=round(cpu * 1e3, 2),
                                      load_avg_1min=round(os.getloadavg()[0], 2))), flush=True)


if __name__ == "__main__":
    main()
