"""The ledger and batch sending: once per subscriber, outcomes recorded, faults survived."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select, update

from digest.config import Settings
from digest.edition import ledger
from digest.edition.build import build_edition
from digest.send.batch import send_batch, send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.core import Digest
from digest.service.dispatch import RecordingDispatcher
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from digest.transports import RecordingTransport
from digest.transports.base import Envelope, SendResult
from digest.transports.smtp import SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink

DAY = dt.date(2026, 11, 24)


def _site(
    db: Database, settings: Settings, subscribers: int = 5, articles: bool = True
) -> tuple[int, int]:
    """A list 'daily' (UTC) with two sections, articles on DAY, and N subscribers."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        sports, _ = catalog.add_section(session, "sports", "Sports")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national", "sports"])
        if articles:
            for i, section in enumerate([national, national, sports]):
                session.add(
                    Article(
                        url=f"https://n.example/{i}",
                        guid=f"g{i}",
                        section_id=section.id,
                        headline=f"Story {i} in {section.name}",
                        teaser="A teaser.",
                        published_at=dt.datetime(2026, 11, 24, 9 + i),
                    )
                )
        for i in range(subscribers):
            catalog.subscribe(session, mailing_list, f"reader{i}@example.com", f"Reader {i}")
        session.flush()
        edition, created = build_edition(session, settings, mailing_list, DAY)
        assert created
        return mailing_list.id, edition.id


def _statuses(db: Database, edition_id: int) -> dict[str, int]:
    with db.session() as session:
        return {k: v for k, v in ledger.counts(session, edition_id).items() if v}


def test_building_twice_creates_one_edition_and_one_row_each(
    db: Database, settings: Settings
) -> None:
    """A second build of the same list and day returns the first edition and adds no rows."""
    _, edition_id = _site(db, settings, subscribers=4)
    with db.session() as session:
        mailing_list = catalog.get_list(session, "daily")
        again, created = build_edition(session, settings, mailing_list, DAY)
    assert (again.id, created) == (edition_id, False)
    assert _statuses(db, edition_id) == {"pending": 4}


def test_day_without_articles_is_recorded_empty(db: Database, settings: Settings) -> None:
    """No articles that day: the edition is stored as empty and has no ledger rows."""
    _, edition_id = _site(db, settings, subscribers=3, articles=False)
    with db.session() as session:
        mailing_list = catalog.get_list(session, "daily")
        edition, _ = build_edition(session, settings, mailing_list, DAY)
    assert edition.status == EditionStatus.EMPTY
    assert _statuses(db, edition_id) == {}


def test_only_confirmed_active_unsuppressed_subscribers_get_rows(
    db: Database, settings: Settings
) -> None:
    """Pending, unsubscribed, bounced and suppressed addresses are left out of the ledger."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        section = catalog.get_section(session, "national")
        session.add(
            Article(
                url="https://n.example/a",
                section_id=section.id,
                headline="H",
                teaser="",
                published_at=dt.datetime(2026, 11, 24, 9),
            )
        )
        for i in range(5):
            catalog.subscribe(session, mailing_list, f"r{i}@example.com")
        session.flush()
        subs = {s.email: s for s in session.scalars(select(Subscriber))}
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == subs["r0@example.com"].id)
            .values(status=SubscriptionStatus.PENDING)
        )
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == subs["r1@example.com"].id)
            .values(status=SubscriptionStatus.UNSUBSCRIBED)
        )
        subs["r2@example.com"].status = SubscriberStatus.BOUNCED
        session.add(Suppression(email="r3@example.com", reason="complaint"))
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        emails = session.scalars(
            select(Subscriber.email).join(Delivery).where(Delivery.edition_id == edition.id)
        ).all()
    assert emails == ["r4@example.com"]


def test_claims_never_overlap_and_expired_leases_return(db: Database, settings: Settings) -> None:
    """Two claims get disjoint rows; a lease that ran out is claimable again, a live one is not."""
    _, edition_id = _site(db, settings, subscribers=10)
    lease = dt.timedelta(seconds=60)
    with db.sessionmaker() as session:
        _, first = ledger.claim(session, edition_id, 6, lease)
        _, second = ledger.claim(session, edition_id, 6, lease)
        _, third = ledger.claim(session, edition_id, 6, lease)
        assert len(first) == 6 and len(second) == 4 and third == []
        assert not set(first) & set(second)
        # The worker holding `first` died: its lease runs out.
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(first))
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )
        session.commit()
        _, reclaimed = ledger.claim(session, edition_id, 20, lease)
    assert sorted(reclaimed) == sorted(first)


def test_send_records_each_outcome_and_bounce_suppresses(db: Database, settings: Settings) -> None:
    """250 is sent, 550 bounces and suppresses the address, 451 defers; none stops the batch."""
    _, edition_id = _site(db, settings, subscribers=5)
    transport = RecordingTransport({"reader1@example.com": 550, "reader3@example.com": 451})
    report = send_batch(db, EditionMailer(settings), edition_id, transport)
    assert (report.sent, report.bounced, report.deferred) == (3, 1, 1)
    assert _statuses(db, edition_id) == {"sent": 3, "bounced": 1, "deferred": 1}
    with db.session() as session:
        assert session.scalar(select(Suppression.email)) == "reader1@example.com"
        bounced = session.scalars(
            select(Subscriber).where(Subscriber.email == "reader1@example.com")
        ).one()
        assert bounced.status == SubscriberStatus.BOUNCED


def test_deferred_recipient_is_retried_then_gives_up(db: Database, settings: Settings) -> None:
    """A 4xx is retried when due; after max_attempts 4xx answers the row is failed."""
    _, edition_id = _site(db, settings, subscribers=2)
    mailer = EditionMailer(settings.replace(max_attempts=3))
    transport = RecordingTransport({"reader0@example.com": 451})
    for _ in range(3):
        send_batch(db, mailer, edition_id, transport)
    assert _statuses(db, edition_id) == {"sent": 1, "failed": 1}
    # The server stops deferring: nothing left to retry, nobody sent twice.
    transport.codes.clear()
    send_batch(db, mailer, edition_id, transport)
    assert [env.recipient for env, _ in transport.sent] == ["reader1@example.com"]


def test_late_unsubscribe_is_honoured(db: Database, settings: Settings) -> None:
    """An unsubscribe that lands after the ledger was written skips that recipient."""
    _, edition_id = _site(db, settings, subscribers=3)
    with db.session() as session:
        sub = session.scalars(
            select(Subscriber).where(Subscriber.email == "reader2@example.com")
        ).one()
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == sub.id)
            .values(status=SubscriptionStatus.UNSUBSCRIBED)
        )
        session.add(Suppression(email="reader0@example.com", reason="operator"))
    transport = RecordingTransport()
    send_batch(db, EditionMailer(settings), edition_id, transport)
    assert [env.recipient for env, _ in transport.sent] == ["reader1@example.com"]
    assert _statuses(db, edition_id) == {"sent": 1, "skipped": 2}


def test_transport_failure_keeps_unsent_rows_and_resume_sends_each_once(
    db: Database, settings: Settings
) -> None:
    """A connection lost mid-batch gives the unsent rows back; a rerun finishes with no repeats."""
    _, edition_id = _site(db, settings, subscribers=6)
    mailer = EditionMailer(settings)
    broken = RecordingTransport(fail_after=2)
    report = send_batch(db, mailer, edition_id, broken)
    assert report.sent == 2 and report.error
    assert _statuses(db, edition_id) == {"sent": 2, "pending": 4}
    healthy = RecordingTransport()
    total = send_until_done(db, mailer, edition_id, lambda: healthy)
    assert total.sent == 4
    everyone = [env.recipient for env, _ in broken.sent + healthy.sent]
    assert sorted(everyone) == sorted(f"reader{i}@example.com" for i in range(6))
    assert _statuses(db, edition_id) == {"sent": 6}


def test_section_preferences_get_their_own_variant(db: Database, settings: Settings) -> None:
    """A subscriber who chose only Sports gets a digest without National; others get both."""
    _, edition_id = _site(db, settings, subscribers=2)
    with db.session() as session:
        sub = session.scalars(
            select(Subscriber).where(Subscriber.email == "reader0@example.com")
        ).one()
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == sub.id)
            .values(sections=["sports"])
        )
    transport = RecordingTransport()
    send_batch(db, EditionMailer(settings), edition_id, transport)
    texts = {env.recipient: _text_part(data) for env, data in transport.sent}
    assert "Story 0 in National" not in texts["reader0@example.com"]
    assert "Story 2 in Sports" in texts["reader0@example.com"]
    assert "Story 0 in National" in texts["reader1@example.com"]


def _text_part(data: bytes) -> str:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return str(msg.get_body(("plain",)).get_content())


def test_sweep_requeues_only_work_nobody_holds(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep queues expired leases at once, leaves a busy edition's pending rows alone,
    and queues every due row of an edition that stalled."""
    _, edition_id = _site(db, settings, subscribers=5)
    dispatcher = RecordingDispatcher()
    core = Digest(settings.replace(stall_seconds=30), db=db, dispatcher=dispatcher)
    now = utcnow()
    with db.sessionmaker() as session:
        _, held = ledger.claim(session, edition_id, 2, dt.timedelta(seconds=60))
    core.sweep(now)
    assert dispatcher.sent == []  # a live lease and a fresh claim: someone is on it
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == held[0])
            .values(lease_until=now - dt.timedelta(seconds=1))
        )
    core.sweep(now)
    assert dispatcher.sent == [(edition_id, 1)]  # only the expired lease
    dispatcher.sent.clear()
    core.sweep(now + dt.timedelta(seconds=120))
    assert dispatcher.sent == [(edition_id, 5)]  # every lease ran out and nobody claims: stalled


def test_scheduler_builds_each_list_once_at_its_send_time(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beat's check builds nothing before the list's local send time, builds and queues the
    edition once after it, and firing again creates nothing new."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        catalog.add_list(session, "daily", "Daily", ["national"],
                       timezone="Asia/Karachi", send_at="07:00")  # fmt: skip
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="H",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 1)))  # fmt: skip
    dispatcher = RecordingDispatcher()
    core = Digest(settings, db=db, dispatcher=dispatcher)
    # 01:30 UTC is 06:30 in Karachi: too early.
    assert core.send_due(dt.datetime(2026, 11, 24, 1, 30)) == []
    started = core.send_due(dt.datetime(2026, 11, 24, 2, 5))
    assert len(started) == 1 and [e for e, _ in dispatcher.sent] == started
    assert core.send_due(dt.datetime(2026, 11, 24, 2, 6)) == []
    assert [e for e, _ in dispatcher.sent] == started


def test_scheduler_skips_a_list_with_a_broken_template(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One list's broken template stops that list's edition only: the next list is built."""
    broken = tmp_path / "broken"
    (broken / "email").mkdir(parents=True)
    (broken / "email" / "digest.html").write_text("{% if %}")
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        catalog.add_list(session, "aaa", "First", ["national"], template_dir=str(broken))
        catalog.add_list(session, "bbb", "Second", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="H",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
    core = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    started = core.send_due(dt.datetime(2026, 11, 24, 12, 0))
    with db.session() as session:
        built = session.scalars(select(Edition.list_id)).all()
        second = catalog.get_list(session, "bbb").id
    assert built == [second] and len(started) == 1


def test_sent_digest_links_to_what_the_section_limit_left_out(
    db: Database, settings: Settings
) -> None:
    """The "N more in Section" link counted at build time reaches the sent message too, not
    only the preview."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"], per_section=1)
        for i in range(3):
            session.add(Article(url=f"https://n.example/{i}", section_id=section.id,
                                headline=f"Story {i}", teaser="",
                                published_at=dt.datetime(2026, 11, 24, 9 + i)))  # fmt: skip
        catalog.subscribe(session, mailing_list, "reader@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        edition_id = edition.id
    transport = RecordingTransport()
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    ((_, data),) = transport.sent
    assert "2 more in National" in _text_part(data)


class _Paced(RecordingTransport):
    """Records like RecordingTransport, taking ``pause`` seconds per message; ``hang`` maps a
    message's position (1-based) to a longer pause, ``on_send`` runs before each message."""

    def __init__(
        self,
        pause: float = 0.0,
        hang: dict[int, float] | None = None,
        on_send: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.pause = pause
        self.hang = hang or {}
        self.on_send = on_send
        self.calls = 0

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        self.calls += 1
        if self.on_send:
            self.on_send(self.calls)
        time.sleep(self.hang.get(self.calls, self.pause))
        return super().send(envelope, message)


def test_a_batch_slower_than_its_lease_keeps_its_rows(db: Database, settings: Settings) -> None:
    """The heartbeat renews a working batch's lease: a claim made after the first lease ran out
    gets none of its rows, and every row is sent once."""
    _, edition_id = _site(db, settings, subscribers=10)
    mailer = EditionMailer(settings.replace(lease_seconds=3, commit_every=4))
    stolen: list[int] = []

    def rival_claims(position: int) -> None:
        if position == 9:  # about 4 s in: past the 3 s the claim leased the rows for
            with db.sessionmaker() as session:
                stolen.extend(ledger.claim(session, edition_id, 10, dt.timedelta(seconds=60))[1])

    transport = _Paced(pause=0.5, on_send=rival_claims)
    report = send_batch(db, mailer, edition_id, transport)
    assert stolen == []
    assert report.sent == 10 and not report.error
    assert _statuses(db, edition_id) == {"sent": 10}


def test_a_hung_batch_lets_its_lease_go_and_stops(db: Database, settings: Settings) -> None:
    """A batch stuck on one message longer than batch_stuck_seconds stops renewing its lease
    and, once it may have lapsed, sends nothing more: its unsent rows are given back."""
    _, edition_id = _site(db, settings, subscribers=6)
    mailer = EditionMailer(settings.replace(lease_seconds=3, batch_stuck_seconds=0.5))
    transport = _Paced(hang={2: 2.5})
    report = send_batch(db, mailer, edition_id, transport)
    assert transport.calls == 2
    assert report.error and "lease" in report.error
    assert _statuses(db, edition_id) == {"sent": 2, "pending": 4}


class _DiesAfter(SmtpTransport):
    """An SMTP transport whose process is SIGKILLed as it is about to send message n + 1."""

    def __init__(self, config: SmtpConfig, n: int) -> None:
        super().__init__(config)
        self.left = n

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        self.left -= 1
        return super().send(envelope, message)


def _send_then_die(settings: Settings, edition_id: int, smtp_url: str, n: int) -> None:
    db = Database.from_settings(settings)
    send_batch(
        db, EditionMailer(settings), edition_id, _DiesAfter(SmtpConfig.from_url(smtp_url), n)
    )


def test_worker_killed_between_commits_resends_only_the_uncommitted_group(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """commit_every=5: a sender SIGKILLed after 13 accepted messages had committed 10; the rows
    of the other 3 come back with the lease and are sent again: fewer than 5 resends."""
    _, edition_id = _site(db, settings, subscribers=20)
    grouped = settings.replace(commit_every=5, commit_interval=60.0, smtp_url=smtp_server.url)
    child = mp.get_context("spawn").Process(
        target=_send_then_die, args=(grouped, edition_id, smtp_server.url, 13)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert _statuses(db, edition_id) == {"sent": 10, "leased": 10}
    with db.session() as session:  # the dead sender's lease runs out
        session.execute(update(Delivery).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    mailer = EditionMailer(grouped)
    send_until_done(
        db, mailer, edition_id, partial(SmtpTransport, SmtpConfig.from_url(smtp_server.url))
    )
    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert set(copies) == {f"reader{i}@example.com" for i in range(20)}
    assert {a for a, n in copies.items() if n > 1} == {
        f"reader{i}@example.com" for i in (10, 11, 12)
    }
    assert _statuses(db, edition_id) == {"sent": 20}


def test_a_crash_inside_a_batch_keeps_outcomes_not_yet_committed(
    db: Database, settings: Settings
) -> None:
    """An exception after 13 messages with commit_every=5: the 3 outcomes recorded since the
    last commit are saved, the unsent rows given back, and the exception raised."""
    _, edition_id = _site(db, settings, subscribers=20)
    mailer = EditionMailer(settings.replace(commit_every=5, commit_interval=60.0))

    def crash(position: int) -> None:
        if position == 14:
            raise RuntimeError("a bug in the middle of a batch")

    with pytest.raises(RuntimeError):
        send_batch(db, mailer, edition_id, _Paced(on_send=crash))
    assert _statuses(db, edition_id) == {"sent": 13, "pending": 7}


def test_asynchronous_commit_records_outcomes_and_does_not_leak(
    db: Database, settings: Settings
) -> None:
    """synchronous_commit=off (PostgreSQL): every outcome is recorded, and the pooled
    connections are left with the server's own setting."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    _, edition_id = _site(db, settings, subscribers=7)
    mailer = EditionMailer(settings.replace(synchronous_commit="off", commit_every=3))
    report = send_batch(db, mailer, edition_id, RecordingTransport())
    assert report.sent == 7 and _statuses(db, edition_id) == {"sent": 7}
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
