"""Golden files: the exact HTML and text of fixed editions, reviewed as diffs.

Regenerate after an intended change with ``DIGEST_REGEN_GOLDEN=1 pytest tests/render``
and read the diff of ``tests/data/render/`` before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.render import cases

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "render"


@pytest.mark.parametrize("case", sorted(cases.CASES))
def test_rendered_parts_match_golden_files(case: str) -> None:
    """The HTML and text parts of each fixed edition are byte for byte the reviewed ones."""
    html, text = cases.filled(cases.CASES[case]())
    folder = GOLDEN / case
    if os.environ.get("DIGEST_REGEN_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "digest.html").write_text(html, encoding="utf-8")
        (folder / "digest.txt").write_text(text, encoding="utf-8")
    assert html == (folder / "digest.html").read_text(encoding="utf-8")
    assert text == (folder / "digest.txt").read_text(encoding="utf-8")
