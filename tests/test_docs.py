"""The documentation site (docs/, mkdocs.yml) stays true to the code: it builds without a
broken link or anchor, every file it or the README names exists, and its tables of
settings, commands, API routes and layers match the code they describe."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from digest.cli import COMMANDS, cli
from digest.config import PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
#: Every file whose text names repository files: the README, the pages, the site's config.
NAMING_FILES = [ROOT / "README.md", ROOT / "mkdocs.yml", *PAGES]

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
#: A repository path: it starts at a top-level folder or is a top-level file, and is not
#: part of a URL, another path or a dotted name.
_REPO_PATH = re.compile(
    r"(?<![\w./:@+-])("
    r"(?:digest|tests|bench|templates|docs|\.ci)/[\w./-]*"
    r"|Dockerfile|docker-compose\.yml|pyproject\.toml|\.env\.example|mkdocs\.yml|README\.md"
    r")"
)
#: A code span that is a dotted name inside the package (`digest.service.core.Digest`).
_DOTTED = re.compile(r"^digest(?:\.[A-Za-z_]\w*)+$")
#: A module run or loaded by name on a command line: `python -m X`, `celery -A X`.
_RUN_MODULE = re.compile(r"(?:-m|-A) (digest(?:\.\w+)+)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row (header and rule rows included), with ``\\|``
    kept inside its cell."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- the site builds ---------------------------------------------------------------------------


@pytest.mark.heavy  # a whole MkDocs build
def test_the_site_builds_strictly_with_every_page(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds: no missing page, broken link or missing anchor
    (mkdocs.yml makes each a warning, and strict mode fails on any), and every page in
    docs/ is built."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert len(PAGES) >= 15
    for page in PAGES:
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), page.name


def test_every_page_is_in_the_navigation() -> None:
    """mkdocs.yml's nav lists each page of docs/ once, so none is built but unreachable."""
    nav = re.findall(r":\s+([\w-]+\.md)\s*$", _text(ROOT / "mkdocs.yml"), re.M)
    assert sorted(nav) == sorted(p.name for p in PAGES)


# -- names of files and modules ----------------------------------------------------------------


def _named_paths(text: str) -> set[str]:
    found = set()
    for match in _REPO_PATH.finditer(text):
        found.add(match.group(1).rstrip(".,;:"))
    return found


def test_every_repository_path_the_docs_name_exists() -> None:
    """Each file or folder the README, the pages or mkdocs.yml name (`bench/send.py`,
    `templates/email/digest.html`, `digest/store/migrations/`) is in the repository; the
    check finds the hundred-odd such names, so it cannot pass by finding none."""
    named: dict[str, list[str]] = {}
    for path in NAMING_FILES:
        for found in _named_paths(_text(path)):
            named.setdefault(found, []).append(path.name)
    missing = {p: where for p, where in named.items() if not (ROOT / p).exists()}
    assert missing == {}
    assert len(named) >= 100, sorted(named)
    # The path pattern itself is checked on what it must and must not take.
    assert _named_paths("see `digest/send/batch.py`, and tests/test_faces.py.") == {
        "digest/send/batch.py",
        "tests/test_faces.py",
    }
    assert _named_paths("https://news.example/digest/x.py ./digest.toml .venv/bin/digest") == set()


def test_every_python_file_is_named_by_its_full_path() -> None:
    """A code span naming a Python file gives its path from the repository root, so the
    existence check above can see it (`batch.py` alone could be any of several)."""
    bare = []
    for path in NAMING_FILES:
        text = _FENCE.sub("", _text(path))
        for span in _CODE_SPAN.findall(text):
            for word in span.split():
                if word.endswith(".py") and "/" not in word:
                    bare.append(f"{path.name}: {word}")
    assert bare == []


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module of the package, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        as_path = ROOT / Path(*parts[:cut])
        if as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file():
            target: object = importlib.import_module(module_name)
            for attribute in parts[cut:]:
                if not hasattr(target, attribute):
                    return False
                target = getattr(target, attribute)
            return True
    return False


def test_every_module_and_object_the_docs_name_exists() -> None:
    """Dotted names (`digest.service.core.Digest`, `celery -A digest.worker.app`) name a
    module of the package, and an attribute of it where they go further."""
    names: set[str] = set()
    for path in NAMING_FILES:
        text = _text(path)
        names.update(s for s in _CODE_SPAN.findall(text) if _DOTTED.match(s))
        names.update(_RUN_MODULE.findall(text))
    assert len(names) >= 3, names
    assert [n for n in sorted(names) if not _resolves(n)] == []


def test_every_digest_variable_the_docs_name_is_read() -> None:
    """Each `DIGEST_*` name in the README or the pages is a setting, `DIGEST_CONFIG`, or a
    variable the tests or CI read: no page tells an operator to set a name nothing reads."""
    known = {f"DIGEST_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    known.add("DIGEST_CONFIG")
    harness = "\n".join(_text(p) for p in (ROOT / "tests").rglob("*.py"))
    harness += _text(ROOT / ".ci" / "run")
    named = set()
    for path in NAMING_FILES:
        named.update(re.findall(r"DIGEST_[A-Z0-9_]*[A-Z0-9]", _text(path)))
    unknown = sorted(n for n in named - known if not re.search(rf"\b{n}\b", harness))
    assert unknown == []


# -- configuration -----------------------------------------------------------------------------

CONFIGURATION = _text(DOCS / "configuration.md")


def _setting_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for cells in _table_rows(CONFIGURATION):
        match = re.fullmatch(r"`DIGEST_([A-Z0-9_]+)`", cells[0])
        if match:
            assert match.group(1).lower() not in rows, f"two rows for {cells[0]}"
            rows[match.group(1).lower()] = cells
    return rows


def _shown_default(value: object) -> str:
    """A default as the configuration table writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    root = str(PROJECT_ROOT) + "/"
    return text.removeprefix(root)


def test_every_setting_has_one_row_with_its_default() -> None:
    """docs/configuration.md has exactly one row per `DIGEST_*` setting, none for a name that
    is no setting, and each row's default is the code's (`unset` where there is none)."""
    rows = _setting_rows()
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert sorted(rows) == sorted(fields)
    wrong = []
    for name, field in fields.items():
        default = rows[name][1]
        if field.default is None:
            ok = default.startswith("unset")
        else:
            ok = f"`{_shown_default(field.default)}`" in default
        if not ok:
            wrong.append(f"DIGEST_{name.upper()}: {default!r}, code: {field.default!r}")
    assert wrong == []


def test_every_number_setting_has_a_range() -> None:
    """Each int or float setting is checked against a range at load (NUMBER_RANGES), so a
    negative rate or a zero pool is one clear line, not a hang or a traceback later."""
    from digest.config import NUMBER_RANGES

    numbers = {f.name for f in dataclasses.fields(Settings) if f.type in ("int", "float")}
    assert numbers - set(NUMBER_RANGES) == set()


# -- commands ----------------------------------------------------------------------------------


def _first_paragraph(command: click.Command) -> str:
    return " ".join((command.help or "").strip().split("\n\n")[0].split())


def _parameters(command: click.Command) -> list[str]:
    names = []
    for param in command.params:
        if isinstance(param, click.Option) and param.hidden:
            continue  # not in --help (a test's hook): not in the reference either
        if isinstance(param, click.Option):
            names.append("/".join(param.opts + param.secondary_opts))
        else:
            names.append(param.human_readable_name)
    return names


def _command_tree() -> dict[str, click.Command]:
    tree: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        tree[path] = command
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None, name
                walk(sub, f"{path} {name}")

    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, name
        walk(command, name)
    return tree


def test_command_table_matches_each_commands_own_help() -> None:
    """`digest --help` lists every command from the static table (so it loads no command
    module), and each line there is the first line of that command's own help."""
    from click.testing import CliRunner

    listing = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for name, (_module, _attribute, summary) in COMMANDS.items():
        assert f"{name} {summary.split()[0]}" in listing, name
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None, name
        own = (command.help or "").strip().split()
        assert own[:2] == summary.split()[:2], (name, own[:2], summary)


def test_the_command_reference_matches_every_commands_help() -> None:
    """docs/cli.md has one row per command and subcommand, none for a command that does not
    exist; each row says what the command's own help says first, and lists exactly its
    arguments and options, in order."""
    documented = {}
    for cells in _table_rows(_text(DOCS / "cli.md")):
        match = re.fullmatch(r"`digest ([a-z -]+)`", cells[0])
        if match:
            assert match.group(1) not in documented, f"two rows for {cells[0]}"
            documented[match.group(1)] = cells
    tree = _command_tree()
    assert sorted(documented) == sorted(tree)
    assert len(tree) > len(COMMANDS)  # the subcommands were walked too
    wrong = []
    for path, command in tree.items():
        description, parameters = documented[path][1], _spans(documented[path][2])
        if description != _first_paragraph(command):
            wrong.append(f"{path}: {description!r} != {_first_paragraph(command)!r}")
        if parameters != _parameters(command):
            wrong.append(f"{path}: {parameters} != {_parameters(command)}")
    assert wrong == []


# -- the API -----------------------------------------------------------------------------------


def test_the_api_table_lists_exactly_the_apps_routes() -> None:
    """docs/api.md has a row for each method and path under /api/ the app serves, and none
    for a route it does not (path parameters written as ID)."""
    from digest.web import create_app

    app = create_app(Settings(secret_key="docs-check-" + "k" * 32, database_url="sqlite://"))
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<[^>]+>", "ID", rule.rule)
            served.update(f"{m} {path}" for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
    documented = {
        spans[0]
        for cells in _table_rows(_text(DOCS / "api.md"))
        if (spans := _spans(cells[0])) and re.match(r"(GET|POST|PUT|PATCH|DELETE) /api/", spans[0])
    }
    assert len(served) >= 20
    assert sorted(documented) == sorted(served)


# -- architecture ------------------------------------------------------------------------------

ARCHITECTURE = _text(DOCS / "architecture.md")


def test_the_layer_table_is_the_enforced_layer_order() -> None:
    """The architecture page's table of layers is tests/test_layers.py's LAYERS, in order."""
    from tests.test_layers import LAYERS

    rows = [
        tuple(_spans(cells[1]))
        for cells in _table_rows(_section(ARCHITECTURE, "## Layers"))
        if cells[0].isdigit()
    ]
    assert rows == LAYERS


def test_every_module_is_on_the_architecture_page() -> None:
    """Each Python module of the package (but migrations, and empty `__init__.py` files)
    is named by its path on the architecture page, so a new one gets its line."""
    modules = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "digest").rglob("*.py"))
        if "migrations" not in path.parts and path.stat().st_size > 0
    ]
    assert len(modules) >= 50
    missing = [m for m in modules if f"`{m}`" not in ARCHITECTURE]
    assert missing == []
