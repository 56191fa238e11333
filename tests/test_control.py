"""The operator's hold on a send: pause, resume, cancel, retry-failed, automatic pauses,
subscribers' own time zones, and the live progress line."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from digest.cli.output import progress_line
from digest.config import Settings
from digest.edition import ledger, lifecycle
from digest.edition.build import build_edition
from digest.errors import DigestError
from digest.send.batch import send_batch, send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, Delivery, Edition, EditionStatus, Subscriber, utcnow
from digest.transports import RecordingTransport
from tests.builders import ledger_counts

DAY = dt.date(2026, 11, 24)


def _edition(db: Database, settings: Settings, subscribers: int, **list_options: str) -> int:
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"], **list_options)
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="Story",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 10)))  # fmt: skip
        for i in range(subscribers):
            catalog.subscribe(session, mailing_list, f"r{i:03d}@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        return edition.id


def _status(db: Database, edition_id: int) -> tuple[EditionStatus, str | None]:
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        return edition.status, edition.status_reason


def test_paused_edition_sends_nothing_until_resumed(db: Database, settings: Settings) -> None:
    """A paused edition's batches claim nothing; after resume the rest go out, none twice."""
    edition_id = _edition(db, settings, 5)
    mailer, transport = EditionMailer(settings.replace(batch_size=2)), RecordingTransport()
    send_batch(db, mailer, edition_id, transport)
    with db.session() as session:
        lifecycle.pause(session, edition_id)
    assert send_batch(db, mailer, edition_id, transport).claimed == 0
    with db.session() as session:
        lifecycle.resume(session, edition_id)
    send_until_done(db, mailer, edition_id, lambda: transport)
    assert sorted(env.recipient for env, _ in transport.sent) == [
        f"r{i:03d}@example.com" for i in range(5)
    ]
    assert _status(db, edition_id)[0] == EditionStatus.DONE


def test_cancel_skips_the_unsent_and_cannot_be_resumed(db: Database, settings: Settings) -> None:
    """Cancelling marks every unsent row skipped; resuming a cancelled edition is refused."""
    edition_id = _edition(db, settings, 4)
    send_batch(db, EditionMailer(settings.replace(batch_size=1)), edition_id, RecordingTransport())
    with db.session() as session:
        _, skipped = lifecycle.cancel(session, edition_id)
    assert skipped == 3 and ledger_counts(db, edition_id) == {"sent": 1, "skipped": 3}
    with db.session() as session, pytest.raises(DigestError, match="not paused"):
        lifecycle.resume(session, edition_id)


def test_retry_failed_requeues_only_failed_rows(db: Database, settings: Settings) -> None:
    """retry-failed sends again to the rows that failed, not to the sent or bounced ones."""
    edition_id = _edition(db, settings, 4)
    mailer = EditionMailer(settings.replace(max_attempts=1))
    first = RecordingTransport({"r000@example.com": 451, "r001@example.com": 550})
    send_until_done(db, mailer, edition_id, lambda: first)
    assert ledger_counts(db, edition_id) == {"sent": 2, "failed": 1, "bounced": 1}
    with db.session() as session:
        _, count = lifecycle.retry_failed(session, edition_id)
    assert count == 1
    second = RecordingTransport()
    send_until_done(db, mailer, edition_id, lambda: second)
    assert [env.recipient for env, _ in second.sent] == ["r000@example.com"]
    assert ledger_counts(db, edition_id) == {"sent": 3, "bounced": 1}


def test_refusals_in_a_row_pause_the_edition(db: Database, settings: Settings) -> None:
    """When every recipient is refused, the edition pauses with the reason instead of bouncing
    the whole list."""
    edition_id = _edition(db, settings, 10)
    refuse_all = RecordingTransport({f"r{i:03d}@example.com": 554 for i in range(10)})
    send_until_done(db, EditionMailer(settings.replace(pause_after_refusals=3)), edition_id,
                    lambda: refuse_all)  # fmt: skip
    status, reason = _status(db, edition_id)
    assert status == EditionStatus.PAUSED and reason and "3 recipients refused" in reason
    assert ledger_counts(db, edition_id) == {"bounced": 3, "pending": 7}


def test_transport_errors_in_a_row_pause_the_edition(db: Database, settings: Settings) -> None:
    """A transport that keeps failing pauses the edition after the configured number of tries
    (with no minimum run time), with the last error as the reason, and loses no row."""
    edition_id = _edition(db, settings, 3)
    mailer = EditionMailer(settings.replace(pause_after_errors=2, pause_after_error_seconds=0))
    send_until_done(db, mailer, edition_id, lambda: RecordingTransport(fail_after=0),
                    retries=5, backoff=lambda _: 0.0)  # fmt: skip
    status, reason = _status(db, edition_id)
    assert status == EditionStatus.PAUSED and reason and "2 transport errors" in reason
    assert ledger_counts(db, edition_id) == {"pending": 3}


def test_subscriber_time_zone_holds_their_copy(db: Database, settings: Settings) -> None:
    """A subscriber in another zone gets the edition at the list's send time there: held until
    then, sent by the first batch after."""
    edition_id = _edition(db, settings, 0, timezone="UTC", send_at="07:00")
    with db.session() as session:
        mailing_list = catalog.get_list(session, "daily")
        far, _ = catalog.subscribe(session, mailing_list, "far@example.com")
        catalog.subscribe(session, mailing_list, "near@example.com")
        far.timezone = "Pacific/Honolulu"  # 07:00 there is 17:00 UTC
        # An edition for a day still ahead, so the subscriber's send time has not come.
        ahead = utcnow().date() + dt.timedelta(days=3)
        session.execute(update(Edition).values(edition_date=ahead))
        session.flush()
        ledger.create_ledger(session, session.get_one(Edition, edition_id))
        held = session.scalars(
            select(Delivery.next_attempt_at).join(Subscriber).where(Subscriber.id == far.id)
        ).one()
    assert held == dt.datetime.combine(ahead, dt.time(17, 0))
    transport = RecordingTransport()
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    assert [env.recipient for env, _ in transport.sent] == ["near@example.com"]
    with db.session() as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow()))
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    assert [env.recipient for env, _ in transport.sent][1:] == ["far@example.com"]


def test_progress_line_shows_share_rate_and_eta() -> None:
    """The watch line has the final share, every count, the rate and the time left."""
    counts = {"pending": 500, "leased": 0, "deferred": 0, "sent": 450, "bounced": 25,
              "failed": 25, "skipped": 0}  # fmt: skip
    line = progress_line(counts, rate=100.0, width=10)
    assert line.startswith("[#####.....]  50.0%")
    assert "450 sent" in line and "500 pending" in line
    assert "100 msg/s" in line and "ETA 0:00:05" in line
