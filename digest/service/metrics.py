"""The figures ``/metrics`` exposes, read from the database on each scrape: the ledger is the
source of truth for every count, so the numbers are the same whichever web process is scraped
and survive restarts; nothing is kept in process memory."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from digest.store.db import Database
from digest.store.models import Delivery, Edition, Source, utcnow

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


def figures(db: Database) -> Figures:
    with db.session() as session:
        editions = {
            status.value: int(count)
            for status, count in session.execute(
                select(Edition.status, func.count()).group_by(Edition.status)
            )
        }
        messages = {
            status.value: int(count)
            for status, count in session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
        }
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
    )
