"""The layering the README promises, checked on the source: only the store knows its backends,
nothing outside it reaches for connections, and no module imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from referral_api.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "referral_api"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (module and function level), resolved to full names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("referral_api")}


SOURCES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
IMPORTS = {name: _imports(path) & set(SOURCES) for name, path in SOURCES.items()}
OUTSIDE_THE_STORE = sorted(n for n in SOURCES if not n.startswith("referral_api.store"))


@pytest.mark.parametrize("name", OUTSIDE_THE_STORE)
def test_only_the_store_knows_its_backends(name: str) -> None:
    backends = {i for i in IMPORTS[name] if i.startswith("referral_api.store.sqlite")}
    assert not backends, f"{name} imports {backends}: use referral_api.store.interface"


@pytest.mark.parametrize("name", OUTSIDE_THE_STORE)
def test_nothing_outside_the_store_reaches_for_connections_or_files(name: str) -> None:
    tree = ast.parse(SOURCES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("conn", "connections"):
            pytest.fail(f"{name}:{node.lineno} uses .{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "db" and not node.args):
            pytest.fail(f"{name}:{node.lineno} calls .db()")
        if (isinstance(node, ast.Attribute) and node.attr == "path"
                and isinstance(node.value, ast.Attribute) and node.value.attr == "log"):
            pytest.fail(f"{name}:{node.lineno} reads the log's file path")


def test_the_clinical_core_imports_no_flask_and_no_storage() -> None:
    for name, path in SOURCES.items():
        if not name.startswith("referral_api.clinical"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = {alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.Import) for alias in node.names}
        roots |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and not node.level}
        assert not roots & {"flask", "sqlite3", "sqlite_utils", "werkzeug"}, name
        assert not {i for i in IMPORTS[name] if not i.startswith(("referral_api.clinical",
                                                                  "referral_api.enums"))}, name


def test_no_import_cycle_between_modules() -> None:
    """Package ``__init__`` modules aside (a blueprint package imports its routes, which take
    ``bp`` from it), no module imports one that imports it back, at any depth."""
    nodes = {n for n, p in SOURCES.items() if p.name != "__init__.py"}
    graph = {n: {i for i in IMPORTS[n] if i in nodes and i != n} for n in nodes}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target):], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
