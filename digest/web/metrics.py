"""Prometheus metrics at ``/metrics``, read from the database on each scrape.

The ledger is the source of truth for every count, so the numbers are the
same whichever web process is scraped and survive restarts; nothing is kept
in process memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from digest.store.db import Database
from digest.store.models import Delivery, Edition, Source, utcnow
from digest.web import context

bp = Blueprint("metrics", __name__)

#: The window the send rate is measured over.
RATE_WINDOW = dt.timedelta(minutes=1)


class LedgerCollector:
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        editions = GaugeMetricFamily("digest_editions", "Editions by status", labels=["status"])
        messages = GaugeMetricFamily(
            "digest_messages", "Ledger rows by delivery status", labels=["status"]
        )
        rate = GaugeMetricFamily(
            "digest_send_rate", "Messages accepted per second over the last minute"
        )
        sources = GaugeMetricFamily("digest_sources", "Feed sources")
        failing = GaugeMetricFamily(
            "digest_source_errors", "Sources whose last fetch failed, by consecutive errors"
        )
        with self.db.session() as session:
            for status, count in session.execute(
                select(Edition.status, func.count()).group_by(Edition.status)
            ):
                editions.add_metric([status.value], count)
            for delivery_status, count in session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ):
                messages.add_metric([delivery_status.value], count)
            since = utcnow() - RATE_WINDOW
            recent = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.sent_at >= since)
            )
            rate.add_metric([], (recent or 0) / RATE_WINDOW.total_seconds())
            sources.add_metric([], session.scalar(select(func.count()).select_from(Source)) or 0)
            failing.add_metric(
                [],
                session.scalar(
                    select(func.count()).select_from(Source).where(Source.consecutive_errors > 0)
                )
                or 0,
            )
        yield from (editions, messages, rate, sources, failing)


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    registry.register(LedgerCollector(context().db))
    # content_type, not mimetype: Flask appends "; charset=utf-8" to a mimetype, and
    # CONTENT_TYPE_LATEST already names the charset, so scrapers saw it twice.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
