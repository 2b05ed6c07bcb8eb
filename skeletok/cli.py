"""The one ``skeletok`` console entry point.

    skeletok data build | from-mocap | show | build-assets ...
    skeletok hipart demo | train-tokenizer | train-prior | train-lifter | evaluate | infer | bench ...

Each command group lives with its code (``skeletok.data.cli`` and ``recipes.hipart.cli``) and
exposes ``register(subparsers)``; every registered sub-command sets ``func(args) -> int``.

The repository's ``recipes/hipart`` folder is installed as ``skeletok_recipes.hipart`` (a top-level ``recipes``
would clash with other distributions that ship one, e.g. torchtune); ``python -m recipes.hipart.<stage>`` still
works from a clone, where ``recipes.hipart`` is the same code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import skeletok


def _hipart_cli():
    """The ``hipart`` command group: the installed ``skeletok_recipes.hipart``, else a clone's ``recipes.hipart``."""
    try:
        return importlib.import_module("skeletok_recipes.hipart.cli")
    except ModuleNotFoundError as err:
        if err.name not in ("skeletok_recipes", "skeletok_recipes.hipart", "skeletok_recipes.hipart.cli"):
            raise
        return importlib.import_module("recipes.hipart.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skeletok", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {skeletok.__version__}")
    groups = parser.add_subparsers(dest="group", required=True)

    from skeletok.data import cli as data_cli

    data_cli.register(groups)
    _hipart_cli().register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"skeletok: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
