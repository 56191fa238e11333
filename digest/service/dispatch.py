"""Where an edition's sending happens: here and now, in a thread of this process, or on the
Celery workers. One small interface, so the service never asks "is there a broker?".

::

    Dispatcher                 send(edition_id, rows, on_batch) -> Dispatched; ingest; notify
    ├── InProcessDispatcher    sends every due row now, in this process (the CLI's default)
    ├── BackgroundDispatcher   the same in a thread (the web app without a broker)
    ├── CeleryDispatcher       queues one batch task per batch_size rows for the workers
    └── RecordingDispatcher    remembers what it was asked (tests)
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from digest.edition import ledger
from digest.errors import DigestError
from digest.send.batch import BatchReport
from digest.service import queue
from digest.service.notices import Notice
from digest.store.db import Database

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

OnBatch = Callable[[BatchReport], None]
#: Sends every due row of an edition in this process; returns the total.
SendAll = Callable[[int, OnBatch | None], BatchReport]
#: Fetches and stores one source in this process.
IngestOne = Callable[[int], object]
#: Sends one notice in this process.
NotifyOne = Callable[[Notice], None]


@dataclass
class Dispatched:
    """What dispatching did: ``mode`` is "in-process" (sent now: see ``report``),
    "background" (a thread of this process), "queued" (``batches`` tasks for the workers)."""

    mode: str
    batches: int = 0
    report: BatchReport | None = None


class Dispatcher(Protocol):
    def check(self) -> None:
        """Raise DigestError, in one line, if sending cannot start (the broker is down)."""

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        """Get the edition's due rows sent; ``rows``: how many are due, if known."""

    def ingest(self, source_ids: list[int]) -> None:
        """Get each source fetched and stored."""

    def notify(self, notice: Notice) -> None:
        """Get one notice sent."""


class InProcessDispatcher:
    def __init__(self, send_all: SendAll, ingest_one: IngestOne, notify_one: NotifyOne) -> None:
        self._send_all = send_all
        self._ingest_one = ingest_one
        self._notify_one = notify_one

    def check(self) -> None:
        return None

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        return Dispatched("in-process", report=self._send_all(edition_id, on_batch))

    def ingest(self, source_ids: list[int]) -> None:
        for source_id in source_ids:
            self._ingest_one(source_id)

    def notify(self, notice: Notice) -> None:
        self._notify_one(notice)


@dataclass
class BackgroundDispatcher:
    """In-process sends started from the web app, one thread per edition at most.

    A second thread on the same edition would be harmless (the ledger hands each row to one
    claimer) but pointless. ``wait`` lets tests wait for the sends they started.
    """

    send_all: SendAll
    ingest_one: IngestOne
    #: The web app runs notices after the response already: sent in that thread.
    notify_one: NotifyOne
    threads: dict[int, threading.Thread] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> None:
        return None

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        with self.lock:
            running = self.threads.get(edition_id)
            if running is None or not running.is_alive():
                thread = threading.Thread(
                    target=self._run,
                    args=(edition_id,),
                    name=f"digest-send-{edition_id}",
                    daemon=True,
                )
                self.threads[edition_id] = thread
                thread.start()
        return Dispatched("background")

    def _run(self, edition_id: int) -> None:
        try:
            report = self.send_all(edition_id, None)
        except Exception:
            # Nobody waits on this thread: the log is the only place a crash can be seen.
            # The rows it did not reach stay in the ledger, and the next send finishes them.
            log.exception("background send of edition %s stopped", edition_id)
            return
        if report.error:
            log.warning("background send of edition %s stopped: %s", edition_id, report.error)

    def ingest(self, source_ids: list[int]) -> None:
        for source_id in source_ids:
            self.ingest_one(source_id)

    def notify(self, notice: Notice) -> None:
        self.notify_one(notice)

    def wait(self, timeout: float = 60.0) -> bool:
        """Join every send started so far; returns whether all of them finished."""
        with self.lock:
            threads = list(self.threads.values())
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)


class CeleryDispatcher:
    """Queues batch tasks by name; any number of workers on any number of hosts take them,
    and the ledger keeps them from overlapping."""

    def __init__(self, app: Celery, db: Database, batch_size: int, queue_name: str) -> None:
        self.app = app
        self.db = db
        self.batch_size = batch_size
        self.queue_name = queue_name

    def check(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:  # kombu raises many kinds; any of them means "not reachable"
            url = self.app.conf.broker_url
            raise DigestError(f"the broker at {_safe(url)} is not answering: {exc}") from exc

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        """Queue one batch task per ``batch_size`` rows (default: all open rows).

        Called after the rows are committed. Queuing too many is harmless: a batch
        task that finds nothing to claim ends at once.
        """
        if rows is None:
            with self.db.session() as session:
                rows = ledger.open_count(session, edition_id)
        batches = math.ceil(rows / self.batch_size)
        for _ in range(batches):
            self.app.send_task(queue.SEND_BATCH, args=[edition_id], queue=self.queue_name)
        return Dispatched("queued", batches=batches)

    def ingest(self, source_ids: list[int]) -> None:
        for source_id in source_ids:
            self.app.send_task(queue.INGEST_SOURCE, args=[source_id], queue=self.queue_name)

    def notify(self, notice: Notice) -> None:
        self.app.send_task(queue.SEND_NOTICE, args=notice.as_args(), queue=self.queue_name)


@dataclass
class RecordingDispatcher:
    """Remembers each request instead of acting on it: for tests of the faces above."""

    #: (edition id, rows said to be due: None when not counted) per request.
    sent: list[tuple[int, int | None]] = field(default_factory=list)
    ingested: list[int] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def check(self) -> None:
        return None

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        self.sent.append((edition_id, rows))
        return Dispatched("queued", batches=1)

    def ingest(self, source_ids: list[int]) -> None:
        self.ingested.extend(source_ids)

    def notify(self, notice: Notice) -> None:
        self.notices.append(notice)


def _safe(url: str) -> str:
    """The broker URL without its password, for messages."""
    scheme, sep, rest = str(url).partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"
