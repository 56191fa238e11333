"""The package reads as the flow of data: each layer imports only layers below it, and no
module imports another that (directly or not) imports it back."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

#: Lowest first. A module may import its own package and any package of a lower layer;
#: packages sharing a layer are separate faces and import none of each other.
LAYERS: list[tuple[str, ...]] = [
    ("digest.errors",),
    ("digest.config",),
    ("digest.logs",),
    ("digest.store",),
    ("digest.ingest",),
    ("digest.edition",),
    ("digest.sample",),
    ("digest.render",),
    ("digest.mail",),
    ("digest.transports",),
    ("digest.send",),
    ("digest.feedback",),
    ("digest.service",),
    ("digest.ops", "digest.worker", "digest.web"),
    ("digest.cli",),
]

pytestmark = pytest.mark.unit


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, top_level_only: bool) -> set[str]:
    """Digest modules imported, skipping ``if TYPE_CHECKING:`` blocks (never run)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt], nested: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("digest"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("digest"):
                module = node.module or ""
                found.add(module)
                # `from digest.edition import ledger` imports the module digest.edition.ledger.
                for alias in node.names:
                    if (
                        PACKAGE.parent / module.replace(".", "/") / f"{alias.name}.py"
                    ).exists() or (
                        PACKAGE.parent / module.replace(".", "/") / alias.name / "__init__.py"
                    ).exists():
                        found.add(f"{module}.{alias.name}")
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if top_level_only and is_function:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit([c for c in children if isinstance(c, ast.stmt)], nested or is_function)

    visit(tree.body, False)
    return found


@functools.cache  # parsed once for both tests: reading the whole package is most of their time
def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


def _layer(module: str) -> tuple[int, str]:
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                return index, package
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def test_every_module_imports_only_downward() -> None:
    """No module imports a package above its own, or a sibling face of the same layer."""
    wrong = []
    for module, tree in _modules().items():
        if module == "digest":
            continue
        level, package = _layer(module)
        for imported in _imports(tree, top_level_only=False):
            if imported == "digest":
                continue
            their_level, their_package = _layer(imported)
            if their_level > level or (their_level == level and their_package != package):
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_no_import_cycles() -> None:
    """Following the imports a module runs when loaded never leads back to it."""
    # A package's __init__ naming its own submodules loads them, it does not import itself.
    graph = {m: _imports(t, top_level_only=True) - {m} for m, t in _modules().items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if imported not in graph:
                continue
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                walk(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []
