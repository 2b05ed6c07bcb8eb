"""The one ``skeletok`` console entry point.

    skeletok data build | from-mocap | show | build-assets ...
    skeletok hipart demo | train-tokenizer | train-prior | train-lifter | evaluate | infer | bench ...

Each command group lives with its code (``skeletok.data.cli`` and ``recipes.hipart.cli``) and
exposes ``register(subparsers)``; every registered sub-command sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skeletok", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)

    from skeletok.data import cli as data_cli

    data_cli.register(groups)
    from recipes.hipart import cli as hipart_cli

    hipart_cli.register(groups)
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
