"""``skeletok hipart ...`` commands (placeholder registration; filled by the recipes)."""

from __future__ import annotations


def register(groups) -> None:
    parser = groups.add_parser("hipart", help="train, evaluate and run HiPART")
    parser.add_subparsers(dest="command", required=True)
