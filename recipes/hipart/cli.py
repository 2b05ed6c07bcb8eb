"""``skeletok hipart ...`` commands.

Each command lives in its recipe module, which exposes ``add_parser(subparsers)`` and sets
``func(args) -> int`` on its sub-parser; `COMMAND_MODULES` lists those modules in help order, relative to this
package (``recipes.hipart`` in a clone, ``skeletok_recipes.hipart`` once installed). To add a command, write its
module with ``add_parser`` and append the module's relative name here.
"""

from __future__ import annotations

import importlib

__all__ = ["COMMAND_MODULES", "register"]

COMMAND_MODULES = (
    ".demo",
    ".train_tokenizer",
    ".train_prior",
    ".train_lifter",
    ".evaluate",
    ".cross_source",
    ".diagnose",
    ".infer",
    ".bench",
)


def register(groups) -> None:
    """Add the ``hipart`` group and its sub-commands to the ``skeletok`` parser's ``groups``."""
    parser = groups.add_parser("hipart", help="train, evaluate and run HiPART")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name, __package__).add_parser(commands)
