"""One inbound message cannot exhaust the machine: each hostile message of
tests/feedback/hostile.py, at the 2 MB size limit, is handled by its entry (the SMTP handler
or the IMAP path) within a second or so and a few MiB, and changes nothing.

Each runs in a subprocess under an address-space limit: the stdlib's header parser took
6.3 GB for a 432 KB Subject, so a regression must fail here, not take the machine down.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.store.db import Database
from digest.transports import RecordingTransport
from tests.feedback.conftest import build_day, make_site
from tests.feedback.hostile import HOSTILE, MAX_BYTES, hostile_settings
from tests.properties import snapshot

ROOT = Path(__file__).resolve().parents[2]
#: The subprocess's address space: the interpreter and its imports take about 300 MB.
ADDRESS_SPACE = 1536 * 1024 * 1024
#: Generous for a loaded machine (the worst takes 0.2 s alone), far below the quadratic
#: parsers' minutes at this size.
SECONDS = 5.0
PEAK_BYTES = 100 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.fixture(scope="module")
def handled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every hostile message handled by one subprocess (one start-up for all) on a SQLite
    database with three readers and an edition sent to them; the figures by kind, and whether
    the tables were the same after as before."""
    url = f"sqlite:///{tmp_path_factory.mktemp('bounds') / 'bounds.db'}"
    settings = hostile_settings(url)
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        make_site(db, readers=3)
        send_until_done(db, EditionMailer(settings), build_day(db, settings, 0), RecordingTransport)
        before = snapshot(db)
        result = subprocess.run(
            [sys.executable, "-m", "tests.feedback.hostile", str(MAX_BYTES), url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=_limit_memory,
            check=False,
        )
        unchanged = snapshot(db) == before
    finally:
        db.dispose()
    assert result.returncode == 0, result.stderr[-2000:]
    figures = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {"figures": {f["kind"]: f for f in figures}, "unchanged": unchanged}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_message_is_handled_within_bounds(kind: str, handled: dict[str, Any]) -> None:
    """The message (2 MB, or all the limits allow) is refused or ignored in under 5 s and
    100 MiB of allocations, and the hostile messages left every table as it was."""
    figures = handled["figures"][kind]
    assert "error" not in figures, figures
    assert figures["bytes"] > MAX_BYTES * 0.9
    assert figures["verdict"] in ("refused", "ignored")
    assert figures["seconds"] < SECONDS, figures
    assert figures["peak"] < PEAK_BYTES, figures
    assert handled["unchanged"]
