"""Sending on real Celery workers over a real Redis, with PostgreSQL as the ledger.

The test process plays beat: it sends the sweep task every second, which is
how a stalled or interrupted edition gets its batches queued in production.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import select

from digest.config import Settings
from digest.edition import ledger
from digest.edition.build import build_edition
from digest.service import catalog
from digest.service.jobs import SWEEP_EVERY
from digest.service.queue import make_celery
from digest.service.workers import heartbeat_key, read_workers
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from tests.builders import add_list, add_readers, add_stories
from tests.conftest import SmtpSink, postgres_schema
from tests.flaky_relay import Fault, FlakyRelay

DAY = dt.date(2026, 11, 24)
ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """Worker processes sharing one Redis queue and one PostgreSQL schema."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.workers: list[subprocess.Popen[bytes]] = []
        self.app: Celery = make_celery(
            Settings(broker_url=env["DIGEST_BROKER_URL"], queue=env["DIGEST_QUEUE"])
        )

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "digest.worker.app", "worker",
             "--pool", "solo", "-n", f"{name}@%h", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.workers.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def sweep(self) -> None:
        self.app.send_task("digest.tasks.sweep")

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def pg_db() -> Iterator[Database]:
    with postgres_schema() as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


@pytest.fixture
def cluster(
    pg_db: Database, redis_url: str, smtp_server: SmtpSink, tmp_path: Path
) -> Iterator[Cluster]:
    queue = f"digest-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": pg_db.url,
        "DIGEST_BROKER_URL": redis_url,
        "DIGEST_QUEUE": queue,
        "DIGEST_SMTP_URL": smtp_server.url,
        "DIGEST_SECRET_KEY": "workers-test-secret",
        "DIGEST_BASE_URL": "https://news.example",
        "DIGEST_FROM_ADDRESS": "digest@news.example",
        "DIGEST_BATCH_SIZE": "100",
        "DIGEST_RETRY_BASE_SECONDS": "1",
        "DIGEST_LEASE_SECONDS": "4",
        "DIGEST_PAUSE_AFTER_REFUSALS": "1000",
        "DIGEST_STALL_SECONDS": "3",
    }
    made = Cluster(env, tmp_path)
    try:
        yield made
    finally:
        made.stop()
        redis.Redis.from_url(redis_url).delete(queue, heartbeat_key(queue))


def _site(db: Database, subscribers: int) -> int:
    """A list with two articles on DAY and ``subscribers`` confirmed subscribers; edition id."""
    with db.session() as session:
        mailing_list, (section,) = add_list(session)
        add_stories(session, section, 2, dt.datetime(2026, 11, 24, 10))
        add_readers(session, mailing_list, subscribers, "r{:05d}@example.com")
        settings = Settings(secret_key="x", from_address="digest@news.example")
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        return edition.id


def _wait_until_settled(
    db: Database, cluster: Cluster, edition_id: int, limit: float
) -> dict[str, int]:
    """Sweep every second until no row is open, or fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cluster.sweep()
        time.sleep(1)
        with db.session() as session:
            counts = ledger.counts(session, edition_id)
        if not any(counts[s.value] for s in ledger.OPEN_STATUSES):
            return counts
    pytest.fail(f"edition {edition_id} still open after {limit}s: {counts}")


def test_two_workers_send_each_once_with_bounces_and_retries(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """2,000 subscribers over two workers: accepted addresses get exactly one message, 550s end
    suppressed and bounced, and 451s arrive once after their retry."""
    edition_id = _site(pg_db, 2000)
    rejected = {f"r{i:05d}@example.com" for i in range(0, 2000, 97)}
    deferred = {f"r{i:05d}@example.com" for i in range(5, 2000, 89)} - rejected
    smtp_server.codes.update({a: [550] for a in rejected})
    smtp_server.codes.update({a: [451, 250] for a in deferred})
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    counts = _wait_until_settled(pg_db, cluster, edition_id, limit=120)

    copies = Counter(r.recipients[0] for r in smtp_server.received)
    everyone = {f"r{i:05d}@example.com" for i in range(2000)}
    assert set(copies) == everyone - rejected
    assert max(copies.values()) == 1
    assert counts["sent"] == 2000 - len(rejected) and counts["bounced"] == len(rejected)
    with pg_db.session() as session:
        suppressed = set(session.scalars(select(Suppression.email)))
        bounced = set(
            session.scalars(
                select(Subscriber.email).where(Subscriber.status == SubscriberStatus.BOUNCED)
            )
        )
        retried = set(
            session.scalars(
                select(Subscriber.email).join(Delivery)
                .where(Delivery.attempts == 2, Delivery.status == DeliveryStatus.SENT)
            )
        )  # fmt: skip
    assert suppressed == bounced == rejected
    assert retried == deferred
    logs = " ".join(p.read_text() for p in cluster.logs.glob("w*.log"))
    assert "w1@" in logs and "w2@" in logs


def test_worker_killed_mid_send_loses_nobody(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """SIGKILL one of two workers mid-batch: everyone gets the edition, and at most one
    recipient (the message in flight) gets it twice."""
    edition_id = _site(pg_db, 600)
    smtp_server.delay = 0.01
    victim = cluster.start_worker("victim")
    cluster.start_worker("survivor")
    cluster.sweep()
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp_server.received) >= 150, "the send never got going"
    cluster.kill(victim)
    _wait_until_settled(pg_db, cluster, edition_id, limit=120)

    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert set(copies) == {f"r{i:05d}@example.com" for i in range(600)}
    assert sum(1 for n in copies.values() if n > 1) <= 1
    assert max(copies.values()) <= 2


def test_same_send_triggered_twice_at_once_sends_once(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """Two `digest send` for the same list and day at the same moment build one edition, and
    every subscriber gets one message."""
    with pg_db.session() as session:
        catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        section = catalog.get_section(session, "national")
        session.add(Article(url="https://n.example/x", section_id=section.id, headline="Story",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 10)))  # fmt: skip
        for i in range(300):
            catalog.subscribe(session, mailing_list, f"s{i}@example.com")
    command = [
        sys.executable,
        "-m",
        "digest.cli",
        "send",
        "--list",
        "daily",
        "--date",
        "2026-11-24",
    ]
    senders = [
        subprocess.Popen(command, env=cluster.env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=60)[0].decode() for p in senders]
    assert all(p.returncode == 0 for p in senders), outputs
    assert all("queued" in out or "already built" in out for out in outputs), outputs
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    with pg_db.session() as session:
        (edition_id,) = session.scalars(select(Delivery.edition_id).distinct()).all()
    _wait_until_settled(pg_db, cluster, edition_id, limit=60)
    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert len(copies) == 300 and max(copies.values()) == 1


def test_four_workers_share_one_edition_without_overlap(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """Four workers, each its own hostname, on one Redis and one PostgreSQL: each sends some
    batches of the same edition and no subscriber gets two copies."""
    edition_id = _site(pg_db, 1200)
    smtp_server.delay = 0.002
    names = [f"node{i}" for i in range(4)]
    for name in names:
        cluster.start_worker(name)
    time.sleep(3)  # let all four connect, so the queue is shared from the first batch
    _wait_until_settled(pg_db, cluster, edition_id, limit=120)
    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert len(copies) == 1200 and max(copies.values()) == 1
    for name in names:
        log = (cluster.logs / f"{name}.log").read_text()
        assert re.search(r"Task digest\.tasks\.send_batch\[[^]]+\] succeeded", log), name


def test_subscription_status_defaults_are_confirmed() -> None:
    """Bulk-inserted subscriptions in these tests default to confirmed, as senders require."""
    assert Subscription.__table__.c.status.default.arg == SubscriptionStatus.CONFIRMED


def test_worker_killed_at_default_settings_is_recovered_within_90_seconds(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """At the default lease, stall and commit settings, with the sweep at beat's own cadence:
    batches that outlast their lease keep their rows (heartbeat), and one SIGKILLed mid-batch
    has its rows sent by the survivor within 90 s, at most one recipient twice."""
    for name in ("DIGEST_LEASE_SECONDS", "DIGEST_STALL_SECONDS", "DIGEST_BATCH_SIZE"):
        cluster.env.pop(name)
    defaults = Settings()
    batch = 100
    cluster.env["DIGEST_BATCH_SIZE"] = str(batch)
    # Each batch takes longer than a lease, so without renewal the sweep would hand the
    # survivor's own rows to another batch.
    smtp_server.delay = (defaults.lease_seconds + 10) / batch
    edition_id = _site(pg_db, 2 * batch)
    victim = cluster.start_worker("victim")
    cluster.start_worker("survivor")
    cluster.sweep()
    deadline = time.monotonic() + 120
    # Killed about 70 messages into its batch: past two renewals, 30 rows left to recover.
    while len(smtp_server.received) < 1.4 * batch and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp_server.received) >= 1.4 * batch, "the send never got going"
    assert "send_batch" in (cluster.logs / "victim.log").read_text(), "the victim had no batch"
    cluster.kill(victim)
    killed_at = time.monotonic()
    done = None
    while done is None and time.monotonic() - killed_at < 120:
        cluster.sweep()
        sweep_due = time.monotonic() + SWEEP_EVERY
        while time.monotonic() < sweep_due:
            with pg_db.session() as session:
                counts = ledger.counts(session, edition_id)
            if not any(counts[s.value] for s in ledger.OPEN_STATUSES):
                done = time.monotonic() - killed_at
                break
            time.sleep(0.5)
    assert done is not None and done < 90, f"not done 90 s after the kill: {counts}"
    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert set(copies) == {f"r{i:05d}@example.com" for i in range(2 * batch)}
    assert sum(1 for n in copies.values() if n > 1) <= 1


# -- is anyone working? (issue 18) -------------------------------------------------------------


def _workers_settings(cluster: Cluster) -> Settings:
    return Settings(
        broker_url=cluster.env["DIGEST_BROKER_URL"],
        queue=cluster.env["DIGEST_QUEUE"],
        worker_heartbeat_seconds=float(cluster.env["DIGEST_WORKER_HEARTBEAT_SECONDS"]),
    )


def _wait_for_workers(cluster: Cluster, count: int, limit: float = 60) -> None:
    """Wait until ``count`` workers answer on the cluster's queue (their heartbeats)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = read_workers(_workers_settings(cluster))
        if found is not None and len(found.alive) >= count:
            return
        time.sleep(0.2)
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in cluster.logs.glob("*.log"))
    pytest.fail(f"{count} workers did not answer within {limit}s:\n{logs}")


def test_a_worker_answers_while_busy_and_is_missed_once_killed(
    pg_db: Database, cluster: Cluster, smtp_server: SmtpSink
) -> None:
    """A worker's heartbeat comes from a thread of its own: it answers while its only
    process (the solo pool) is deep in a slow batch, and once it is SIGKILLed it counts as
    gone after three missed beats, with how long nobody has answered."""
    cluster.env["DIGEST_WORKER_HEARTBEAT_SECONDS"] = "0.5"
    _site(pg_db, 60)
    smtp_server.delay = 0.1  # a batch of 60 takes 6 s
    worker = cluster.start_worker("busy")
    _wait_for_workers(cluster, 1)
    cluster.sweep()
    deadline = time.monotonic() + 30
    while len(smtp_server.received) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp_server.received) >= 5, "the batch never started"
    for _ in range(6):  # 3 s inside the batch, which holds the worker's only process
        found = read_workers(_workers_settings(cluster))
        assert found is not None and [n.split("@")[0] for n in found.alive] == ["busy"]
        time.sleep(0.5)
    assert len(smtp_server.received) < 60, "the batch ended before the checks"
    cluster.kill(worker)
    time.sleep(2.0)
    gone = read_workers(_workers_settings(cluster))
    assert gone is not None and not gone.answering
    assert gone.words().startswith("no worker has answered for ")


def test_a_flaky_relay_does_not_stall_four_workers(pg_db: Database, cluster: Cluster) -> None:
    """At the default retry, lease, stall and pause settings (batches of 20), a relay that
    drops connections in the middle of DATA and after the final dot for 15 s stalls nothing:
    failed batches hold no rows, the edition is not paused, four workers finish it within
    two minutes of the relay's recovery, everyone is answered exactly once, and the only
    second copies are of messages the relay took without answering, each marked on its row."""
    for name in ("DIGEST_LEASE_SECONDS", "DIGEST_STALL_SECONDS", "DIGEST_RETRY_BASE_SECONDS"):
        cluster.env.pop(name)
    cluster.env.update(DIGEST_BATCH_SIZE="20", DIGEST_WORKER_HEARTBEAT_SECONDS="1")
    subscribers = 300
    edition_id = _site(pg_db, subscribers)
    everyone = {f"r{i:05d}@example.com" for i in range(subscribers)}
    with FlakyRelay() as relay:
        cluster.env["DIGEST_SMTP_URL"] = relay.url
        relay.flaky((Fault.MID_DATA, Fault.AFTER_DOT), quotas=(0, 3, 0, 1, 5, 0, 2))
        for i in range(4):
            cluster.start_worker(f"node{i}")
        _wait_for_workers(cluster, 4)
        cluster.sweep()
        leased = 0
        outage_ends = time.monotonic() + 15
        while time.monotonic() < outage_ends:
            with pg_db.session() as session:
                leased = max(leased, ledger.counts(session, edition_id)["leased"])
            time.sleep(0.25)
        relay.recover()
        recovered = time.monotonic()
        with pg_db.session() as session:
            status = session.get_one(Edition, edition_id).status
        counts: dict[str, int] = {}
        done = None
        while done is None and time.monotonic() - recovered < 120:
            cluster.sweep()
            sweep_due = time.monotonic() + SWEEP_EVERY
            while time.monotonic() < sweep_due:
                with pg_db.session() as session:
                    counts = ledger.counts(session, edition_id)
                if not any(counts[s.value] for s in ledger.OPEN_STATUSES):
                    done = time.monotonic() - recovered
                    break
                time.sleep(0.5)
    kinds = Counter(fault for _, fault in relay.faults)
    print(f"flaky relay: {dict(kinds)} faults over {relay.connections} connections; "
          f"edition done {done} s after recovery; {counts}")  # fmt: skip
    assert kinds[Fault.MID_DATA] >= 3 and kinds[Fault.AFTER_DOT] >= 3, kinds
    assert leased <= 4 * 20, f"failed batches kept their rows: {leased} leased at once"
    assert status == EditionStatus.READY, "the outage paused the edition"
    assert done is not None and done < 120, f"not done 2 min after the relay recovered: {counts}"
    assert counts["sent"] == subscribers
    answered, unanswered = relay.answered(), relay.unanswered()
    assert answered == dict.fromkeys(everyone, 1)
    assert sum(unanswered.values()) >= 1
    copies = Counter(r for taken in relay.taken for r in taken.recipients)
    assert all(copies[r] == 1 + unanswered[r] for r in everyone)
    with pg_db.session() as session:
        marked = set(
            session.scalars(select(Subscriber.email).join(Delivery).where(Delivery.unanswered > 0))
        )
    assert set(unanswered) <= marked
