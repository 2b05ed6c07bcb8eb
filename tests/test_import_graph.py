"""The import graph of ``skeletok/`` has no circle.

Every ``import``/``from ... import`` statement of every module counts, wherever it stands: at module level, inside
a function (a lazy import still runs, only later) or under ``if TYPE_CHECKING:``. Relative imports are resolved
against the importing module's package. ``from a.b import c`` is an edge to the module ``a.b.c`` when that is a
module of the package, else to ``a.b``. The implicit import of a parent package's ``__init__`` (which Python runs
before any submodule) is not an edge: a package ``__init__`` that re-exports its submodules' names is the normal
way to keep public names short, and counting it would make every such package a circle with its own children.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "skeletok"


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` (file ``path``) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    own_package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            targets = []
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                targets.append(sub if sub in modules else stem)
        else:
            continue
        for target in targets:
            # ``import a.b.c`` names the module ``a.b.c``; a name that is not a module of ours is skipped
            while target and target not in modules:
                target = target.rpartition(".")[0] if target.startswith(PACKAGE + ".") else ""
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import A\n")
    (pkg / "sub" / "a.py").write_text("A = 1\ndef f():\n    from ..b import B\n    return B\n")
    (pkg / "b.py").write_text("from skeletok.sub import a\nimport numpy\nB = 2\n")
    graph = import_graph(tmp_path)
    assert graph == {PACKAGE: set(), f"{PACKAGE}.sub": {f"{PACKAGE}.sub.a"},
                     f"{PACKAGE}.sub.a": {f"{PACKAGE}.b"}, f"{PACKAGE}.b": {f"{PACKAGE}.sub.a"}}
    assert find_cycle(graph) in ([f"{PACKAGE}.b", f"{PACKAGE}.sub.a", f"{PACKAGE}.b"],
                                 [f"{PACKAGE}.sub.a", f"{PACKAGE}.b", f"{PACKAGE}.sub.a"])
    assert find_cycle({"x": {"y"}, "y": set()}) is None


def test_skeletok_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 20 and any(graph.values())
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)
