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
    ("digest.audience",),
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


#: The faces: what an operator or a reader touches. They ask the core for everything.
FACES = ("digest.cli", "digest.web", "digest.ops")
#: What a face may import, besides its own package and the ``digest`` package itself.
FACE_ALLOWED = ("digest.service", "digest.errors", "digest.config")
#: The CLI starts the other faces' processes (``digest web``, ``doctor``, ``worker``).
CLI_STARTS = ("digest.web", "digest.ops", "digest.worker")


def _all_imports(tree: ast.Module) -> set[str]:
    """Every digest module a module names, type-only imports included: a face that names a
    table in a type hint is as tied to it as one that queries it."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("digest"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("digest"):
            found.add(node.module or "")
    return found


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_faces_import_only_the_service() -> None:
    """The CLI, the web app and the ops checks import only the service, the errors and the
    settings (the CLI also the faces it starts): no table, ledger or mailer of their own."""
    wrong = []
    for module, tree in _modules().items():
        if not _under(module, FACES):
            continue
        own = next(face for face in FACES if _under(module, (face,)))
        allowed = (*FACE_ALLOWED, own, *(CLI_STARTS if own == "digest.cli" else ()))
        for imported in _all_imports(tree):
            if imported != "digest" and not _under(imported, allowed):
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_every_package_declares_its_public_names() -> None:
    """Each package's ``__init__`` says what it offers in ``__all__``, and every name listed
    is there (a function, a class, or one of its modules)."""
    missing, wrong = [], []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if "migrations" in init.parts:
            continue
        module = _module_name(init)
        tree = ast.parse(init.read_text(encoding="utf-8"))
        listed = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        ]
        if not listed:
            missing.append(module)
            continue
        names = ast.literal_eval(listed[0])
        defined = (
            {
                alias.asname or alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom | ast.Import)
                for alias in node.names
            }
            | {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
            | {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)
            }
        )
        for name in names:
            folder = init.parent
            if name not in defined and not (
                (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists()
            ):
                wrong.append(f"{module}.{name}")
    assert missing == [] and wrong == []
