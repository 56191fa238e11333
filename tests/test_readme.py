"""The README stays the front door: short, with the two set-up commands exactly as CI runs
them, and links into the documentation site that lead somewhere. The manual's own checks
(settings, commands, paths, links) are in tests/test_docs.py."""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/digest demo"
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
)
#: The README is the way in, not the manual; past this it is turning into one again.
MAX_LINES = 300


def test_readme_stays_short() -> None:
    """README.md is under 300 lines: the manual belongs in docs/."""
    lines = README.count("\n")
    assert 50 < lines < MAX_LINES, lines


def test_readme_has_the_two_commands_verbatim() -> None:
    """Both set-up commands stand on lines of their own in the README, and the test command
    is the one .ci/run runs, character for character."""
    lines = README.splitlines()
    assert DEMO_COMMAND in lines
    assert TEST_COMMAND in lines
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == TEST_COMMAND


def _anchors(page: Path) -> set[str]:
    """The ids MkDocs gives the headings of ``page`` (its default ``toc`` slugs)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slugify(m.group(1).strip(), "-") for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_readme_links_lead_to_existing_pages_and_headings() -> None:
    """Every relative link in the README names a file that exists, and a heading of that
    page where it names one (the site's own links are checked by its strict build)."""
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(relative) >= 15, relative
    broken = []
    for link in relative:
        target, _, anchor = link.partition("#")
        page = ROOT / target
        if not page.is_file() or (anchor and anchor not in _anchors(page)):
            broken.append(link)
    assert broken == []
    # Every page of the site is one step away from the README, through docs/index.md.
    assert "docs/index.md" in relative
