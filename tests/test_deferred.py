"""Recipients a server deferred (4xx) are shown, not hidden: `send` and `status` say how many
and when they are tried next (in the list's zone and UTC), and `send --retry-now` (and the
API's retry-now) tries them at once, each try still counted."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.cli import cli
from digest.cli.sending import when_words
from digest.config import Settings
from digest.edition import lifecycle
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Article, Delivery, DeliveryStatus, Subscriber, utcnow
from digest.transports import RecordingTransport
from tests.conftest import SmtpSink

NOW = utcnow()
ZONE = "Asia/Karachi"
#: Today in Karachi, with a story published half an hour ago.
NEXT_TRY = re.compile(
    r"1 deferred, next try at (\d{4}-\d\d-\d\d )?\d\d:\d\d Asia/Karachi "
    r"\((\d{4}-\d\d-\d\d )?\d\d:\d\d UTC\)"
)


def _site(db: Database) -> None:
    """A list in Karachi with one story of today and two readers."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"], timezone=ZONE)
        session.add(Article(url="https://n.example/1", section_id=section.id, headline="Story",
                            teaser="", published_at=NOW - dt.timedelta(minutes=30)))  # fmt: skip
        catalog.subscribe(session, daily, "ann@example.com")
        catalog.subscribe(session, daily, "busy@example.com")


class Operator:
    """Runs `digest ...` with the settings in the environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def run(
    db_url: str, tmp_path: Path, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Operator:
    """An operator on a site where busy@ is deferred once (451), then accepted."""
    monkeypatch.chdir(tmp_path)
    db = Database(db_url)
    db.upgrade()
    _site(db)
    db.dispose()
    smtp_server.codes["busy@example.com"] = [451, 250]
    return Operator(
        {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SMTP_URL": smtp_server.url,
            "DIGEST_SECRET_KEY": "deferred-test-secret",
            "DIGEST_BASE_URL": "https://news.example",
            "DIGEST_FROM_ADDRESS": "news@news.example",
        }
    )


def test_deferred_recipient_is_shown_and_retried_now(run: Operator, smtp_server: SmtpSink) -> None:
    """After a 451, `send` says "1 deferred, next try at HH:MM Asia/Karachi (HH:MM UTC)" (not
    that everyone has it), a second `send` says it again, `status` gives the same with the
    command that retries; `send --retry-now` sends it at once, its second attempt."""
    first = run("send", "--list", "daily").output
    assert "1 sent, 1 deferred" in first and NEXT_TRY.search(first), first
    again = run("send", "--list", "daily").output
    assert NEXT_TRY.search(again) and "already has it" not in again, again
    assert "--retry-now` tries now" in again
    status = run("status").output
    assert "1 recipient deferred by the server; next try at " in status
    # The edition's day is Karachi's (UTC+5): after 19:00 UTC, tomorrow's date in UTC terms.
    day = dt.datetime.now(ZoneInfo(ZONE)).date()
    assert f"`digest send --list daily --date {day} --retry-now` tries now" in status
    assert len(smtp_server.to("busy@example.com")) == 0

    retried = run("send", "--list", "daily", "--retry-now").output
    assert "1 deferred recipient to be tried now" in retried and "1 sent" in retried, retried
    assert len(smtp_server.to("busy@example.com")) == 1
    assert "has nobody deferred" in run("send", "--list", "daily", "--retry-now").output
    db = Database(run.env["DIGEST_DATABASE_URL"])
    with db.session() as session:
        attempts = session.scalar(
            select(Delivery.attempts).join(Subscriber).where(Subscriber.email == "busy@example.com")
        )
    db.dispose()
    assert attempts == 2


def test_retry_now_refuses_other_options_and_unbuilt_days(run: Operator) -> None:
    """--retry-now takes only --list and --date; a day with no edition is one line, exit 1."""
    mixed = run("send", "--list", "daily", "--retry-now", "--dry-run", ok=False)
    assert mixed.exit_code == 1 and "--retry-now takes only --list and --date" in mixed.output
    missing = run("send", "--list", "daily", "--date", "2026-01-01", "--retry-now", ok=False)
    assert missing.exit_code == 1 and "unknown edition: daily 2026-01-01" in missing.output


def test_retry_now_keeps_a_paused_edition_paused(db: Database, settings: Settings) -> None:
    """On a paused edition the deferred rows are made due but nothing is sent until resume;
    a finished or cancelled edition has none to retry."""
    _site(db)
    core = Digest(settings.replace(retry_base_seconds=300), db=db,
                  transport_factory=lambda: transport)  # fmt: skip
    transport = RecordingTransport({"busy@example.com": 451})
    start = core.start("daily")
    core.pause(start.edition_id)
    count, dispatched = core.retry_now(start.edition_id)
    assert (count, dispatched) == (1, None)
    with db.session() as session:
        row = session.scalars(
            select(Delivery).where(Delivery.status == DeliveryStatus.DEFERRED)
        ).one()
        assert row.next_attempt_at is not None and row.next_attempt_at <= utcnow()
        assert row.attempts == 1
        lifecycle.cancel(session, start.edition_id)
    assert core.retry_now(start.edition_id) == (0, None)


def test_when_words_name_the_zone_and_utc() -> None:
    """A time today in the zone is HH:MM in both clocks; another day carries its date."""
    now = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)  # 11:00 in Karachi
    assert when_words(dt.datetime(2026, 11, 24, 9, 35), ZONE, now) == (
        "14:35 Asia/Karachi (09:35 UTC)"
    )
    assert when_words(dt.datetime(2026, 11, 24, 20, 0), ZONE, now) == (
        "2026-11-25 01:00 Asia/Karachi (2026-11-24 20:00 UTC)"
    )
    assert when_words(dt.datetime(2026, 11, 24, 9, 35), "UTC", now) == "09:35 UTC"
