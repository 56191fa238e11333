"""The figures ``/metrics`` exposes, read from the database on each scrape: the ledger is the
source of truth for every count, so the numbers are the same whichever web process is scraped
and survive restarts; nothing is kept in process memory. On a Redis broker the workers'
heartbeats are read too."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import ledger
from digest.errors import DigestError
from digest.service.workers import read_workers
from digest.store.db import Database
from digest.store.models import Delivery, Edition, EditionStatus, Source, utcnow

log = logging.getLogger(__name__)

__all__ = ["RATE_WINDOW", "Figures", "figures"]

#: The window the send rate is measured over.
RATE_WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Figures:
    editions: dict[str, int]
    messages: dict[str, int]
    #: Messages accepted per second over the last RATE_WINDOW.
    send_rate: float
    sources: int
    failing_sources: int
    #: Seconds the oldest due row of a sending edition has waited since it became due
    #: (0: nothing due): the backlog's age, which grows during a long send too.
    queue_age: float = 0.0
    #: The longest any sending edition with due rows has gone without a batch claiming one
    #: (0 while workers take them): what stays at 0 while anyone works the queue.
    queue_unclaimed: float = 0.0
    #: Workers whose heartbeat is fresh; None when that cannot be read (no Redis broker).
    workers: int | None = None
    #: Ledger rows whose message went out at least once without an answer from the server
    #: (the recipient may have a second copy).
    unanswered: int = 0


def figures(db: Database, settings: Settings | None = None) -> Figures:
    now = utcnow()
    with db.session() as session:
        age, unclaimed = _queue(session, now)
        editions = {
            status.value: int(count)
            for status, count in session.execute(
                select(Edition.status, func.count()).group_by(Edition.status)
            )
        }
        messages: dict[str, int] = {}
        unanswered = 0
        for status, count, doubtful in session.execute(
            select(
                Delivery.status,
                func.count(),
                func.sum(case((Delivery.unanswered > 0, 1), else_=0)),
            ).group_by(Delivery.status)
        ):
            messages[status.value] = int(count)
            unanswered += int(doubtful or 0)
        since = utcnow() - RATE_WINDOW
        recent = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.sent_at >= since)
        )
        sources = session.scalar(select(func.count()).select_from(Source)) or 0
        failing = (
            session.scalar(
                select(func.count()).select_from(Source).where(Source.consecutive_errors > 0)
            )
            or 0
        )
    return Figures(
        editions=editions,
        messages=messages,
        send_rate=(recent or 0) / RATE_WINDOW.total_seconds(),
        sources=int(sources),
        failing_sources=int(failing),
        queue_age=age,
        queue_unclaimed=unclaimed,
        workers=_workers(settings),
        unanswered=unanswered,
    )


def _queue(session: Session, now: dt.datetime) -> tuple[float, float]:
    """(queue age, longest unclaimed wait) over the sending editions, in seconds."""
    oldest = session.scalar(
        select(func.min(ledger.due_since(Edition.created_at)))
        .select_from(Delivery)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Edition.status == EditionStatus.READY, ledger.due_condition(now))
    )
    unclaimed = 0.0
    for edition in session.scalars(select(Edition).where(Edition.status == EditionStatus.READY)):
        since = ledger.unclaimed_since(session, edition, now)
        if since is not None:
            unclaimed = max(unclaimed, (now - since).total_seconds())
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return age, max(unclaimed, 0.0)


def _workers(settings: Settings | None) -> int | None:
    if settings is None or not settings.uses_broker:
        return None
    try:
        found = read_workers(settings)
    except DigestError as exc:
        # A scrape must not fail for it: the gauge is left out, and the broker's own
        # monitoring says why.
        log.warning("metrics: %s", exc)
        return None
    return None if found is None else len(found.alive)
