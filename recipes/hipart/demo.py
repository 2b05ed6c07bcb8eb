"""``skeletok hipart demo``: the whole HiPART pipeline, small, on the default dataset, in minutes on a CPU.

Launch::

    skeletok hipart demo [--out runs/demo] [--preset demo|full] [--seeds N] [--max-frames N] [--no-eval]
                         [--eval-split test|val] [key=value ...]
    python -m recipes.hipart.demo --out runs/demo

Steps: build the default dataset if it is missing (`skeletok.data.sets.build.build_default_dataset`; the ``demo``
preset takes at most 150 evenly spaced frames per take, ``full`` every frame), then train stage 1
(tokenizer), stage 2 (the prior, and the out-of-fold priors ``prior_fold<k>.pt`` when the lifter preset asks
for ``oof_folds``) and stage 3 in all three modes (``hipart``, ``sparse_only``, ``oracle``), all into
``--out``, then evaluate them (``report.json``, ``report.md``, pictures; the table is printed). Per-stage
wall-clock timings and the machine's fp32 matmul GFLOP/s measured at the start (this machine's speed varies)
are printed and written to ``--out/timings.json``.

``--seeds N`` repeats the whole run with seeds 0..N-1 into ``--out/seed<k>`` and writes the mean and standard
deviation of every number of the reports into ``--out/report.json`` and ``--out/report.md``
(`recipes.hipart.seeds`). The test split is for the final reading only: choose settings with
``--eval-split val``.

``key=value`` overrides apply to every stage that has the field (e.g. ``seed=1 device=cpu``); a key no stage
knows is an error. The demo runs in a single process (no ``torchrun``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from . import train_lifter, train_prior, train_tokenizer
from .config import STAGES, apply_overrides
from .presets import PRESETS, get_preset
from .distributed import init_distributed
from .evaluate import run_evaluation
from .launch import add_command, command_main
from .report import format_markdown

__all__ = ["DEMO_MAX_FRAMES", "PRESET_MAX_FRAMES", "split_overrides", "run_demo", "run_seeds", "add_parser", "main"]

# Frames kept per take (evenly spaced over the whole take) in the demo's dataset variant (sizes the run time).
DEMO_MAX_FRAMES = 150
# The default dataset variant of each preset (None = every frame).
PRESET_MAX_FRAMES = {"demo": DEMO_MAX_FRAMES, "full": None, "h36m": None}


def split_overrides(overrides: list[str]) -> dict[str, list[str]]:
    """Route ``key=value`` items to the stages whose config has ``key``.

    Raises:
        ValueError: for an item without ``=`` or a key that no stage's config has (lists the valid keys).
    """
    fields = {stage: {f.name for f in dataclasses.fields(cls)} for stage, cls in STAGES.items()}
    routed: dict[str, list[str]] = {stage: [] for stage in STAGES}
    for item in overrides:
        key = item.split("=", 1)[0].strip() if "=" in item else None
        known = sorted(set().union(*fields.values()))
        if key is None or not any(key in names for names in fields.values()):
            raise ValueError(f"override {item!r}: expected key=value with a key of some stage; valid keys: {known}")
        for stage, names in fields.items():
            if key in names:
                routed[stage].append(item)
    return routed


def run_demo(out: str | Path = "runs/demo", *, preset: str = "demo", max_frames: int | None | str = "preset",
             overrides: list[str] | tuple[str, ...] = (), progress: bool = True, evaluate: bool = True,
             eval_samples: int = 1000, eval_split: str = "test") -> dict[str, float]:
    """Build the data if needed and train the three stages and three lifters into ``out``.

    Args:
        out: the run directory.
        preset: the preset of every stage (``demo``, ``full`` or ``h36m``).
        max_frames: frames per take of the default dataset variant (``None`` = every frame; ``"preset"`` =
            `PRESET_MAX_FRAMES` of the preset); ignored when the overrides give ``data=...``.
        overrides: ``key=value`` items, each applied to every stage that has the field.
        progress: progress bars and per-stage prints.
        evaluate: evaluate the run at the end (`recipes.hipart.evaluate.run_evaluation`): report and pictures
            into ``out``.
        eval_samples: test samples the evaluation uses (evenly spaced; 0 = all).
        eval_split: the split evaluated (``test``, or ``val`` while choosing settings).

    Returns:
        Seconds per step: ``data``, ``tokenizer``, ``prior``, ``prior_fold<k>``, ``lifter_hipart``,
        ``lifter_sparse_only``, ``lifter_oracle``, ``evaluate`` and ``total``; also written to
        ``out/timings.json``. The machine's fp32 matmul GFLOP/s, measured first, goes to ``out/machine.json``.
    """
    from .timing import matmul_gflops

    out = Path(out)
    routed = split_overrides(list(overrides))
    machine = {"matmul_gflops_fp32": matmul_gflops(dtype=torch.float32, min_time_s=0.5)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
    if progress:
        print(f"[demo] this machine's fp32 matmul: {machine['matmul_gflops_fp32']:.0f} GFLOP/s", flush=True)
    timings: dict[str, float] = {}
    if max_frames == "preset":
        max_frames = PRESET_MAX_FRAMES.get(preset)
    start = time.perf_counter()
    configs = {stage: apply_overrides(get_preset(stage, preset, [f"run_dir={out}"]), routed[stage])
               for stage in STAGES}
    data = configs["tokenizer"].data
    if not data:
        from skeletok.data.sets.build import build_default_dataset

        data = str(build_default_dataset(max_frames_per_sequence=max_frames, progress=progress))
    timings["data"] = time.perf_counter() - start
    configs = {stage: dataclasses.replace(cfg, data=data, progress=progress) for stage, cfg in configs.items()}
    info = init_distributed(configs["tokenizer"].device)

    def timed(key: str, fn, cfg) -> None:
        tic = time.perf_counter()
        path = fn(cfg, info=info)
        timings[key] = time.perf_counter() - tic
        if progress:
            print(f"[demo] {key}: {timings[key]:.1f} s -> {path}", flush=True)

    timed("tokenizer", train_tokenizer.run, configs["tokenizer"])
    timed("prior", train_prior.run, configs["prior"])
    folds = configs["lifter"].oof_folds
    for k in range(folds):
        timed(f"prior_fold{k}", train_prior.run, dataclasses.replace(configs["prior"], folds=folds, fold=k))
    if configs["lifter"].warm_epochs:
        timed("lifter_sparse_only_warm", train_lifter.warm_lifter, configs["lifter"])
    for mode in train_lifter.MODES:
        timed(f"lifter_{mode}", train_lifter.run, dataclasses.replace(configs["lifter"], mode=mode))
    out.mkdir(parents=True, exist_ok=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    if evaluate:
        tic = time.perf_counter()
        report = run_evaluation(out, data=data, device=configs["lifter"].device, max_samples=eval_samples,
                                split=eval_split, progress=progress, inputs=configs["lifter"].inputs,
                                det_min_score=configs["lifter"].det_min_score)
        timings["evaluate"] = time.perf_counter() - tic
        if progress:
            print(format_markdown(report), flush=True)
    timings["total"] = time.perf_counter() - start
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    if progress:
        print("[demo] seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    return timings


def run_seeds(out: str | Path, seeds: int, *, overrides: list[str] | tuple[str, ...] = (), evaluate: bool = True,
              **kwargs) -> dict:
    """`run_demo` with seeds ``0..seeds-1`` into ``out/seed<k>``, then the mean +- std of their reports.

    Returns:
        The aggregated report (`recipes.hipart.seeds.aggregate_reports`), also written to ``out/report.json``
        and ``out/report.md``; ``{}`` without evaluation.
    """
    from .seeds import aggregate_reports, write_aggregate

    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if any(item.split("=", 1)[0].strip() == "seed" for item in overrides):
        raise ValueError("--seeds sets the seed of each run; drop the seed=... override")
    out = Path(out)
    for k in range(seeds):
        run_demo(out / f"seed{k}", overrides=[*overrides, f"seed={k}"], evaluate=evaluate, **kwargs)
    if not evaluate:
        return {}
    reports = [json.loads((out / f"seed{k}" / "report.json").read_text()) for k in range(seeds)]
    aggregate = aggregate_reports(reports)
    write_aggregate(aggregate, out)
    return aggregate


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS["tokenizer"]),
                        help="preset of every stage (default: demo)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help=f"frames per take of the default dataset, evenly spaced (default: {DEMO_MAX_FRAMES} for "
                             "the demo preset, every frame for full; 0 = all)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="repeat with seeds 0..N-1 into --out/seed<k> and report mean +- std (default 1)")
    parser.add_argument("--eval-split", default="test", choices=("test", "val"),
                        help="split evaluated at the end (default test; choose settings on val)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--eval-samples", type=int, default=1000, help="test samples evaluated (0 = all)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every stage")


def _run(args: argparse.Namespace) -> int:
    max_frames = "preset" if args.max_frames is None else (args.max_frames or None)
    kwargs = dict(preset=args.preset, max_frames=max_frames, overrides=args.overrides, evaluate=not args.no_eval,
                  eval_samples=args.eval_samples, eval_split=args.eval_split)
    if args.seeds == 1:
        run_demo(args.out, **kwargs)
    else:
        aggregate = run_seeds(args.out, args.seeds, **kwargs)
        if aggregate:
            print((Path(args.out) / "report.md").read_text())
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart demo``."""
    add_command(subparsers, "demo", help="build data and train all of HiPART, small, in minutes",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
