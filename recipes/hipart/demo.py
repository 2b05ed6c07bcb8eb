"""``skeletok hipart demo``: the whole HiPART pipeline, small, on the default dataset, in minutes on a CPU.

Launch::

    skeletok hipart demo [--out runs/demo] [--preset demo|full] [--seeds N] [--max-frames N] [--no-eval]
                         [--eval-split test|val] [--jobs N] [--resume] [key=value ...]
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

``--resume`` continues a killed run (`resume_plan`): stages already exported are kept, a stage with a checkpoint
continues from it (bit-identical to an uninterrupted run), the others train, then the evaluation runs.

``key=value`` overrides apply to every stage that has the field (e.g. ``seed=1 device=cpu``); a key no stage
knows is an error. The demo runs on one machine (no ``torchrun``). ``--jobs N`` trains independent stages side by
side in N worker processes, each with 1/N of the CPU threads: the main prior beside the out-of-fold priors and the
sparse-only warm start, then the three lifters; the tokenizer and the evaluation run alone with every thread.
Small models use two cores poorly: on 2 CPU cores two one-thread processes train 1.24x the prior's and 1.40x the
lifter's samples/s of one two-thread process (``skeletok hipart bench --preset demo --jobs 2``, forward and
backward; recipes/hipart/README.md, "Benchmark"). The default is 2 on a CPU with at least 2 cores
and 1 on a GPU. A stage's result depends only on its config, its seed and its thread count: with ``threads=1``,
``--jobs 2`` and ``--jobs 1`` train the same files, bitwise (tested); with more threads the side-by-side stages
run on fewer threads each, which moves the results by the usual run-to-run spread of another thread count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from . import train_lifter, train_prior, train_tokenizer
from .config import STAGES, apply_overrides
from .presets import PRESETS, get_preset
from .distributed import DistInfo, init_distributed
from .evaluate import run_evaluation
from .launch import add_command, command_main
from .loop import check_resumable
from .report import format_markdown

__all__ = ["DEMO_MAX_FRAMES", "PRESET_MAX_FRAMES", "split_overrides", "default_jobs", "threads_per_job", "resume_plan",
           "run_demo", "run_seeds", "add_parser", "main"]

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


def default_jobs(device: torch.device) -> int:
    """Stages trained side by side by default: 2 on a CPU with at least 2 cores, else 1."""
    return 2 if device.type == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def threads_per_job(threads: int, jobs: int) -> int:
    """Threads of each of ``jobs`` stages side by side on ``threads`` threads (at least 1)."""
    return max(1, threads // jobs)


def _stage_job(fn, cfg, info: DistInfo | None = None, resume: bool = False) -> tuple[float, str]:
    """One stage, here (``info``) or in a worker process (``None``: its own): ``fn(cfg)`` (a stage's ``run``;
    ``resume=True`` continues from its checkpoint), its seconds and output path."""
    tic = time.perf_counter()
    path = fn(cfg, resume=resume, info=info or init_distributed(cfg.device))
    return time.perf_counter() - tic, str(path)


def resume_plan(cfg, name: str) -> str:
    """What ``demo --resume`` does with stage ``name`` of the run in ``cfg.run_dir``: ``"keep"`` its exported file
    ``run_dir/<name>.pt`` (trained to the end by an earlier call), ``"resume"`` from its checkpoint
    ``run_dir/<name>/checkpoint.pt`` (killed while training or exporting), or ``"train"`` it (never started).

    Raises:
        ValueError: when the stage was trained with a config that differs from ``cfg`` in a field that changes
            training (naming the fields), so that a kept file never comes from other settings.
    """
    folder = Path(cfg.run_dir) / name
    if (folder / "config.json").is_file():
        check_resumable(json.loads((folder / "config.json").read_text())["config"], cfg)
    if (Path(cfg.run_dir) / f"{name}.pt").is_file():
        return "keep"
    return "resume" if (folder / "checkpoint.pt").is_file() else "train"


def run_demo(out: str | Path = "runs/demo", *, preset: str = "demo", max_frames: int | None | str = "preset",
             overrides: list[str] | tuple[str, ...] = (), progress: bool = True, evaluate: bool = True,
             eval_samples: int = 1000, eval_split: str = "test", jobs: int | None = None,
             resume: bool = False) -> dict[str, float]:
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
        jobs: worker processes training independent stages side by side, each with ``1/jobs`` of the threads
            (``None`` = `default_jobs`; 1 = every stage in this process, one after the other).
        resume: continue a killed run in ``out`` (`resume_plan`): stages exported before are kept (0 s in the
            timings), a stage with a checkpoint continues from it, the others train; then the evaluation runs.

    Returns:
        Seconds per step: ``data``, ``tokenizer``, ``prior``, ``prior_fold<k>``, ``lifter_hipart``,
        ``lifter_sparse_only``, ``lifter_oracle``, ``evaluate`` and ``total``, and the wall clock of the two waves
        of independent stages, ``wave_priors`` and ``wave_lifters`` (with ``jobs > 1`` the stages of a wave
        overlap, so they sum to more than their wave); also written to ``out/timings.json``. The machine's
        fp32 matmul GFLOP/s, measured first, goes to ``out/machine.json``.

    Raises:
        ValueError: for ``jobs < 1``, or with ``resume``, a stage of ``out`` trained with other settings.
    """
    from .timing import matmul_gflops

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be >= 1 (stages trained side by side), got {jobs}")
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
    # a stage shows progress bars when both the caller and its config (``progress=false`` override) allow them
    configs = {stage: dataclasses.replace(cfg, data=data, progress=progress and cfg.progress)
               for stage, cfg in configs.items()}
    info = init_distributed(configs["tokenizer"].device)

    jobs = jobs or default_jobs(info.device)

    def done(key: str, seconds: float, path) -> None:
        timings[key] = seconds
        if progress:
            print(f"[demo] {key}: {seconds:.1f} s -> {path}", flush=True)

    def wave(name: str, stages: list[tuple[str, object, object]]) -> None:
        """Train independent stages: one after the other here, or side by side in ``jobs`` processes; the wave's
        wall clock goes to ``timings["wave_<name>"]`` (not for a lone stage). With ``resume``, kept stages are not
        run."""
        tic, lone = time.perf_counter(), len(stages) == 1
        plans = {key: resume_plan(cfg, key) if resume and fn is not train_lifter.warm_lifter else "train"
                 for key, fn, cfg in stages}  # the warm start keeps or resumes itself
        for key, fn, cfg in stages:
            if plans[key] == "keep":
                done(key, 0.0, f"{Path(cfg.run_dir) / key}.pt (kept)")
        stages = [(key, fn, cfg) for key, fn, cfg in stages if plans[key] != "keep"]
        if jobs == 1 or len(stages) <= 1:  # a lone stage keeps every thread
            for key, fn, cfg in stages:
                done(key, *_stage_job(fn, cfg, info, plans[key] == "resume"))
        else:
            threads = threads_per_job(stages[0][2].threads or torch.get_num_threads(), jobs)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = [(key, pool.submit(_stage_job, fn, dataclasses.replace(cfg, threads=threads,
                                                                                  progress=False),
                                             None, plans[key] == "resume"))
                           for key, fn, cfg in stages]
                for key, future in futures:
                    done(key, *future.result())
        if not lone:
            timings[f"wave_{name}"] = time.perf_counter() - tic

    wave("tokenizer", [("tokenizer", train_tokenizer.run, configs["tokenizer"])])  # alone, with every thread
    folds = configs["lifter"].oof_folds
    priors = [("prior", train_prior.run, configs["prior"])]
    priors += [(f"prior_fold{k}", train_prior.run, dataclasses.replace(configs["prior"], folds=folds, fold=k))
               for k in range(folds)]
    if configs["lifter"].warm_epochs:  # the warm start needs no prior: it trains beside them
        priors.append(("lifter_sparse_only_warm", train_lifter.warm_lifter, configs["lifter"]))
    wave("priors", priors)
    wave("lifters", [(f"lifter_{mode}", train_lifter.run, dataclasses.replace(configs["lifter"], mode=mode))
                     for mode in train_lifter.MODES])
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
    parser.add_argument("--jobs", type=int, default=None,
                        help="stages trained side by side in worker processes, each with 1/N of the threads "
                             "(default: 2 on a CPU with >= 2 cores, 1 on a GPU)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a killed run in --out: keep the stages it exported, continue a stage from "
                             "its checkpoint, train the rest (the settings must be the run's)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every stage")


def _run(args: argparse.Namespace) -> int:
    max_frames = "preset" if args.max_frames is None else (args.max_frames or None)
    kwargs = dict(preset=args.preset, max_frames=max_frames, overrides=args.overrides, evaluate=not args.no_eval,
                  eval_samples=args.eval_samples, eval_split=args.eval_split, jobs=args.jobs,
                  resume=args.resume)
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
