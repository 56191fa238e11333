"""Shared fixtures: settings on a temporary database, the database on SQLite and PostgreSQL,
and a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import create_engine, text

from digest.config import Settings
from digest.store.db import Database

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _require(service: str, reachable: bool) -> None:
    """Skip a test whose service is down, or fail it where CI says the service must be up."""
    if reachable:
        return
    message = f"{service} is not answering on 127.0.0.1"
    if os.environ.get(f"DIGEST_REQUIRE_{service.upper()}"):
        pytest.fail(message)
    pytest.skip(message)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables live in a fresh schema of the PostgreSQL server."""
    _require("postgres", _port_open(5432))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        # Every connection to the schema carries its name, so the ones a test leaves open (the
        # pools of its engines and of the processes it started) can be closed after it.
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with admin.connect() as conn:
            # Run three at a time (xdist), the leftovers of many tests would exhaust the
            # server's max_connections (100 by default) before garbage collection closed them.
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                {"name": schema},
            )  # fmt: skip
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a schema of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    _require("redis", _port_open(6379))
    return REDIS_URL


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        outbox_dir=str(tmp_path / "outbox"),
        base_url="https://news.example",
        secret_key="test-secret-key",
        site_name="The Test Gazette",
        site_url="https://gazette.example",
        postal_address="1 Test Street, Testville",
        from_address="digest@gazette.example",
        retry_base_seconds=0.0,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings)
    database.upgrade()
    yield database
    database.dispose()


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    #: time.monotonic() when the server accepted it (rate-limit tests space arrivals).
    at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """A real SMTP server's view of what it was sent; ``codes`` scripts replies per recipient:
    a list of codes is answered in turn, one per attempt."""

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    codes: dict[str, list[int]] = field(default_factory=dict)
    #: Seconds to wait before accepting each message, to make a send last.
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.sink.codes.get(address)
        if script:
            code = script.pop(0) if len(script) > 1 else script[0]
            if code >= 400:
                return f"{code} scripted refusal"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        data = envelope.original_content or b""
        self.sink.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(data))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """An aiosmtpd server on a free loopback port, running in this test process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = SmtpSink("127.0.0.1", port)
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


#: Fixtures that reach a real peer: a test using none of them (and not in a module that
#: starts servers or browsers by itself) is a unit test, selected by `pytest -m unit`.
INTEGRATION_FIXTURES = {"db_url", "redis_url", "smtp_server", "feed_server", "live_server"}
INTEGRATION_MODULES = (
    "test_workers",
    "test_code_quality",
    "test_screenshots",
    "test_browser",
    "test_fetch",
    "test_run",
    "test_corpus",
    "test_cli_sources",
    "test_stack_files",
    "test_doctor",
    "test_container",
    "test_scale",
    "test_bounds",
)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With `-m unit`, skip importing the modules none of whose tests can be unit tests: on a
    machine that writes no bytecode (PYTHONDONTWRITEBYTECODE) each would be compiled and
    rewritten for nothing."""
    if config.getoption("markexpr", "") != "unit" or collection_path.suffix != ".py":
        return None
    return collection_path.stem.startswith(INTEGRATION_MODULES) or None


#: Modules whose tests start groups of processes (Celery workers, `digest run`, Sentinel,
#: PgBouncer, Dovecot, memory-capped children) and hold time limits. Run in parallel (xdist),
#: each group goes to one worker, its tests one after another, so no two tests of a group load
#: the machine together; the two groups (about five minutes each) run beside each other and
#: every other test is shared out around them.
SERIAL_GROUPS = {
    "workers": ("test_workers", "test_relay_faults", "test_waiting", "test_faces", "test_scale"),
    "runs": ("test_run_command", "test_container", "test_bounds", "test_imap"),
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default in pyproject): three workers, or DIGEST_TEST_WORKERS; none for
    ``-m unit``, which is over in seconds and would spend them starting workers. Three on two
    cores: most of the suite waits on servers, processes and sockets, not on the CPU."""
    if config.getoption("markexpr", "") == "unit":
        return 0
    return int(os.environ.get("DIGEST_TEST_WORKERS", "3"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        for group, modules in SERIAL_GROUPS.items():
            if module.startswith(modules):
                item.add_marker(pytest.mark.xdist_group(group))
        if fixtures & INTEGRATION_FIXTURES or module.startswith(INTEGRATION_MODULES):
            continue
        # A `heavy` test reaches no peer but costs seconds (thousands of examples, a timing
        # run of a benchmark): it runs with the full suite, and `-m unit` stays a quick check
        # to run before every commit.
        if item.get_closest_marker("heavy"):
            continue
        item.add_marker(pytest.mark.unit)
