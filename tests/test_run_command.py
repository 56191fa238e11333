"""`digest run` (a real subprocess, on a site with feeds on disk and the outbox) and
`digest send --due`: lists sent at their send time without a broker, a stop that gives rows
back, one scheduler per database."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text, update

from digest.cli import cli
from digest.edition import ledger
from digest.store.db import Database
from digest.store.models import Edition, MailingList
from tests.builders import rss, rss_item
from tests.conftest import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
STAMP = "%Y-%m-%d %H:%M:%S"


def _noon_zone(now: dt.datetime) -> str:
    """A fixed-offset zone where it is about noon now: the test's day never turns over."""
    offset = 12 - now.hour
    if offset == 0:
        return "UTC"
    # The Etc zones' signs are POSIX's: Etc/GMT-5 is five hours ahead of UTC.
    return f"Etc/GMT{-offset:+d}"


class Site:
    """A site on disk: a feed file, a list over it and its readers; commands run in-process."""

    def __init__(self, db_url: str, folder: Path, readers: int = 3) -> None:
        self.folder = folder
        self.db_url = db_url
        self.env = {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_OUTBOX_DIR": str(folder / "outbox"),
            "DIGEST_SECRET_KEY": secrets.token_urlsafe(32),
            "DIGEST_BASE_URL": "https://town.example",
            "DIGEST_SITE_NAME": "Town Crier",
            "DIGEST_FROM_ADDRESS": "news@town.example",
            "DIGEST_POSTAL_ADDRESS": "1 High Street, Town",
        }
        self.readers = [f"reader{i:03d}@example.com" for i in range(readers)]
        now = dt.datetime.now(dt.UTC)
        self.zone = _noon_zone(now)
        local = now.astimezone(ZoneInfo(self.zone))
        self.day = local.date()
        #: One to two minutes from now, in the list's zone.
        # Far enough ahead (10 s at the tests' 30x clock) that a slow start on a loaded
        # machine still finds the send time ahead of it.
        self.send_at = f"{(local + dt.timedelta(minutes=5)):%H:%M}"
        stories = [
            rss_item(f"Story {i}", f"https://town.example/{i}", now - dt.timedelta(minutes=30))
            for i in range(4)
        ]
        (folder / "local.xml").write_bytes(rss(*stories))
        (folder / "readers.csv").write_text(
            "email,name\n" + "".join(f"{a},Reader\n" for a in self.readers)
        )
        for args in (
            ["init"],
            ["sections", "add", "local", "--name", "Local"],
            ["sources", "add", str(folder / "local.xml"), "--section", "local"],
            [
                "lists",
                "add",
                "daily",
                "--name",
                "Daily",
                "--sections",
                "local",
                "--timezone",
                self.zone,
                "--send-at",
                self.send_at,
            ],
            ["subscribers", "import", str(folder / "readers.csv"), "--list", "daily"],
        ):
            self.cli(*args)

    def cli(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    @property
    def outbox(self) -> Path:
        return self.folder / "outbox" / f"daily-{self.day}"

    def messages(self) -> list[str]:
        return sorted(p.name for p in self.outbox.glob("*.eml")) if self.outbox.exists() else []

    def db(self) -> Database:
        return Database(self.db_url)


class Run:
    """`digest run ARGS` as a subprocess of its own; its output read as it comes."""

    def __init__(self, site: Site, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "run", *args],
            env={**environ, **site.env, **(env or {})},
            cwd=site.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """The first line matching ``pattern`` (a regular expression)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                self._reader.join(5)
                break
            time.sleep(0.05)
        for line in self.lines:
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def running() -> Iterator[list[Run]]:
    """Every run a test starts, killed at the end if the test left it running."""
    runs: list[Run] = []
    yield runs
    for run in runs:
        run.kill()


def _clock_now(speed: float) -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S}+00:00x{speed:g}"


def test_run_sends_the_list_at_its_send_time(
    db_url: str, tmp_path: Path, running: list[Run]
) -> None:
    """With no broker, `digest run` ingests, says when the list sends, sends nothing before
    that time and the edition at it, once to each reader; SIGTERM stops it with status 0."""
    site = Site(db_url, tmp_path)
    run = Run(site, "--test-clock", _clock_now(30))
    running.append(run)
    first = run.wait_for("scheduling")
    assert "TEST CLOCK" in first
    assert "ingest every 10 min, due sends every 1 min, retries and the sweep every 15 s" in first
    assert f"next sends: daily {site.day} {site.send_at} {site.zone}" in first
    run.wait_for("ingest: 4 new articles from 1 source")
    sent = run.wait_for(r"daily \S+: edition \d+: 3 sent")
    # Stamped with the run's clock, in this machine's zone: at the send time, not before it;
    # at the first check after it, give or take what a loaded machine adds (in real seconds,
    # times the clock's 30).
    stamp = dt.datetime.strptime(sent[:19], STAMP).astimezone(ZoneInfo(site.zone))
    due = dt.datetime.combine(site.day, dt.time.fromisoformat(site.send_at), ZoneInfo(site.zone))
    assert due <= stamp <= due + dt.timedelta(seconds=60 + 30 * 15), (stamp, due)
    assert site.messages() == [f"{a}.eml" for a in site.readers]
    # Another minute of checks sends nothing more.
    time.sleep(3)
    assert site.messages() == [f"{a}.eml" for a in site.readers]
    assert run.stop() == 0
    assert run.lines[-1].endswith(" stopped")


def test_sigterm_mid_send_gives_rows_back_and_nothing_goes_twice(
    db_url: str, tmp_path: Path, running: list[Run]
) -> None:
    """SIGTERM in the middle of a send: the process exits 0 with no row left leased, every
    message written is recorded sent; the next run sends the rest, nobody twice."""
    site = Site(db_url, tmp_path, readers=80)
    slow = {"DIGEST_RATE_LIMIT": "25"}
    run = Run(site, "--test-clock", _clock_now(30), env=slow)
    running.append(run)
    deadline = time.monotonic() + 60
    while len(site.messages()) < 10:
        assert time.monotonic() < deadline and run.process.poll() is None, run.output
        time.sleep(0.02)
    assert run.stop() == 0, run.output
    assert "send stopped by the shutdown; its unsent rows are back in the ledger" in run.output
    written = site.messages()
    assert 10 <= len(written) < 80
    db = site.db()
    with db.session() as session:
        (edition_id,) = session.scalars(text("SELECT id FROM editions")).all()
        counts = ledger.counts(session, edition_id)
    assert counts["leased"] == 0
    assert counts["sent"] == len(written)
    assert counts["pending"] == 80 - len(written)

    again = Run(site, "--test-clock", _clock_now(30), env={"DIGEST_STALL_SECONDS": "1"})
    running.append(again)
    again.wait_for(rf"daily {site.day}: edition {edition_id} continued: {80 - len(written)} sent")
    assert again.stop() == 0
    assert site.messages() == sorted(f"{a}.eml" for a in site.readers)
    with db.session() as session:
        assert ledger.counts(session, edition_id)["sent"] == 80
    db.dispose()


def test_a_run_killed_mid_send_is_finished_by_the_next_one(
    db_url: str, tmp_path: Path, running: list[Run]
) -> None:
    """SIGKILL in the middle of a send leaves leased rows; once their lease has run out the
    next run's sweep sends them: everyone gets the edition, at most the message in flight
    at the kill twice."""
    site = Site(db_url, tmp_path, readers=80)
    short = {"DIGEST_RATE_LIMIT": "25", "DIGEST_LEASE_SECONDS": "3"}
    run = Run(site, "--test-clock", _clock_now(30), env=short)
    running.append(run)
    deadline = time.monotonic() + 60
    while len(site.messages()) < 10:
        assert time.monotonic() < deadline and run.process.poll() is None, run.output
        time.sleep(0.02)
    run.kill()
    db = site.db()
    with db.session() as session:
        (edition_id,) = session.scalars(text("SELECT id FROM editions")).all()
        assert ledger.counts(session, edition_id)["leased"] > 0
    time.sleep(3.5)  # the lease runs out
    again = Run(site, "--test-clock", _clock_now(30), env={"DIGEST_STALL_SECONDS": "1"})
    running.append(again)
    again.wait_for(rf"daily {site.day}: edition {edition_id} continued: \d+ sent")
    assert again.stop() == 0
    with db.session() as session:
        assert ledger.counts(session, edition_id)["sent"] == 80
    db.dispose()
    copies = [name.split(".eml")[0].rsplit("-", 1)[0] for name in site.messages()]
    assert set(copies) == set(site.readers)
    assert len(copies) - len(set(copies)) <= 1


def test_a_second_run_on_the_same_database_is_refused(
    db_url: str, tmp_path: Path, running: list[Run]
) -> None:
    """While one `digest run` schedules a database a second one exits 1 in one line; once the
    first has stopped, the next may start."""
    site = Site(db_url, tmp_path)
    first = Run(site)
    running.append(first)
    first.wait_for("scheduling")
    second = Run(site)
    running.append(second)
    assert second.process.wait(60) == 1
    second.stop()
    assert "another `digest run` is already scheduling this database" in second.output
    assert f"held by {'process' if 'sqlite' in db_url else 'server process'}" in second.output
    assert len(second.lines) == 1, second.output
    assert first.stop() == 0
    third = Run(site)
    running.append(third)
    third.wait_for("scheduling")
    assert third.stop() == 0


def test_the_lock_is_one_per_database(db_url: str, tmp_path: Path) -> None:
    """Two locks on one database: the second is refused until the first is released; on
    PostgreSQL a lock whose connection died says it is no longer held, and is taken again."""
    from digest.service.runlock import ADVISORY_KEY, keep_held, run_lock

    Site(db_url, tmp_path)
    db, other = Database(db_url), Database(db_url)
    first, second = run_lock(db), run_lock(other)
    first.acquire()
    assert first.still_held()
    with pytest.raises(Exception, match="already scheduling this database"):
        second.acquire()
    first.release()
    second.acquire()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as admin:
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = :key AND objid::bigint = "
                    "(hashtext(current_schema())::bigint & 4294967295)"
                ),
                {"key": ADVISORY_KEY},
            )
            admin.commit()
        assert not second.still_held()
        # The run takes it again on a new connection, rather than go on without it.
        keep_held(second)
        assert second.still_held()
        with pytest.raises(Exception, match="already scheduling this database"):
            first.acquire()
    second.release()
    db.dispose()
    other.dispose()


def test_run_serves_the_web_app_when_asked(db_url: str, tmp_path: Path, running: list[Run]) -> None:
    """`digest run --web --port P` answers HTTP on P while it schedules."""
    site = Site(db_url, tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = Run(site, "--web", "--port", str(port))
    running.append(run)
    run.wait_for(f"serving on http://127.0.0.1:{port}/")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert response.status == 200
    assert run.stop() == 0


def test_run_refuses_a_broker_and_web_options_without_web(tmp_path: Path) -> None:
    """With a broker configured `digest run` says beat is the scheduler (one line, exit 1);
    --port without --web is refused."""
    site = {"DIGEST_SECRET_KEY": "x" * 40, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path}/d.db"}
    env = {"DIGEST_BROKER_URL": "redis://127.0.0.1:1/0", **site}
    result = CliRunner().invoke(cli, ["run"], env=env)
    assert result.exit_code == 1
    assert "`digest beat` is the scheduler" in result.output and "--force" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["run", "--port", "8001"], env=site)
    assert result.exit_code == 1 and "--port is for the web app: add --web" in result.output


def test_forced_run_on_a_broker_queues_for_the_workers(
    db_url: str, tmp_path: Path, running: list[Run], redis_url: str
) -> None:
    """`digest run --force` with a broker schedules as beat would: the due edition is queued
    on the site's queue for the workers, and the line says so."""
    import redis

    site = Site(db_url, tmp_path)
    site.cli("ingest")  # the run queues its ingest for workers, and there are none
    queue = f"test-run-{uuid.uuid4().hex[:8]}"
    broker = {"DIGEST_BROKER_URL": redis_url, "DIGEST_QUEUE": queue}
    try:
        run = Run(site, "--force", "--test-clock", _clock_now(30), env=broker)
        running.append(run)
        run.wait_for(rf"daily {site.day}: edition \d+ queued for the workers: 3 pending")
        assert run.stop() == 0
        assert redis.Redis.from_url(redis_url).llen(queue) >= 1
        assert site.messages() == []
    finally:
        redis.Redis.from_url(redis_url).delete(queue)


def _backdate_list(site: Site) -> None:
    """Make the list older than today, so today's send time counts (a list made after it
    starts tomorrow) and set it to send at midnight: due now."""
    db = site.db()
    with db.session() as session:
        session.execute(
            update(MailingList).values(created_at=dt.datetime(2000, 1, 1), send_at="00:00")
        )
    db.dispose()


def test_send_due_sends_each_due_list_once_and_retries_deferred(
    db_url: str, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """`send --due` prints nothing and exits 0 when nothing is due; a due list is sent with a
    line; a second pass sends nobody twice and retries the deferred recipient."""
    site = Site(db_url, tmp_path)
    # Retries 6 s (±20%) on: more than a `send --due` takes to start on a loaded machine.
    site.env.update({"DIGEST_SMTP_URL": smtp_server.url, "DIGEST_RETRY_BASE_SECONDS": "6"})
    site.cli("ingest")
    nothing = site.cli("send", "--due")
    assert nothing.output == ""
    _backdate_list(site)
    smtp_server.codes[site.readers[1]] = [451, 250]
    first = site.cli("send", "--due").output.splitlines()
    assert first == [f"daily {site.day}: edition 1: 2 sent, 1 deferred"]
    assert site.cli("send", "--due").output == ""  # its retry is seconds away
    time.sleep(7.5)
    second = site.cli("send", "--due").output.splitlines()
    assert second == [f"daily {site.day}: edition 1 continued: 1 sent"]
    assert site.cli("send", "--due").output == ""
    got = sorted(r.recipients[0] for r in smtp_server.received)
    assert got == sorted(site.readers)
    db = site.db()
    with db.session() as session:
        assert session.get_one(Edition, 1).status.value == "done"
    db.dispose()


def test_send_due_takes_no_list_and_send_needs_one(tmp_path: Path, db_url: str) -> None:
    """`send --due --list L` and a bare `send` are each refused in one line."""
    site = Site(db_url, tmp_path)
    mixed = site.cli("send", "--due", "--list", "daily", ok=False)
    assert mixed.exit_code == 1 and "--due takes no other option" in mixed.output
    bare = site.cli("send", ok=False)
    assert bare.exit_code == 1 and "--list" in bare.output and "--due" in bare.output
