"""``skeletok data ...`` commands (placeholder registration; filled by the data layer)."""

from __future__ import annotations


def register(groups) -> None:
    parser = groups.add_parser("data", help="build and inspect datasets")
    parser.add_subparsers(dest="command", required=True)
