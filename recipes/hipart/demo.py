"""``skeletok hipart demo``: the whole HiPART pipeline, small, on the default dataset, in minutes on a CPU.

Launch::

    skeletok hipart demo [--out runs/demo] [--preset demo] [--max-frames N] [--no-eval] [key=value ...]
    python -m recipes.hipart.demo --out runs/demo

Steps: build the default dataset if it is missing (`skeletok.data.build.build_default_dataset`), then train
stage 1 (tokenizer), stage 2 (prior) and stage 3 in all three modes (``hipart``, ``sparse_only``,
``oracle``), all into ``--out`` (``tokenizer.pt``, ``prior.pt``, ``lifter_<mode>.pt`` and one folder of logs
per stage), then evaluate them (``report.json``, ``report.md``, pictures; the table is printed). Per-stage wall-clock timings are printed and written to ``--out/timings.json``.
``key=value`` overrides apply to every stage that has the field (e.g. ``seed=1 device=cpu``); a key no stage
knows is an error. The demo runs in a single process (no ``torchrun``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from . import train_lifter, train_prior, train_tokenizer
from .config import PRESETS, STAGES, apply_overrides, get_preset
from .distributed import init_distributed
from .evaluate import run_evaluation
from .launch import add_command, command_main
from .report import format_markdown

__all__ = ["DEMO_MAX_FRAMES", "split_overrides", "run_demo", "add_parser", "main"]

# Frames kept per mocap sequence in the demo's dataset variant (sizes the whole demo's run time).
DEMO_MAX_FRAMES = 150


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


def run_demo(out: str | Path = "runs/demo", *, preset: str = "demo", max_frames: int | None = DEMO_MAX_FRAMES,
             overrides: list[str] | tuple[str, ...] = (), progress: bool = True, evaluate: bool = True,
             eval_samples: int = 1000) -> dict[str, float]:
    """Build the data if needed and train the three stages and three lifters into ``out``.

    Args:
        out: the run directory.
        preset: the preset of every stage (``demo`` or ``h36m``).
        max_frames: frames per sequence of the default dataset variant (``None`` = the full default dataset);
            ignored when the overrides give ``data=...``.
        overrides: ``key=value`` items, each applied to every stage that has the field.
        progress: progress bars and per-stage prints.
        evaluate: evaluate the run at the end (`recipes.hipart.evaluate.run_evaluation`): report and pictures
            into ``out``.
        eval_samples: test samples the evaluation uses (evenly spaced; 0 = all).

    Returns:
        Seconds per step: ``data``, ``tokenizer``, ``prior``, ``lifter_hipart``, ``lifter_sparse_only``,
        ``lifter_oracle``, ``evaluate`` and ``total``; also written to ``out/timings.json``.
    """
    out = Path(out)
    routed = split_overrides(list(overrides))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    configs = {stage: apply_overrides(get_preset(stage, preset, [f"run_dir={out}"]), routed[stage])
               for stage in STAGES}
    data = configs["tokenizer"].data
    if not data:
        from skeletok.data.build import build_default_dataset

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
    for mode in train_lifter.MODES:
        timed(f"lifter_{mode}", train_lifter.run, dataclasses.replace(configs["lifter"], mode=mode))
    out.mkdir(parents=True, exist_ok=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    if evaluate:
        tic = time.perf_counter()
        report = run_evaluation(out, data=data, device=configs["lifter"].device, max_samples=eval_samples,
                                progress=progress)
        timings["evaluate"] = time.perf_counter() - tic
        if progress:
            print(format_markdown(report), flush=True)
    timings["total"] = time.perf_counter() - start
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    if progress:
        print("[demo] seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    return timings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS["tokenizer"]),
                        help="preset of every stage (default: demo)")
    parser.add_argument("--max-frames", type=int, default=DEMO_MAX_FRAMES,
                        help=f"frames per sequence of the default dataset (default {DEMO_MAX_FRAMES}; 0 = all)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--eval-samples", type=int, default=1000, help="test samples evaluated (0 = all)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every stage")


def _run(args: argparse.Namespace) -> int:
    run_demo(args.out, preset=args.preset, max_frames=args.max_frames or None, overrides=args.overrides,
             evaluate=not args.no_eval, eval_samples=args.eval_samples)
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart demo``."""
    add_command(subparsers, "demo", help="build data and train all of HiPART, small, in minutes",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
