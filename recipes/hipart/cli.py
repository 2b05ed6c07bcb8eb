"""``skeletok hipart ...`` commands.

Each command lives in its recipe module, which exposes ``add_parser(subparsers)`` and sets
``func(args) -> int`` on its sub-parser; `COMMAND_MODULES` lists those modules in help order. To add a
command, write its module with ``add_parser`` and append the module's name here.
"""

from __future__ import annotations

import importlib

__all__ = ["COMMAND_MODULES", "register"]

COMMAND_MODULES = (
    "recipes.hipart.demo",
    "recipes.hipart.train_tokenizer",
    "recipes.hipart.train_prior",
    "recipes.hipart.train_lifter",
    "recipes.hipart.evaluate",
    "recipes.hipart.infer",
    "recipes.hipart.bench",
)


def register(groups) -> None:
    """Add the ``hipart`` group and its sub-commands to the ``skeletok`` parser's ``groups``."""
    parser = groups.add_parser("hipart", help="train, evaluate and run HiPART")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(commands)
