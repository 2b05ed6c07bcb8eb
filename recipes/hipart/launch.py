"""Command-line plumbing shared by the stage recipes: ``--preset``, ``--resume``, ``key=value`` overrides.

Each stage module calls `add_stage_parser` from its ``add_parser(subparsers)`` (the ``skeletok hipart``
sub-command) and `stage_main` from its ``main(argv)`` (``python -m recipes.hipart.<stage>``); both end in
`launch`, which starts the process group when run under ``torchrun`` and tears it down afterwards.
"""

from __future__ import annotations

import argparse
from typing import Callable

from .config import RunConfig
from .presets import PRESETS, get_preset
from .distributed import cleanup, init_distributed

__all__ = ["add_stage_arguments", "add_stage_parser", "stage_main", "launch", "add_command", "command_main"]

RunFn = Callable[..., object]


def add_stage_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    """Add ``--preset NAME``, ``--resume`` and ``overrides`` (``key=value`` ...) to ``parser``."""
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS[stage]),
                        help="named preset (default: demo)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from run_dir/<name>/checkpoint.pt exactly where the run stopped")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override config fields, e.g. batch_size=32 max_steps=100 data=my.npz")


def launch(stage: str, run: RunFn, args: argparse.Namespace) -> int:
    """Resolve the config from ``args`` and call ``run(cfg, resume=..., info=...)`` inside a process group."""
    cfg: RunConfig = get_preset(stage, args.preset, args.overrides)
    info = init_distributed(cfg.device)
    try:
        out = run(cfg, resume=args.resume, info=info)
        if info.is_main and out is not None:
            print(f"wrote {out}")
    finally:
        cleanup(info)
    return 0


def add_stage_parser(subparsers, command: str, stage: str, run: RunFn, help: str) -> argparse.ArgumentParser:
    """Register ``command`` (e.g. ``train-tokenizer``) on ``subparsers``; it calls `launch` with ``run``."""
    parser = subparsers.add_parser(command, help=help, description=help)
    add_stage_arguments(parser, stage)
    parser.set_defaults(func=lambda args: launch(stage, run, args))
    return parser


def stage_main(stage: str, run: RunFn, description: str, argv: list[str] | None = None) -> int:
    """``python -m recipes.hipart.<stage>`` entry point."""
    parser = argparse.ArgumentParser(description=description)
    add_stage_arguments(parser, stage)
    args = parser.parse_args(argv)
    try:
        return launch(stage, run, args)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def add_command(subparsers, name: str, *, help: str, description: str,
                add_arguments: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """Register a non-training command (``demo``, ``evaluate``, ``infer``, ``bench``) on ``subparsers``."""
    parser = subparsers.add_parser(name, help=help, description=description)
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def command_main(description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                 run: Callable[[argparse.Namespace], int], argv: list[str] | None = None) -> int:
    """``python -m recipes.hipart.<command>`` entry point: parse, run, turn bad input into exit status 2."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
