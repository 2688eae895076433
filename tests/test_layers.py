"""The layers of the harness, as the README draws them, held by its imports (issue 26).

Imports go one way, from the front ends down to the core: a module imports only from its own
layer or a lower one, and no chain of imports comes back to where it started. Every import
counts, those inside a function or under ``TYPE_CHECKING`` too: a lazy import from a higher
layer is the same tie, only hidden. ``harness/__init__.py`` is the public API and re-exports
every layer (lazily); nothing inside the package takes a name from it but its version.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

# The README's layers, bottom up: a module may import from its rank or below.
RANKS = {"core": 0, "machines": 1, "probes": 1, "model": 2, "engine": 3,
         "pytest": 4, "cli": 4, "plugin": 4, "reference": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    """The layer of ``module`` (``harness.machines.store`` -> machines)."""
    top = module.split(".")[1]
    return RANKS[top]


def imports(module: str) -> set[str]:
    """The harness modules ``module`` imports, resolved to modules that exist (``from
    harness.machines import store`` is harness.machines.store; ``from harness.core.log import
    logger`` is harness.core.log)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness.")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            if not base.startswith("harness"):
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m not in ("harness", module)}


GRAPH = {m: imports(m) for m in MODULES if m != "harness"}


def test_every_module_has_a_layer() -> None:
    unknown = sorted(m for m in GRAPH if m.split(".")[1] not in RANKS)
    assert not unknown, f"modules in no layer of RANKS (add the package to the README's layers): {unknown}"


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = sorted(f"{m} -> {i}" for m, targets in GRAPH.items() for i in targets if rank(i) > rank(m))
    assert not upward, "imports against the layers (README, 'Layout'):\n" + "\n".join(upward)


def test_nothing_inside_imports_the_public_api() -> None:
    inside = sorted(f"{m}: {alias.name}" for m in GRAPH
                    for node in ast.walk(ast.parse(MODULES[m].read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module == "harness" and not node.level
                    for alias in node.names
                    if f"harness.{alias.name}" not in MODULES and alias.name != "__version__")
    assert not inside, f"modules importing the public API (import from the layer instead): {inside}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert not cycles(GRAPH), f"import cycles: {cycles(GRAPH)}"


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
])
def test_cycles_finds_what_loops(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


def test_no_module_passes_400_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines (split one along a real seam): {long}"
