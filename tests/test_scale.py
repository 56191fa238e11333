"""Many workers on many hosts: a Redis Sentinel broker, and PostgreSQL behind PgBouncer."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select, text

from digest.config import Settings, load_settings
from digest.edition import ledger
from digest.edition.build import build_edition
from digest.errors import ConfigError
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog, queue
from digest.service.workers import Beacon, heartbeat_key, read_workers, redis_for
from digest.store.db import Database, engine_options
from digest.store.models import Article
from digest.transports import RecordingTransport
from digest.transports.base import Envelope, SendResult
from tests.conftest import POSTGRES_URL, REDIS_URL

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listening on {port}: {log.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- Redis Sentinel -----------------------------------------------------------------------


def test_sentinel_broker_url_configures_the_master_name() -> None:
    """A sentinel:// broker URL puts the master's name in kombu's transport options, beside
    the visibility timeout; a plain redis:// URL gets no master name."""
    settings = Settings(
        broker_url="sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379",
        broker_master_name="digest-master",
    )
    app = queue.make_celery(settings)
    assert app.conf.broker_url == settings.broker_url
    assert app.conf.broker_transport_options == {
        "visibility_timeout": 3600,
        "master_name": "digest-master",
    }
    plain = queue.make_celery(Settings(broker_url="redis://127.0.0.1:6379/0"))
    assert "master_name" not in plain.conf.broker_transport_options


def test_sentinel_broker_without_master_name_is_refused(tmp_path: Path) -> None:
    """DIGEST_BROKER_URL=sentinel://... without DIGEST_BROKER_MASTER_NAME is a setup error."""
    with pytest.raises(ConfigError, match="BROKER_MASTER_NAME"):
        load_settings(
            environ={
                "DIGEST_CONFIG": str(tmp_path / "absent.toml"),
                "DIGEST_BROKER_URL": "sentinel://127.0.0.1:26379",
                "DIGEST_SECRET_KEY": "k",
            },
        )


@pytest.fixture
def sentinel(redis_url: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A real Redis Sentinel (redis-server --sentinel) watching the test Redis; (port, master
    name). It only watches: with the master up it never fails anything over."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    port = _free_port()
    name = f"digest-{uuid.uuid4().hex[:6]}"
    host, _, master_port = redis_url.split("//")[1].split("/")[0].rpartition(":")
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {name} {host} {master_port} 1\n",
        encoding="utf-8",
    )
    log = tmp_path / "sentinel.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [REDIS_SERVER, str(config), "--sentinel"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log)
        yield port, name
    finally:
        _stop(process)


def test_tasks_reach_the_master_a_real_sentinel_names(sentinel: tuple[int, str]) -> None:
    """Through a real Sentinel, the Celery app built from the settings finds the master and
    queues a task there."""
    port, master = sentinel
    queue_name = f"digest-sentinel-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker_url=f"sentinel://127.0.0.1:{_free_port()};sentinel://127.0.0.1:{port}",
        broker_master_name=master,
        queue=queue_name,
    )
    app = queue.make_celery(settings)
    direct = redis.Redis.from_url(REDIS_URL)
    try:
        app.send_task(queue.SWEEP)
        assert direct.llen(queue_name) == 1
    finally:
        direct.delete(queue_name)
        app.close()


def test_worker_heartbeats_go_to_the_master_a_real_sentinel_names(
    sentinel: tuple[int, str],
) -> None:
    """Through a real Sentinel (the first one listed down), a worker's heartbeat lands on the
    master, and reading through the Sentinels finds the worker answering."""
    port, master = sentinel
    queue_name = f"digest-sentinel-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker_url=f"sentinel://127.0.0.1:{_free_port()};sentinel://127.0.0.1:{port}",
        broker_master_name=master,
        queue=queue_name,
    )
    client = redis_for(settings)
    assert client is not None
    direct = redis.Redis.from_url(REDIS_URL)
    try:
        Beacon(client, queue_name, "mail1@host", 10).beat()
        assert direct.zscore(heartbeat_key(queue_name), "mail1@host") is not None
        found = read_workers(settings)
        assert found is not None and found.alive == ("mail1@host",)
    finally:
        direct.delete(heartbeat_key(queue_name))


# -- PgBouncer in transaction mode ----------------------------------------------------------


def test_pgbouncer_flag_turns_off_server_side_prepared_statements() -> None:
    """?pgbouncer=1 is taken out of the URL psycopg sees and turns prepared statements off;
    without it psycopg keeps its default."""
    url, options = engine_options("postgresql+psycopg://u@db:6432/digest?pgbouncer=1")
    assert "pgbouncer" not in url.query and url.database == "digest"
    assert options["connect_args"] == {"prepare_threshold": None}
    _, plain = engine_options("postgresql+psycopg://u@db:5432/digest")
    assert "prepare_threshold" not in plain.get("connect_args", {})
    with pytest.raises(ConfigError, match="PostgreSQL"):
        engine_options("sqlite:///x.db?pgbouncer=1")


class _Slow(RecordingTransport):
    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        time.sleep(0.015)  # ~0.6 s a batch of 40: the heartbeat (every 1 s) runs in some
        return super().send(envelope, message)


@pytest.fixture
def bouncer_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database reached through a real PgBouncer in transaction mode with
    two server connections, so consecutive transactions of one client hop between them."""
    if not os.path.exists(PGBOUNCER):
        if os.environ.get("DIGEST_REQUIRE_PGBOUNCER"):
            pytest.fail("pgbouncer is not installed")
        pytest.skip("pgbouncer is not installed")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"bouncer_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no server: skip, as the other PostgreSQL tests do
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    port = _free_port()
    tmp_path.chmod(0o755)
    (tmp_path / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
    config = tmp_path / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{name} = host=127.0.0.1 port=5432 dbname={name} user=postgres\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
        f"auth_file = {tmp_path / 'users.txt'}\npool_mode = transaction\n"
        "default_pool_size = 2\nmax_client_conn = 50\nunix_socket_dir =\n",
        encoding="utf-8",
    )
    log = tmp_path / "pgbouncer.log"
    # PgBouncer refuses to run as root; -u drops to the postgres user when we are root.
    command = [PGBOUNCER, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}?pgbouncer=1"
    finally:
        _stop(process)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _hop_between_server_connections(db: Database) -> None:
    """Run one query many times on one client connection while, every other time, a second
    client holds a transaction open: PgBouncer hands out its most recently freed server
    connection first, so the first client's transactions alternate between the two."""
    query = text("SELECT count(*) FROM alembic_version WHERE version_num <> :v")
    with db.engine.connect() as client, db.engine.connect() as blocker:
        for i in range(12):
            if i % 2:
                blocker.execute(text("SELECT 1"))
            client.execute(query, {"v": "x"})
            client.commit()
            blocker.commit()


def test_prepared_statements_break_behind_pgbouncer_without_the_flag(bouncer_url: str) -> None:
    """The reason for the flag: the same URL without ?pgbouncer=1 fails once psycopg prepares
    a statement on one server connection and runs it on another; with it, it works."""
    db = Database(bouncer_url)
    try:
        db.upgrade()
        _hop_between_server_connections(db)
    finally:
        db.dispose()
    bare = Database(bouncer_url.replace("?pgbouncer=1", ""))
    try:
        with pytest.raises(Exception, match="prepared statement"):
            _hop_between_server_connections(bare)
    finally:
        bare.dispose()


def test_migrate_and_send_through_pgbouncer_in_transaction_mode(bouncer_url: str) -> None:
    """Behind a real PgBouncer (transaction pooling): migrations run, and an edition is sent
    to everyone once with grouped, asynchronous commits and lease renewals on a second
    connection, far past psycopg's prepare threshold."""
    db = Database(bouncer_url)
    try:
        db.upgrade()
        settings = Settings(
            secret_key="x",
            from_address="digest@news.example",
            batch_size=40,
            lease_seconds=3,
            commit_every=7,
            synchronous_commit="off",
        )
        with db.session() as session:
            catalog.add_section(session, "national", "National")
            mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
            section = catalog.get_section(session, "national")
            published = dt.datetime(2026, 11, 24, 9)
            session.add(Article(url="https://n.example/1", section_id=section.id,
                                headline="Story", teaser="", published_at=published))  # fmt: skip
            for i in range(120):
                catalog.subscribe(session, mailing_list, f"b{i}@example.com")
            edition, _ = build_edition(session, settings, mailing_list, dt.date(2026, 11, 24))
            edition_id = edition.id

        transport = _Slow()
        report = send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
        assert report.sent == 120 and not report.error
        assert sorted(env.recipient for env, _ in transport.sent) == sorted(
            f"b{i}@example.com" for i in range(120)
        )
        with db.session() as session:
            assert ledger.counts(session, edition_id)["sent"] == 120
            assert session.scalar(select(text("current_setting('synchronous_commit')"))) == "on"
    finally:
        db.dispose()
