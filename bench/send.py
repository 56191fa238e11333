"""The send benchmark: how fast the pipeline delivers an edition, against what SMTP allows.

What is measured, on the bundled sample site (its real feeds ingested, so the
digest is the real one) with N extra subscribers on the ``daily`` list:

* **edition build**: ``build_edition`` for today, i.e. choosing the articles and
  writing one ledger row per subscriber (a single INSERT ... SELECT);
* **pipeline**: ``send_until_done`` with the SMTP transport, i.e. everything per
  recipient: the ledger claim, loading the rows, personalising the message
  (signed links, quoted-printable), the SMTP conversation, and the ledger
  update committed after every answer;
* **smtplib floor**: one message the pipeline produced, sent N times over one
  reused ``smtplib`` connection to the same server. No real pipeline can beat
  this from Python; the ratio pipeline/floor says how much of the possible
  rate the pipeline reaches.

With ``--build-scaling`` it times ``build_edition`` with 100 and with 10,000
subscribers instead, each on fresh databases, best of a few runs.

With ``--broker`` the pipeline is two Celery workers fed from Redis instead of
the in-process loop (PostgreSQL is then required: workers share the database).

With ``--dkim`` every message is signed (a fresh 2048-bit RSA key; with
``--dkim ed25519`` also the Ed25519 second signature), as DIGEST_DKIM_* would.

The SMTP server is a counting sink written here, run in a process of its own
so that it never competes with the sender for the GIL. It is not aiosmtpd, on
purpose: aiosmtpd parses the DATA phase line by line in Python coroutines and
keeps every message, so at thousands of messages a second it becomes the
bottleneck and the benchmark would measure the server. The sink below reads
DATA in large chunks and only looks for the terminating ``CRLF . CRLF``.

Run: ``python bench/send.py [--subscribers N] [--database URL] [--batch-size B]``.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import os
import selectors
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text, update

from digest import sample
from digest.config import Settings
from digest.edition import ledger
from digest.edition.build import build_edition, stored_draft
from digest.edition.select import local_today
from digest.ingest import ingest_all
from digest.mail.dkim import make_signer
from digest.mail.mime import Recipient
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer, mail_domain, make_mailer
from digest.service import catalog
from digest.service.demo import install_sample
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from digest.transports.smtp import SmtpConfig, SmtpTransport

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BROKER_URL = "redis://127.0.0.1:6379/15"
LIST_SLUG = "daily"
SCALING_SIZES = (100, 10_000)
SCALING_REPEATS = 3
BROKER_WORKERS = 2
BROKER_TIMEOUT = 1800.0
CHUNK = 256 * 1024
END_OF_DATA = b"\r\n.\r\n"


class BenchError(Exception):
    """The benchmark could not produce a valid figure (printed, exit status 1)."""


# -- the counting SMTP sink (runs in its own process) -------------------------------


@dataclass
class _Client:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    in_data: bool = False
    scanned: int = 0  # where the next search for END_OF_DATA starts


_REPLIES = {
    b"EHLO": b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n",
    b"HELO": b"250 sink.bench\r\n",
    b"MAIL": b"250 2.1.0 OK\r\n",
    b"RCPT": b"250 2.1.5 OK\r\n",
    b"RSET": b"250 2.0.0 OK\r\n",
    b"NOOP": b"250 2.0.0 OK\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"QUIT": b"221 2.0.0 Bye\r\n",
}


def _command_reply(line: bytes) -> bytes:
    return _REPLIES.get(line[:4].upper(), b"502 5.5.2 Command not implemented\r\n")


def _end_of_message(client: _Client) -> bool:
    """Whether the buffer holds the end of the message; if so, drops the message from it."""
    end = client.buffer.find(END_OF_DATA, client.scanned)
    if end < 0:
        client.scanned = max(0, len(client.buffer) - len(END_OF_DATA) + 1)
        return False
    del client.buffer[: end + len(END_OF_DATA)]
    client.in_data, client.scanned = False, 0
    return True


def _advance(client: _Client, counter: Synchronized[int]) -> tuple[bytes, bool]:
    """Consume what the buffer holds; returns the replies to send and whether to close."""
    replies: list[bytes] = []
    while True:
        if client.in_data:
            if not _end_of_message(client):
                return b"".join(replies), False
            with counter.get_lock():
                counter.value += 1
            replies.append(b"250 2.0.0 Accepted\r\n")
            continue
        eol = client.buffer.find(b"\r\n")
        if eol < 0:
            return b"".join(replies), False
        line = bytes(client.buffer[:eol])
        del client.buffer[: eol + 2]
        replies.append(_command_reply(line))
        verb = line[:4].upper()
        if verb == b"QUIT":
            return b"".join(replies), True
        if verb == b"DATA":
            # A CRLF in front lets an empty message's lone ".\r\n" match END_OF_DATA too.
            client.buffer[0:0] = b"\r\n"
            client.in_data = True


def _on_readable(
    selector: selectors.BaseSelector, client: _Client, counter: Synchronized[int]
) -> None:
    data = client.sock.recv(CHUNK)
    close = not data
    if data:
        client.buffer += data
        replies, close = _advance(client, counter)
        if replies:
            client.sock.sendall(replies)
    if close:
        selector.unregister(client.sock)
        client.sock.close()


def _serve(listener: socket.socket, counter: Synchronized[int]) -> None:
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                sock, _addr = listener.accept()
                sock.sendall(b"220 sink.bench ESMTP counting sink\r\n")
                selector.register(sock, selectors.EVENT_READ, _Client(sock))
                continue
            try:
                _on_readable(selector, key.data, counter)
            except OSError:
                selector.unregister(key.fileobj)
                key.data.sock.close()


def _sink_main(port_out: Connection, counter: Synchronized[int]) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port_out.send(listener.getsockname()[1])
    port_out.close()
    _serve(listener, counter)


class Sink:
    """The counting SMTP server, in a process of its own."""

    def __init__(self) -> None:
        context = mp.get_context("spawn")
        self._counter: Synchronized[int] = context.Value("q", 0)
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_sink_main, args=(sender, self._counter), daemon=True
        )
        self._process.start()
        if not receiver.poll(30):
            raise BenchError("the SMTP sink did not start")
        self.port: int = receiver.recv()
        self.host = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        with self._counter.get_lock():
            return int(self._counter.value)

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(10)


# -- databases and the site --------------------------------------------------------------


def _with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_database(base_url: str | None, workdir: Path) -> Iterator[str]:
    """A URL to an empty database: a new SQLite file, or a new schema on PostgreSQL
    (dropped afterwards)."""
    if not base_url or base_url.startswith("sqlite"):
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    server = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _with_search_path(base_url, schema)
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        server.dispose()


def bench_settings(url: str, batch_size: int, **extra: Any) -> Settings:
    site = sample.load_site()
    return Settings(
        database_url=url,
        base_url="https://news.example",
        secret_key="bench-secret-key",
        site_name=site.name,
        site_url=site.url,
        postal_address=site.postal_address,
        from_address="digest@meridian.example",
        batch_size=batch_size,
        **extra,
    )


def dkim_settings(settings: Settings, kind: str, workdir: Path) -> Settings:
    """The settings with DKIM keys made for the run: RSA, and Ed25519 too if asked."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_file = workdir / "dkim-rsa.pem"
    rsa_file.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    )
    settings = settings.replace(
        dkim_domain="meridian.example", dkim_selector="bench", dkim_key_file=str(rsa_file)
    )
    if kind != "ed25519":
        return settings
    ed_file = workdir / "dkim-ed25519.pem"
    ed_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    return settings.replace(dkim_ed25519_selector="bench-ed", dkim_ed25519_key_file=str(ed_file))


def add_subscribers(db: Database, count: int) -> None:
    """``count`` confirmed, active subscribers of the list, inserted set-based; the sample's
    own subscribers of the list are unsubscribed so the edition goes to exactly ``count``."""
    now = utcnow()
    with db.session() as session:
        list_id = catalog.get_list(session, LIST_SLUG).id
        session.execute(
            update(Subscription)
            .where(Subscription.list_id == list_id)
            .values(status=SubscriptionStatus.UNSUBSCRIBED)
        )
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{i}@bench.example",
                    "name": f"Reader {i}",
                    "status": SubscriberStatus.ACTIVE,
                }
                for i in range(count)
            ],
        )
        ids = session.scalars(
            select(Subscriber.id).where(Subscriber.email.like("%@bench.example"))
        ).all()
        session.execute(
            insert(Subscription),
            [
                {
                    "list_id": list_id,
                    "subscriber_id": sid,
                    "status": SubscriptionStatus.CONFIRMED,
                    "source": "bench",
                    "confirmed_at": now,
                }
                for sid in ids
            ],
        )


def timed_build(db: Database, settings: Settings) -> tuple[int, float]:
    """Build today's edition of the list; returns its id and the seconds it took."""
    with db.session() as session:
        mailing_list = catalog.get_list(session, LIST_SLUG)
        day = local_today(mailing_list.timezone)
        started = time.perf_counter()
        edition, created = build_edition(session, settings, mailing_list, day)
        elapsed = time.perf_counter() - started
        if not created or edition.status != EditionStatus.READY:
            raise BenchError(f"edition for {day} not built fresh and ready: {edition.status}")
        return edition.id, elapsed


def prepare_site(url: str, subscribers: int, batch_size: int, workdir: Path) -> Database:
    """The sample site, ingested, with ``subscribers`` readers of the list; no edition yet."""
    db = Database(url)
    db.upgrade()
    install_sample(db, workdir / f"sample-site-{uuid.uuid4().hex[:8]}")
    ingest_all(db, bench_settings(url, batch_size))
    add_subscribers(db, subscribers)
    return db


# -- the measurements ----------------------------------------------------------------


def run_pipeline(
    db: Database, mailer: EditionMailer, edition_id: int, sink_url: str, profile: str | None
) -> tuple[int, float]:
    """``send_until_done`` over SMTP to the sink; returns messages sent and seconds."""
    factory = partial(SmtpTransport, SmtpConfig.from_url(sink_url))
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    report = send_until_done(db, mailer, edition_id, factory)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    if profiler and profile:
        profiler.dump_stats(profile)
    if report.error:
        raise BenchError(f"the pipeline stopped: {report.error}")
    return report.sent, elapsed


def one_message(db: Database, mailer: EditionMailer, edition_id: int) -> tuple[str, str, bytes]:
    """(sender, recipient, message) as the pipeline builds them for the edition's first row."""
    with db.sessionmaker() as session:
        edition = session.get_one(Edition, edition_id)
        draft = stored_draft(session, mailer.settings, edition)
        delivery_id, subscriber_id, email, name = session.execute(
            select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.name)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.edition_id == edition_id)
            .order_by(Delivery.id)
            .limit(1)
        ).one()
    template = mailer.template_for(edition_id, draft, None)
    recipient = Recipient(
        email,
        name,
        mailer.personal_links(subscriber_id, edition.list_id),
        mailer.message_id(
            edition_id, delivery_id, mail_domain(mailer.settings, draft.mailing_list)
        ),
    )
    return template.from_address, email, template.build(recipient, formatdate(usegmt=True))


def run_floor(sink: Sink, count: int, sender: str, recipient: str, message: bytes) -> float:
    """Seconds to send ``message`` ``count`` times over one plain smtplib connection."""
    with smtplib.SMTP(sink.host, sink.port, timeout=30) as conn:
        conn.ehlo()
        started = time.perf_counter()
        for _ in range(count):
            conn.sendmail(sender, [recipient], message)
        return time.perf_counter() - started


def expect_count(sink: Sink, before: int, expected: int, what: str) -> None:
    got = sink.count - before
    if got != expected:
        raise BenchError(f"{what}: the sink accepted {got} messages, expected {expected}")


# -- the broker variant -----------------------------------------------------------------


def broker_environment(settings: Settings, sink_url: str, workdir: Path) -> dict[str, str]:
    """The environment the workers (and this process's runtime settings) read."""
    config = workdir / "bench.toml"
    config.write_text("", encoding="utf-8")
    return {
        "DIGEST_CONFIG": str(config),
        "DIGEST_BROKER_URL": BROKER_URL,
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SMTP_URL": sink_url,
        "DIGEST_SECRET_KEY": settings.secret,
        "DIGEST_BASE_URL": settings.base_url,
        "DIGEST_SITE_NAME": settings.site_name,
        "DIGEST_SITE_URL": settings.site_url,
        "DIGEST_POSTAL_ADDRESS": settings.postal_address,
        "DIGEST_FROM_ADDRESS": settings.from_address,
        "DIGEST_BATCH_SIZE": str(settings.batch_size),
        **{
            f"DIGEST_{name.upper()}": value
            for name in (
                "dkim_domain",
                "dkim_selector",
                "dkim_key_file",
                "dkim_ed25519_selector",
                "dkim_ed25519_key_file",
            )
            if (value := getattr(settings, name))
        },
        "DIGEST_COMMIT_EVERY": str(settings.commit_every),
        "DIGEST_COMMIT_INTERVAL": str(settings.commit_interval),
        "DIGEST_SYNCHRONOUS_COMMIT": settings.synchronous_commit,
    }


def start_workers(env: dict[str, str], workdir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """The Celery workers, their output in ``workdir/worker-N.log``."""
    command = [sys.executable, "-m", "celery", "-A", "digest.worker.app", "worker"]
    workers = []
    for i in range(1, count + 1):
        with (workdir / f"worker-{i}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [*command, "--concurrency", "1", "-n", f"bench{i}@%h", "--loglevel", "INFO"],
                    env={**os.environ, **env},
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def worker_logs(workdir: Path, lines: int = 10) -> str:
    tails = []
    for log in sorted(workdir.glob("worker-*.log")):
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        tails.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(tails)


def wait_for_workers(deadline: float, count: int) -> None:
    from digest.worker.app import app

    if app.conf.task_always_eager:
        raise BenchError("digest.celery_app was loaded without the broker settings")
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0)) >= count:
            return
    raise BenchError("the Celery workers did not answer a ping")


def open_rows(db: Database, edition_id: int) -> int:
    with db.sessionmaker() as session:
        found = ledger.counts(session, edition_id)
    return sum(found[status.value] for status in ledger.OPEN_STATUSES)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def peak_rss_kib(pid: int) -> int:
    """VmHWM (the peak resident set) of a process, 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def worker_peaks(workers: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """Peak RSS of each worker's main process and of its pool process (the one that sends)."""
    peaks = {}
    for i, worker in enumerate(workers, 1):
        peaks[f"worker {i} main"] = peak_rss_kib(worker.pid)
        for child in _children(worker.pid):
            peaks[f"worker {i} pool"] = max(peaks.get(f"worker {i} pool", 0), peak_rss_kib(child))
    return peaks


def run_broker(
    db: Database, settings: Settings, edition_id: int, sink: Sink, workdir: Path, count: int
) -> tuple[float, dict[str, int]]:
    """Queue the edition's batches for ``count`` Celery workers; seconds until no row is open,
    and each worker's peak memory."""
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    env = broker_environment(settings, sink.url, workdir)
    # This process queues the tasks: its Celery app and runtime settings must see the broker.
    os.environ.update(env)
    from digest.config import load_settings
    from digest.service.core import Digest

    core = Digest(load_settings(), db=db)
    workers = start_workers(env, workdir, count)
    try:
        wait_for_workers(time.monotonic() + 120, count)
        started = time.perf_counter()
        core.continue_send(edition_id)
        while open_rows(db, edition_id):
            if time.perf_counter() - started > BROKER_TIMEOUT:
                raise BenchError("the broker send did not finish in time")
            time.sleep(0.5)
        return time.perf_counter() - started, worker_peaks(workers)
    except BenchError as exc:
        raise BenchError(f"{exc}\n{worker_logs(workdir)}") from exc
    finally:
        stop_workers(workers)


# -- the runs --------------------------------------------------------------------------


def show(label: str, value: str) -> None:
    print(f"{label:<22} {value}", flush=True)


def show_rate(label: str, count: int, seconds: float) -> None:
    show(label, f"{seconds:.2f} s   {count / seconds:.0f} msg/s")


def send_benchmark(args: argparse.Namespace, workdir: Path) -> None:
    base_url = args.database or (POSTGRES_URL if args.broker else None)
    if args.broker and not (base_url or "").startswith("postgresql"):
        raise BenchError("--broker needs a PostgreSQL --database: the workers share it")
    sink = Sink()
    try:
        with fresh_database(base_url, workdir) as url:
            settings = bench_settings(url, args.batch_size, **commit_options(args))
            if args.dkim:
                settings = dkim_settings(settings, args.dkim, workdir)
            if args.track_clicks:
                settings = settings.replace(track_clicks=True, track_opens=True)
            db = prepare_site(url, args.subscribers, args.batch_size, workdir)
            try:
                measure_send(args, db, settings, sink, workdir)
            finally:
                db.dispose()
    finally:
        sink.stop()


def measure_send(
    args: argparse.Namespace, db: Database, settings: Settings, sink: Sink, workdir: Path
) -> None:
    count = args.subscribers
    edition_id, build_seconds = timed_build(db, settings)
    show("subscribers", str(count))
    show("database", db.engine.dialect.name)
    show("batch size", str(settings.batch_size))
    show("commits", f"every {settings.commit_every} / {settings.commit_interval} s, "
         f"synchronous_commit={settings.synchronous_commit}")  # fmt: skip
    show("edition build", f"{build_seconds:.2f} s")
    signer = make_signer(settings)
    mailer = EditionMailer(settings, signer=signer)
    show("dkim", ", ".join(signer.algorithms) if signer else "off")
    if not args.broker:
        compare_pipelines(args, db, settings, edition_id, sink)
        return
    before = sink.count
    workers = args.workers
    seconds, peaks = run_broker(db, settings, edition_id, sink, workdir, workers)
    label = f"broker ({workers} workers)"
    expect_count(sink, before, count, label)
    show_rate(label, count, seconds)
    for name, kib in peaks.items():
        show(f"peak RSS {name}", f"{kib / 1024:.0f} MiB")
    sender, recipient, message = one_message(db, mailer, edition_id)
    before = sink.count
    floor_seconds = run_floor(sink, count, sender, recipient, message)
    expect_count(sink, before, count, "smtplib floor")
    show_rate("smtplib floor", count, floor_seconds)
    show("message size", f"{len(message)} bytes")
    show("ratio", f"{floor_seconds / seconds:.2f}")


def reset_ledger(db: Database, edition_id: int) -> None:
    """Make the edition unsent again, so the next variant sends the same rows."""
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.edition_id == edition_id)
            .values(status=DeliveryStatus.PENDING, lease_owner=None, lease_until=None,
                    sent_at=None, message_id=None, attempts=0, next_attempt_at=None)
        )  # fmt: skip
        session.execute(
            update(Edition)
            .where(Edition.id == edition_id)
            .values(status=EditionStatus.READY, completed_at=None)
        )


def compare_pipelines(
    args: argparse.Namespace, db: Database, settings: Settings, edition_id: int, sink: Sink
) -> None:
    """Each commit variant and the smtplib floor, interleaved round after round so that all
    see the same machine load; best and median of each, and each best against the floor's."""
    count = args.subscribers
    variants = args.compare or [(settings.commit_every, settings.synchronous_commit)]
    times: dict[str, list[float]] = {}
    # CPU seconds of this process (all its threads): what the machine's load does not change.
    cpu_times: dict[str, list[float]] = {}
    floor: list[float] = []
    message = b""
    for round_ in range(args.repeat):
        for every, synchronous in variants:
            label = f"pipeline K={every} sync={synchronous}"
            if round_ or len(times):
                reset_ledger(db, edition_id)
            # make_mailer: signed with --dkim, as every face of Digest signs.
            mailer = make_mailer(
                settings.replace(commit_every=every, synchronous_commit=synchronous)
            )
            before, cpu = sink.count, time.process_time()
            sent, seconds = run_pipeline(db, mailer, edition_id, sink.url, args.profile)
            cpu_times.setdefault(label, []).append(time.process_time() - cpu)
            expect_count(sink, before, count, label)
            if sent != count:
                raise BenchError(f"{label}: {sent} messages sent, expected {count}")
            times.setdefault(label, []).append(seconds)
        sender, recipient, message = one_message(db, make_mailer(settings), edition_id)
        before, cpu = sink.count, time.process_time()
        floor.append(run_floor(sink, count, sender, recipient, message))
        cpu_times.setdefault("smtplib floor", []).append(time.process_time() - cpu)
        expect_count(sink, before, count, "smtplib floor")
    show("message size", f"{len(message)} bytes")
    show("rounds", f"{args.repeat} (best / median of each; load {os.getloadavg()[0]:.1f})")
    show_best("smtplib floor", count, floor)
    show_cpu(count, cpu_times["smtplib floor"])
    for label, runs in times.items():
        show_best(label, count, runs)
        show_cpu(count, cpu_times[label])
        show("  ratio to floor", f"{min(floor) / min(runs):.2f} (medians: "
             f"{statistics.median(floor) / statistics.median(runs):.2f})")  # fmt: skip


def show_cpu(count: int, seconds: list[float]) -> None:
    show(
        "  sender CPU",
        f"{min(seconds) / count * 1e6:.0f} µs/msg (best; the database's own not counted)",
    )


def show_best(label: str, count: int, seconds: list[float]) -> None:
    best, median = min(seconds), statistics.median(seconds)
    show(label, f"{count / best:.0f} msg/s best, {count / median:.0f} median")


def build_scaling(args: argparse.Namespace, workdir: Path) -> None:
    """Best-of-N build times for each size, each run on a fresh database."""
    best: dict[int, float] = {}
    for _ in range(SCALING_REPEATS):
        for size in SCALING_SIZES:
            with fresh_database(args.database, workdir) as url:
                db = prepare_site(url, size, args.batch_size, workdir)
                try:
                    _, seconds = timed_build(db, bench_settings(url, args.batch_size))
                finally:
                    db.dispose()
            best[size] = min(seconds, best.get(size, seconds))
    for size in SCALING_SIZES:
        show(f"build, {size} subs", f"{best[size] * 1000:.1f} ms")
    small, large = (best[size] for size in SCALING_SIZES)
    show("growth", f"{(large / small - 1) * 100:.0f} %   (target: < 10 %)")


def variant(text_: str) -> tuple[int, str]:
    every, _, synchronous = text_.partition(":")
    if synchronous not in ("on", "off") or not every.isdigit() or int(every) < 1:
        raise argparse.ArgumentTypeError(f"expected K:on or K:off, got {text_!r}")
    return int(every), synchronous


def commit_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "commit_every": args.commit_every,
        "commit_interval": args.commit_interval,
        "synchronous_commit": args.synchronous_commit,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=20_000, metavar="N")
    parser.add_argument(
        "--database", metavar="URL", help="SQLAlchemy URL; PostgreSQL gets a fresh schema"
    )
    parser.add_argument("--batch-size", type=int, default=200, metavar="B")
    parser.add_argument("--build-scaling", action="store_true", help="time build_edition only")
    parser.add_argument("--broker", action="store_true", help="send with Celery workers")
    parser.add_argument("--workers", type=int, default=BROKER_WORKERS, metavar="W",
                        help="Celery worker processes with --broker")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, metavar="R",
                        help="rounds of the in-process variants and the floor")  # fmt: skip
    parser.add_argument(
        "--compare", type=variant, nargs="+", metavar="K:SYNC",
        help="commit variants to compare side by side, e.g. 1:on 1:off 20:on",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="FILE", help="cProfile the pipeline into FILE")
    parser.add_argument(
        "--dkim",
        nargs="?",
        const="rsa",
        choices=["rsa", "ed25519"],
        help="sign every message: RSA, or RSA and Ed25519",
    )
    parser.add_argument(
        "--track-clicks",
        action="store_true",
        help="track clicks and opens: a signed link per article and a pixel in every message",
    )
    defaults = Settings()
    parser.add_argument(
        "--commit-every", type=int, default=defaults.commit_every, metavar="K",
        help="outcomes per ledger commit (DIGEST_COMMIT_EVERY)",
    )  # fmt: skip
    parser.add_argument(
        "--commit-interval", type=float, default=defaults.commit_interval, metavar="S",
        help="seconds an outcome may wait for its commit (DIGEST_COMMIT_INTERVAL)",
    )  # fmt: skip
    parser.add_argument(
        "--synchronous-commit", choices=("on", "off"), default=defaults.synchronous_commit,
        help="PostgreSQL: wait for the WAL flush at each commit (DIGEST_SYNCHRONOUS_COMMIT)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run: Callable[[argparse.Namespace, Path], None] = (
        build_scaling if args.build_scaling else send_benchmark
    )
    try:
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
            run(args, Path(tmp))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
