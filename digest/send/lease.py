"""Keeping a claimed batch's lease alive while it works (``Heartbeat``), so a lease can be
short and a dead worker's rows come back quickly."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from digest.edition import ledger
from digest.store.db import Database

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps a batch's lease alive while the batch is working: a thread that extends the
    ``lease_until`` of the rows it still holds every third of the lease.

    So the lease can be short (a worker that dies loses its rows for at most one lease) while a
    batch may take as long as it needs: slowed by a rate limit, or by a slow server. A thread,
    not a check between messages, because one message can block (a stalled SMTP write) for
    longer than a lease. But a batch stuck on one message for ``stuck_after`` seconds is
    presumed hung: renewal stops, its rows go to another worker when the lease runs out, and
    the batch itself stops before its next message (``held`` turns false) rather than send
    rows that may now be someone else's.
    """

    def __init__(
        self,
        db: Database,
        edition_id: int,
        owner: str,
        ids: list[int],
        lease: dt.timedelta,
        stuck_after: float,
    ) -> None:
        self.db = db
        self.edition_id = edition_id
        self.owner = owner
        self.ids = ids
        self.lease = lease
        self.stuck_after = stuck_after
        self.every = lease.total_seconds() / 3
        now = time.monotonic()
        #: When the rows were last known to be ours until ``+ lease`` (the claim, a renewal).
        self.renewed_at = now
        self._progress_at = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{owner[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def progress(self) -> None:
        """The batch finished a message: it is not hung."""
        self._progress_at = time.monotonic()

    @property
    def held(self) -> bool:
        """Whether the lease is surely still ours: renewed less than a lease ago, less a third
        for the clocks of other hosts and the time the next message takes."""
        return time.monotonic() - self.renewed_at < self.lease.total_seconds() - self.every

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if time.monotonic() - self._progress_at > self.stuck_after:
                log.error(
                    "edition %s: batch stuck on one message for %.0f s; letting its lease go",
                    self.edition_id,
                    time.monotonic() - self._progress_at,
                    extra={"edition_id": self.edition_id, "batch_id": self.owner},
                )
                return
            started = time.monotonic()
            try:
                with self.db.engine.connect() as connection:
                    held = ledger.renew(
                        connection, self.edition_id, self.owner, self.ids, self.lease
                    )
            except Exception as exc:  # the database is away: try again next beat
                log.warning(
                    "edition %s: lease renewal failed: %s",
                    self.edition_id,
                    exc,
                    extra={"edition_id": self.edition_id, "batch_id": self.owner},
                )
                continue
            if not held:
                # None of the rows still to send is ours any more (the lease lapsed and another
                # batch took them over): this batch must not send them too.
                self.renewed_at = float("-inf")
                return
            self.renewed_at = started
