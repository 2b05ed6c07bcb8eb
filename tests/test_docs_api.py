"""Every public name of ``skeletok`` has an API reference entry under ``docs/api/``.

A name counts as documented when some ``docs/api/*.md`` page has a ``::: target`` block that renders
it: either ``::: skeletok.module.Name`` for the very same object, or a module-level ``::: skeletok.module``
block whose module lists it in ``__all__`` (mkdocstrings renders a module's ``__all__``).
"""

import importlib
import re
from pathlib import Path

import skeletok

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
BLOCK = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def resolve(target: str):
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        module, _, name = target.rpartition(".")
        return getattr(importlib.import_module(module), name)


def rendered() -> list[tuple[str, object, str]]:
    """``(name, object, page)`` for everything the API pages render at top level."""
    out = []
    for page in sorted(API.glob("*.md")):
        for target in BLOCK.findall(page.read_text()):
            obj = resolve(target)
            if isinstance(obj, type(skeletok)):
                names = getattr(obj, "__all__", None)
                if names is None:
                    names = [n for n, v in vars(obj).items() if not n.startswith("_")
                             and getattr(v, "__module__", None) == obj.__name__]  # fmt: skip
                out += [(n, getattr(obj, n), page.name) for n in names]
            else:
                out.append((target.rpartition(".")[2], obj, page.name))
    return out


def test_api_blocks_resolve_and_pages_are_in_nav():
    pages = sorted(API.glob("*.md"))
    assert pages, f"no API pages under {API}"
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages:
        assert f"api/{page.name}" in nav, f"{page} is not in the mkdocs.yml nav"
        assert BLOCK.search(page.read_text()), f"{page} has no ::: block"
    assert rendered()  # every target imports


def test_every_exported_name_is_documented():
    exported = getattr(skeletok, "__all__", None)
    assert exported is not None, "skeletok/__init__.py must define __all__ (the public names)"
    documented = rendered()
    missing = [
        name
        for name in exported
        if not any(n == name and obj is getattr(skeletok, name) for n, obj, _ in documented)
    ]
    assert not missing, f"names in skeletok.__all__ without a docs/api/*.md entry: {missing}"
