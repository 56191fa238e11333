"""Is anyone working? Workers' heartbeats in a real Redis, read by `digest send`, `digest
doctor` and /metrics; and from the ledger, an edition whose due rows nobody takes is shown as
waiting by `digest status`, the API and /metrics. (Real worker processes: test_workers.py.)"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from digest.cli import cli
from digest.config import Settings
from digest.edition.build import build_edition
from digest.ops.doctor import run_checks
from digest.service import catalog
from digest.service.core import Digest
from digest.service.metrics import figures
from digest.service.workers import Beacon, heartbeat_key, read_workers, redis_for, span_words
from digest.store.db import Database
from digest.store.models import Article, Delivery, DeliveryStatus, Edition, utcnow
from digest.web import create_app

DAY = dt.date(2026, 11, 24)


def _edition(db: Database, settings: Settings, built_ago: dt.timedelta) -> int:
    """An edition of two readers, built ``built_ago``, nothing claimed."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="H",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        for i in range(2):
            catalog.subscribe(session, daily, f"r{i}@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, daily, DAY)
        edition.created_at = utcnow() - built_ago
        return edition.id


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    """A queue name of this test's own, its heartbeats removed afterwards."""
    name = f"digest-wait-{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(redis_url).delete(heartbeat_key(name), name)


def test_an_edition_nobody_takes_is_waiting_on_a_broker(db: Database, settings: Settings) -> None:
    """On a broker, due rows unclaimed for longer than DIGEST_WAITING_AFTER_SECONDS make the
    summary say "waiting: no worker has taken it for 12 minutes"; a live lease, a recent
    claim, or no broker at all (this process sends) make it say nothing."""
    edition_id = _edition(db, settings, dt.timedelta(minutes=12, seconds=5))
    broker = Digest(settings.replace(broker_url="redis://127.0.0.1:1/0"), db=db)
    summary = broker.summary(edition_id)
    assert summary.waiting == "waiting: no worker has taken it for 12 minutes"
    assert summary.waiting_since is not None and summary.reason is None
    assert Digest(settings, db=db).summary(edition_id).waiting is None

    with db.session() as session:
        session.execute(update(Edition).values(last_claim_at=utcnow() - dt.timedelta(seconds=30)))
    assert broker.summary(edition_id).waiting is None
    with db.session() as session:
        session.execute(update(Edition).values(last_claim_at=utcnow() - dt.timedelta(minutes=3)))
    assert broker.summary(edition_id).waiting == "waiting: no worker has taken it for 3 minutes"
    with db.session() as session:
        row = session.query(Delivery).order_by(Delivery.id).first()
        assert row is not None
        row.status, row.lease_until = DeliveryStatus.LEASED, utcnow() + dt.timedelta(minutes=1)
    assert broker.summary(edition_id).waiting is None


def test_metrics_show_the_queue_age_and_how_long_it_went_unclaimed(
    db: Database, settings: Settings
) -> None:
    """/metrics has the age of the oldest due row and how long the queue went untouched
    (both about ten minutes for an edition built ten minutes ago and never claimed); a
    claim a minute ago leaves the age and brings the second down."""
    edition_id = _edition(db, settings, dt.timedelta(minutes=10))
    found = figures(db)
    assert 590 < found.queue_age < 660 and 590 < found.queue_unclaimed < 660
    assert found.workers is None
    with db.session() as session:
        session.execute(
            update(Edition)
            .where(Edition.id == edition_id)
            .values(last_claim_at=utcnow() - dt.timedelta(minutes=1))
        )
    response = create_app(settings).test_client().get("/metrics")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert 590 < samples["digest_queue_age_seconds"] < 660
    assert 50 < samples["digest_queue_unclaimed_seconds"] < 120
    assert samples["digest_messages_unanswered"] == 0
    assert "digest_workers" not in samples  # no broker: nothing to read


def test_heartbeats_say_who_answers_and_since_when_nobody_does(redis_url: str, queue: str) -> None:
    """A worker's beacon makes it answer on its queue (not on another); stopped, it counts
    as gone after three missed beats and the words say for how long nobody answered."""
    settings = Settings(broker_url=redis_url, queue=queue, worker_heartbeat_seconds=0.2)
    never = read_workers(settings)
    assert never is not None and not never.answering and never.silent_for is None
    assert never.words() == f"no worker has answered on queue {queue}: start `digest worker`"
    client = redis_for(settings)
    assert client is not None
    beacon = Beacon(client, queue, "mail1@host", 0.2)
    beacon.start()
    try:
        deadline = time.monotonic() + 5
        found = read_workers(settings)
        while found is not None and not found.answering and time.monotonic() < deadline:
            time.sleep(0.05)
            found = read_workers(settings)
        assert found is not None and found.alive == ("mail1@host",)
        assert found.words() == f"1 worker answering on queue {queue} (mail1@host)"
        other = read_workers(settings.replace(queue=f"{queue}-other"))
        assert other is not None and not other.answering
    finally:
        beacon.stop()
    time.sleep(0.8)
    gone = read_workers(settings)
    assert gone is not None and not gone.answering
    assert gone.silent_for is not None and 0.6 < gone.silent_for < 5
    assert gone.words().startswith("no worker has answered for 0 seconds on queue")


def test_span_words_read_as_an_operator_would() -> None:
    """Under two minutes in seconds, under two hours in minutes, then hours."""
    assert [span_words(s) for s in (45, 150, 7199, 3 * 3600 + 5)] == [
        "45 seconds",
        "2 minutes",
        "119 minutes",
        "3 hours",
    ]


def test_doctor_fails_while_no_worker_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: Database, redis_url: str, queue: str
) -> None:
    """`digest doctor` on a broker has a workers line: fail while none answers (saying how
    to start one), ok once one beats; `--quick` leaves it out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_DATABASE_URL", db.url)
    monkeypatch.setenv("DIGEST_BROKER_URL", redis_url)
    monkeypatch.setenv("DIGEST_QUEUE", queue)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "q3VfN8sK1xZ0cR7tW2mY5pL9dH4gB6jE-aU_oI8nT3v")
    checks = {c.name: c for c in run_checks(quick=True)}
    assert "workers" not in checks and checks["broker"].status == "ok"
    checks = {c.name: c for c in run_checks()}
    assert checks["workers"].status == "fail"
    assert "no worker has answered" in checks["workers"].detail
    assert "start `digest worker`" in checks["workers"].detail
    settings = Settings(broker_url=redis_url, queue=queue)
    client = redis_for(settings)
    assert client is not None
    Beacon(client, queue, "mail1@host", 10).beat()
    checks = {c.name: c for c in run_checks()}
    assert checks["workers"].status == "ok" and "mail1@host" in checks["workers"].detail


def test_send_and_status_say_when_nobody_takes_the_queue(
    tmp_path: Path, db: Database, redis_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest send` on a broker with no worker says it queued, but that no worker has
    answered; `digest status` later says the edition is waiting for one."""
    monkeypatch.chdir(tmp_path)
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="H",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        catalog.subscribe(session, daily, "r0@example.com")
    env = {
        "DIGEST_DATABASE_URL": db.url,
        "DIGEST_BROKER_URL": redis_url,
        "DIGEST_QUEUE": queue,
        "DIGEST_SECRET_KEY": "waiting-test-secret",
    }
    runner = CliRunner()
    sent = runner.invoke(cli, ["send", "--list", "daily", "--date", "2026-11-24"], env=env)
    assert sent.exit_code == 0, sent.output
    assert (
        "queued 1 batch for the workers, but no worker has answered on queue "
        f"{queue}: start `digest worker`"
    ) in sent.output
    with db.session() as session:
        session.execute(update(Edition).values(created_at=utcnow() - dt.timedelta(minutes=7)))
    status = runner.invoke(cli, ["status"], env=env)
    assert "waiting: no worker has taken it for 7 minutes" in status.output, status.output
