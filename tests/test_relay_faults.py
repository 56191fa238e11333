"""A relay that drops connections mid-DATA or after the final dot (tests/flaky_relay.py), met by
the batch loop in this process: rows come back at once, a message the relay may have taken is
sent again and marked, and a run of failures pauses an edition only once it has lasted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from digest.config import Settings
from digest.edition import lifecycle
from digest.edition.build import build_edition
from digest.send.batch import send_batch, send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    StopReason,
    Subscriber,
    utcnow,
)
from digest.transports import RecordingTransport, SmtpConfig, SmtpTransport, Transport
from tests.builders import ledger_counts
from tests.flaky_relay import Fault, FlakyRelay

DAY = dt.date(2026, 11, 24)


def _edition(db: Database, settings: Settings, subscribers: int) -> int:
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="Story",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 10)))  # fmt: skip
        for i in range(subscribers):
            catalog.subscribe(session, mailing_list, f"r{i}@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        return edition.id


def _rows(db: Database, edition_id: int) -> dict[str, tuple[str, int, int]]:
    """{address: (status, attempts, unanswered)} of the edition's rows."""
    with db.session() as session:
        found = session.execute(
            select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.unanswered)
            .join(Subscriber)
            .where(Delivery.edition_id == edition_id)
        ).all()
    return {email: (status.value, attempts, unanswered) for email, status, attempts, unanswered
            in found}  # fmt: skip


def _smtp(relay: FlakyRelay) -> Transport:
    return SmtpTransport(SmtpConfig.from_url(relay.url))


def test_message_dropped_after_the_dot_is_sent_again_and_marked(
    db: Database, settings: Settings
) -> None:
    """The relay takes r1's message and resets without answering: the batch gives the rest
    back at once, r1 is sent again (a second copy only for it), and its row records one
    unanswered attempt, which the edition's summary counts."""
    edition_id = _edition(db, settings, 5)
    with FlakyRelay() as relay:
        relay.flaky((Fault.AFTER_DOT,), quotas=(1,), times=1)
        first = send_batch(db, EditionMailer(settings), edition_id, _smtp(relay))
        assert first.sent == 1 and first.deferred == 1 and first.error
        assert "did not answer" in first.error
        # Nothing is left leased: the rows not reached are due again now.
        assert ledger_counts(db, edition_id) == {"sent": 1, "deferred": 1, "pending": 3}
        send_until_done(db, EditionMailer(settings), edition_id, lambda: _smtp(relay))
    everyone = {f"r{i}@example.com" for i in range(5)}
    assert relay.answered() == dict.fromkeys(everyone, 1)
    assert relay.unanswered() == {"r1@example.com": 1}
    rows = _rows(db, edition_id)
    assert rows["r1@example.com"] == ("sent", 2, 1)
    assert all(rows[a] == ("sent", 1, 0) for a in everyone - {"r1@example.com"})
    assert Digest(settings, db=db).summary(edition_id).unanswered == 1


def test_drops_in_the_middle_of_data_deliver_nobody_twice(db: Database, settings: Settings) -> None:
    """Resets in the middle of DATA (the relay has nothing) on three connections in a row:
    every recipient is answered once and the relay took no message twice."""
    edition_id = _edition(db, settings, 6)
    with FlakyRelay() as relay:
        relay.flaky((Fault.MID_DATA,), quotas=(0, 2, 1), times=3)
        total = send_until_done(db, EditionMailer(settings), edition_id, lambda: _smtp(relay),
                                retries=5, backoff=lambda _: 0.0)  # fmt: skip
    assert total.error is None
    assert [f for _, f in relay.faults] == [Fault.MID_DATA] * 3
    assert relay.answered() == {f"r{i}@example.com": 1 for i in range(6)}
    assert len(relay.taken) == 6
    assert ledger_counts(db, edition_id) == {"sent": 6}


def test_a_message_never_answered_fails_after_max_attempts(
    db: Database, settings: Settings
) -> None:
    """A relay that takes every message and never answers: each try counts, so after
    DIGEST_MAX_ATTEMPTS copies the row is failed rather than sent forever; the short run of
    failures does not pause the edition."""
    edition_id = _edition(db, settings, 1)
    mailer = EditionMailer(settings.replace(max_attempts=3))
    with FlakyRelay() as relay:
        relay.flaky((Fault.AFTER_DOT,))
        send_until_done(db, mailer, edition_id, lambda: _smtp(relay), retries=10,
                        backoff=lambda _: 0.0)  # fmt: skip
    assert relay.unanswered() == {"r0@example.com": 3} and not relay.answered()
    assert _rows(db, edition_id) == {"r0@example.com": ("failed", 3, 3)}
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        assert edition.status == EditionStatus.DONE
        assert edition.stop_reason != StopReason.TRANSPORT_ERRORS
        failed = session.scalars(select(Delivery.last_error)).one()
    assert failed is not None and "did not answer" in failed


def test_a_run_of_transport_errors_pauses_only_once_it_has_lasted(
    db: Database, settings: Settings
) -> None:
    """Six failures within seconds do not pause the edition (a relay's hiccup); the next one
    once the run has lasted DIGEST_PAUSE_AFTER_ERROR_SECONDS does, saying how long."""
    edition_id = _edition(db, settings, 3)
    mailer = EditionMailer(settings.replace(pause_after_errors=2, pause_after_error_seconds=60))
    down = RecordingTransport(fail_after=0)
    send_until_done(db, mailer, edition_id, lambda: down, retries=5, backoff=lambda _: 0.0)
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        assert edition.status == EditionStatus.READY
        assert edition.stop_reason == StopReason.TRANSPORT_ERROR
        assert edition.transport_error_streak == 6 and edition.transport_errors_since is not None
        edition.transport_errors_since = utcnow() - dt.timedelta(minutes=3)
    send_batch(db, mailer, edition_id, down)
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        assert edition.status == EditionStatus.PAUSED
        assert edition.stop_reason == StopReason.TRANSPORT_ERRORS
        assert edition.status_reason and "7 transport errors in a row over 3 min" in (
            edition.status_reason
        )
        lifecycle.resume(session, edition_id)
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        assert edition.transport_error_streak == 0 and edition.transport_errors_since is None
    assert ledger_counts(db, edition_id) == {"pending": 3}


def test_a_batch_that_gets_through_ends_runs_other_batches_began(
    db: Database, settings: Settings
) -> None:
    """A batch whose copy of the runs is stale (others failed since it began) still clears
    them with its first message through, so an old run cannot pause the edition later."""
    edition_id = _edition(db, settings, 2)
    with db.session() as session:
        session.execute(
            update(Edition).values(
                transport_error_streak=4,
                refusal_streak=3,
                transport_errors_since=utcnow() - dt.timedelta(hours=1),
                stop_reason=StopReason.TRANSPORT_ERROR,
                status_reason="transport error: lost",
            )
        )
    mailer = EditionMailer(settings.replace(batch_size=1))
    send_batch(db, mailer, edition_id, RecordingTransport())
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        assert (edition.transport_error_streak, edition.refusal_streak) == (0, 0)
        assert edition.transport_errors_since is None and edition.stop_reason is None
        assert session.scalars(select(Delivery.status)).all().count(DeliveryStatus.SENT) == 1


def test_batch_retries_on_workers_are_short_jittered_and_bounded() -> None:
    """A batch task whose transport failed tries again within 1.5 s at first and never more
    than 22.5 s apart, jittered; all its retries together stay within two minutes, after
    which the sweep takes over."""
    from digest.worker.tasks import BATCH_RETRIES, BATCH_RETRY_CAP, batch_retry_delay

    delays = [[batch_retry_delay(n) for n in range(BATCH_RETRIES)] for _ in range(200)]
    assert all(0.5 <= run[0] <= 1.5 for run in delays)
    assert max(max(run) for run in delays) <= 1.5 * BATCH_RETRY_CAP
    assert len({round(run[-1], 3) for run in delays}) > 100  # jittered, not in lockstep
    assert max(sum(run) for run in delays) < 120
