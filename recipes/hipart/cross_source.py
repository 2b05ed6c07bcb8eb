"""``skeletok hipart cross-source``: leave one source out, the closest thing to "a new lab's data" that ships.

Launch::

    skeletok hipart cross-source [--out runs/cross_source] [--preset demo] [--sources holosoma deepmimic ...]
                                 [--eval-samples N] [key=value ...]
    python -m recipes.hipart.cross_source --out runs/cross_source

For every source of the dataset (`skeletok.data.sets.splits.frame_sources`: ``holosoma``, ``deepmimic``, ``bvhtoolbox`` in
the default data), `leave_one_out` writes a copy of the dataset file in which that source's frames are the test
split and every other source's frames are training data (their validation takes stay validation), then the
whole pipeline (`recipes.hipart.demo.run_demo`: tokenizer, prior, out-of-fold priors, the three lifters) trains
on it into ``--out/<source>`` and is evaluated on the held-out source. ``--out/cross_source.json`` gathers, per
held-out source, MPJPE and P-MPJPE of the three lifters on clean input and at mask 0.4 (a keypoint-level proxy
of the paper's image-level occlusion); ``--out/cross_source.md`` is the table.

Runs take as long as one demo per source (three on the default data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .demo import PRESET_MAX_FRAMES, run_demo
from .launch import add_command, command_main
from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset, save_dataset
from skeletok.data.sets.splits import frame_sources

__all__ = ["leave_one_out", "run_cross_source", "split_sources", "format_table", "add_parser", "main"]

METHODS = ("sparse_only", "hipart", "oracle")


def leave_one_out(data: str | Path, source: str, out: str | Path) -> Path:
    """Write the leave-``source``-out copy of dataset ``data`` to ``out``: ``source`` is the test split, every other
    frame training data except the validation takes.

    Raises:
        ValueError: when ``source`` is not a source of the file, or is its only source.
    """
    arrays = load_dataset(data)
    src = frame_sources(arrays)
    known = sorted(set(src.tolist()))
    if source not in known:
        raise ValueError(f"source {source!r} is not in {data}; its sources are {known}")
    if len(known) < 2:
        raise ValueError(f"{data} has a single source ({known}); leaving it out leaves nothing to train on")
    split = np.asarray(arrays["split"]).copy()
    held = src == source
    split[held] = SPLIT_CODES["test"]
    split[~held & (split == SPLIT_CODES["test"])] = SPLIT_CODES["train"]
    return save_dataset({**arrays, "split": split}, out)


def _row(report: dict) -> dict:
    mask = report.get("occlusion", {}).get("mask", {})
    mask04 = next((v for k, v in mask.items() if abs(float(k) - 0.4) < 1e-9), {})
    return {
        "test_samples": report.get("meta", {}).get("samples"),
        "mpjpe_mm": {m: report["mpjpe_mm"][m] for m in METHODS},
        "p_mpjpe_mm": {m: report["p_mpjpe_mm"][m] for m in METHODS},
        "mask_0.4_mpjpe_mm": {m: mask04[m] for m in METHODS if m in mask04},
    }


def run_cross_source(out: str | Path = "runs/cross_source", *, preset: str = "demo", sources=None,
                     overrides: list[str] | tuple[str, ...] = (), eval_samples: int = 1000,
                     progress: bool = True) -> dict:
    """Leave each source out in turn, train and evaluate; returns ``{source: row}`` (also written as JSON and
    markdown into ``out``).

    Args:
        out: output folder (one run folder per held-out source).
        preset: the preset of every stage.
        sources: the sources to hold out (default: every source of the dataset).
        overrides: ``key=value`` items for every stage (``data=...`` picks another dataset file).
        eval_samples: held-out samples evaluated, evenly spaced (0 = all).
        progress: progress bars and prints.
    """
    from skeletok.data.sets.build import build_default_dataset

    out = Path(out)
    data = next((item.split("=", 1)[1] for item in overrides if item.split("=", 1)[0].strip() == "data"), "")
    if not data:
        data = str(build_default_dataset(max_frames_per_sequence=PRESET_MAX_FRAMES.get(preset), progress=progress))
    rest = [item for item in overrides if item.split("=", 1)[0].strip() != "data"]
    available = sorted(set(frame_sources(load_dataset(data)).tolist()))
    chosen = list(sources) if sources else available
    unknown = [s for s in chosen if s not in available]
    if unknown:  # before any training: a typo must not cost the folds before it
        raise ValueError(f"sources {unknown} are not in {data}; its sources are {available}")
    results = {}
    for source in chosen:
        held = leave_one_out(data, source, out / f"data_without_{source}.npz")
        run_demo(out / source, preset=preset, overrides=[*rest, f"data={held}"], progress=progress,
                 eval_samples=eval_samples, eval_split="test")
        results[source] = _row(json.loads((out / source / "report.json").read_text()))
        (out / "cross_source.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "cross_source.md").write_text(format_table(results))
    return results


def format_table(results: dict) -> str:
    """Markdown: one row per held-out source, MPJPE (mm) of the three lifters on clean input and at mask 0.4."""
    lines = ["| held-out source | samples | sparse only | HiPART | oracle | mask 0.4: sparse only | HiPART | oracle |",
             "|---|---|---|---|---|---|---|---|"]
    for source, row in results.items():
        clean = [f"{row['mpjpe_mm'][m]:.1f}" for m in METHODS]
        masked = [f"{row['mask_0.4_mpjpe_mm'][m]:.1f}" if m in row["mask_0.4_mpjpe_mm"] else "-" for m in METHODS]
        lines.append(f"| {source} | {row['test_samples']} | " + " | ".join(clean + masked) + " |")
    return "\n".join(lines) + "\n"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/cross_source", help="output folder (default: runs/cross_source)")
    parser.add_argument("--preset", default="demo", help="preset of every stage (default: demo)")
    parser.add_argument("--sources", nargs="*", default=None, help="sources to hold out (default: all)")
    parser.add_argument("--eval-samples", type=int, default=1000, help="held-out samples evaluated (0 = all)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every stage")


def split_sources(sources: list[str] | None, overrides: list[str]) -> tuple[list[str] | None, list[str]]:
    """``(sources, overrides)`` with the ``key=value`` items that ``--sources a b key=value`` swallowed (argparse
    gives every word after ``--sources`` to it) moved back to the overrides, in order."""
    if not sources:
        return sources, list(overrides)
    moved = [s for s in sources if "=" in s]
    return [s for s in sources if "=" not in s] or None, [*moved, *overrides]


def _run(args: argparse.Namespace) -> int:
    sources, overrides = split_sources(args.sources, args.overrides)
    results = run_cross_source(args.out, preset=args.preset, sources=sources, overrides=overrides,
                               eval_samples=args.eval_samples)
    print(format_table(results))
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart cross-source``."""
    add_command(subparsers, "cross-source", help="leave one data source out: train on the rest, test on it",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
