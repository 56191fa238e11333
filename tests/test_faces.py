"""Every face sends through the one core: with DKIM and a rate limit configured, the CLI
(in-process and with workers), the API, the dashboard and beat's scheduled send all produce
messages signed with the configured key (verified by dkimpy against the public key) and
spaced at the configured rate."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
import redis
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from digest.cli import cli
from digest.config import Settings, load_settings
from digest.service import catalog
from digest.service.core import Digest
from digest.service.queue import SEND_DUE_LISTS, make_celery
from digest.store.db import Database
from digest.store.models import Article, Edition
from digest.web import context, create_app
from tests.builders import api_token
from tests.conftest import SmtpSink, postgres_schema

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "gazette.example"
SELECTOR = "faces"
READERS = 5
#: Messages per second: five messages take at least four intervals, a full second.
RATE = 4.0
OPERATOR_PASSWORD = "a long and proper operator password"


@dataclass(frozen=True)
class Key:
    path: Path
    dns_record: bytes

    def verifies(self, message: bytes) -> bool:
        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
            return self.dns_record

        return bool(dkim.verify(message, dnsfunc=dnsfunc))


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Key(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def _environment(db_url: str, smtp: SmtpSink, key: Key) -> dict[str, str]:
    """The settings, as an operator would export them."""
    return {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SMTP_URL": smtp.url,
        "DIGEST_SECRET_KEY": "faces-test-secret-that-is-long-enough-0123",
        "DIGEST_BASE_URL": "https://news.example",
        "DIGEST_FROM_ADDRESS": f"digest@{DOMAIN}",
        "DIGEST_DKIM_DOMAIN": DOMAIN,
        "DIGEST_DKIM_SELECTOR": SELECTOR,
        "DIGEST_DKIM_KEY_FILE": str(key.path),
        "DIGEST_RATE_LIMIT": str(RATE),
        "DIGEST_OPERATOR_PASSWORD": OPERATOR_PASSWORD,
    }


def _site(db: Database) -> str:
    """A list (UTC, sends at 00:00) with a story from a minute ago and READERS subscribers;
    returns today's date."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=1)
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"], send_at="00:00")
        # Made before today's send time, so beat finds it due today (a list made after it
        # starts tomorrow).
        daily.created_at = now - dt.timedelta(days=1)
        session.add(
            Article(url="https://n.example/1", section_id=section.id, headline="A story",
                    teaser="What happened.", published_at=now)
        )  # fmt: skip
        for i in range(READERS):
            catalog.subscribe(session, daily, f"reader{i}@example.com", f"Reader {i}")
    return now.date().isoformat()


def _wait_for(smtp: SmtpSink, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(smtp.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp.received) >= count, f"only {len(smtp.received)} of {count} arrived"


def _assert_signed_and_spaced(smtp: SmtpSink, key: Key) -> None:
    """Each subscriber got one message, each verifies, and together they kept the rate."""
    _wait_for(smtp, READERS)
    time.sleep(0.3)  # nothing more should come
    assert sorted(r.recipients[0] for r in smtp.received) == [
        f"reader{i}@example.com" for i in range(READERS)
    ]
    for received in smtp.received:
        assert received.data.startswith(b"DKIM-Signature:"), received.data[:200]
        assert key.verifies(received.data)
    times = sorted(r.at for r in smtp.received)
    # GCRA: the first goes at once, each next one interval later (10% slack for clocks).
    assert times[-1] - times[0] >= (READERS - 1) / RATE * 0.9


@pytest.fixture
def env(db_url: str, smtp_server: SmtpSink, key: Key) -> Iterator[dict[str, str]]:
    environment = _environment(db_url, smtp_server, key)
    database = Database(db_url)
    database.upgrade()
    environment["DAY"] = _site(database)
    database.dispose()
    yield environment


def test_cli_in_process_send_is_signed_and_throttled(
    env: dict[str, str], smtp_server: SmtpSink, key: Key
) -> None:
    """`digest send` without a broker signs every message and keeps the rate limit."""
    result = CliRunner().invoke(
        cli, ["send", "--list", "daily", "--date", env["DAY"]], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    _assert_signed_and_spaced(smtp_server, key)


def _settings(env: dict[str, str]) -> Settings:
    return load_settings(environ={k: v for k, v in env.items() if k.startswith("DIGEST_")})


def test_api_send_is_signed_and_throttled(
    env: dict[str, str], smtp_server: SmtpSink, key: Key
) -> None:
    """POST /api/editions/send goes through the same mailer: signed, throttled."""
    app = create_app(_settings(env))
    with app.app_context():
        token = api_token(context().core.db, "faces")
        response = app.test_client().post(
            "/api/editions/send",
            json={"list": "daily", "date": env["DAY"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        _assert_signed_and_spaced(smtp_server, key)
        context().close()


def test_dashboard_send_is_signed_and_throttled(
    env: dict[str, str], smtp_server: SmtpSink, key: Key
) -> None:
    """The dashboard's Send button goes through the same mailer: signed, throttled."""
    app = create_app(_settings(env))
    client = app.test_client()

    def csrf(path: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(True))
        assert found
        return found.group(1)

    login = client.post(
        "/dashboard/login",
        data={"password": OPERATOR_PASSWORD, "csrf_token": csrf("/dashboard/login")},
    )
    assert login.status_code == 303
    sent = client.post("/dashboard/lists/daily/send", data={"csrf_token": csrf("/dashboard/")})
    assert sent.status_code == 303
    _assert_signed_and_spaced(smtp_server, key)
    with app.app_context():
        context().close()


# -- the workers: a real Celery worker on a real Redis, the ledger on PostgreSQL ---------------


@pytest.fixture
def worker_env(
    redis_url: str, smtp_server: SmtpSink, key: Key, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Path]]:
    """Settings in a TOML file (not the environment), and a worker started with
    `digest --config FILE worker`: the file alone tells it the broker, key and rate."""
    queue = f"digest-faces-{uuid.uuid4().hex[:8]}"
    with postgres_schema() as url:
        database = Database(url)
        database.upgrade()
        day = _site(database)
        database.dispose()
        values = _environment(url, smtp_server, key)
        values.update(DIGEST_BROKER_URL=redis_url, DIGEST_QUEUE=queue)
        config = tmp_path / "prod.toml"
        lines = [
            f"{name.removeprefix('DIGEST_').lower()} = {_toml(value)}"
            for name, value in values.items()
        ]
        config.write_text("[digest]\n" + "\n".join(lines) + "\n", encoding="utf-8")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(config), "worker",
             "--pool", "solo", "-n", f"faces-{queue}@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            env=clean, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield {**values, "DAY": day, "CONFIG": str(config)}, tmp_path / "worker.log"
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
            redis.Redis.from_url(redis_url).delete(queue)


def _toml(value: str) -> str:
    return value if re.fullmatch(r"\d+(\.\d+)?", value) else f'"{value}"'


def test_cli_send_to_workers_is_signed_and_throttled(
    worker_env: tuple[dict[str, str], Path], smtp_server: SmtpSink, key: Key
) -> None:
    """`digest --config FILE send` queues the edition; the worker started with
    `digest --config FILE worker` signs with the file's key and keeps the file's rate."""
    values, log = worker_env
    result = CliRunner().invoke(
        cli,
        ["--config", values["CONFIG"], "send", "--list", "daily", "--date", values["DAY"]],
        env={k: None for k in os.environ if k.startswith("DIGEST_")},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "queued 1 batch for the workers" in result.output
    try:
        _assert_signed_and_spaced(smtp_server, key)
    except AssertionError:
        print(log.read_text(errors="replace"))
        raise


def test_beat_scheduled_send_is_signed_and_throttled(
    worker_env: tuple[dict[str, str], Path], smtp_server: SmtpSink, key: Key
) -> None:
    """The task beat fires each minute builds the due list's edition on the worker and sends
    it, signed and throttled like every other face."""
    values, log = worker_env
    settings = load_settings(values["CONFIG"], environ={})
    make_celery(settings).send_task(SEND_DUE_LISTS, queue=settings.queue)
    try:
        _assert_signed_and_spaced(smtp_server, key)
    except AssertionError:
        print(log.read_text(errors="replace"))
        raise


def test_core_picks_its_dispatcher_from_the_settings(settings: Settings) -> None:
    """Without a broker the core sends in-process (or in a thread for the web app); with one
    it queues for the workers: no face decides that itself."""
    from digest.service.dispatch import (
        BackgroundDispatcher,
        CeleryDispatcher,
        InProcessDispatcher,
    )

    assert isinstance(Digest(settings).dispatcher, InProcessDispatcher)
    assert isinstance(Digest(settings, background=True).dispatcher, BackgroundDispatcher)
    broker = settings.replace(broker_url="redis://127.0.0.1:6379/0")
    assert isinstance(Digest(broker).dispatcher, CeleryDispatcher)


def test_send_with_the_broker_down_is_one_line_and_builds_nothing(
    env: dict[str, str], smtp_server: SmtpSink, redis_url: str
) -> None:
    """With the broker unreachable, `digest send` says so in one line and exits 1 before any
    edition is built; once the broker is back, a later send builds and queues it."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = {**env, "DIGEST_BROKER_URL": f"redis://127.0.0.1:{closed}/0"}
    result = CliRunner().invoke(cli, ["send", "--list", "daily", "--date", env["DAY"]], env=down)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "broker" in lines[0] and "not answering" in lines[0], lines
    assert "Traceback" not in result.output
    database = Database(env["DIGEST_DATABASE_URL"])
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Edition)) == 0
    assert smtp_server.received == []
    queue = f"digest-faces-{uuid.uuid4().hex[:8]}"
    back = {**env, "DIGEST_BROKER_URL": redis_url, "DIGEST_QUEUE": queue}
    try:
        again = CliRunner().invoke(cli, ["send", "--list", "daily", "--date", env["DAY"]], env=back)
        assert again.exit_code == 0, again.output
        assert "queued 1 batch for the workers" in again.output
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Edition)) == 1
    finally:
        database.dispose()
        redis.Redis.from_url(redis_url).delete(queue)
