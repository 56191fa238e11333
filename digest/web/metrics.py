"""Prometheus metrics at ``/metrics``, read from the database on each scrape (the figures are
``digest.service.metrics``'s)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric

from digest.service.metrics import Figures
from digest.web import context

bp = Blueprint("metrics", __name__)


class LedgerCollector:
    def __init__(self, read: Callable[[], Figures]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        found = self.read()
        editions = GaugeMetricFamily("digest_editions", "Editions by status", labels=["status"])
        for status, count in found.editions.items():
            editions.add_metric([status], count)
        messages = GaugeMetricFamily(
            "digest_messages", "Ledger rows by delivery status", labels=["status"]
        )
        for status, count in found.messages.items():
            messages.add_metric([status], count)
        rate = GaugeMetricFamily(
            "digest_send_rate", "Messages accepted per second over the last minute"
        )
        rate.add_metric([], found.send_rate)
        sources = GaugeMetricFamily("digest_sources", "Feed sources")
        sources.add_metric([], found.sources)
        failing = GaugeMetricFamily(
            "digest_source_errors", "Sources whose last fetch failed, by consecutive errors"
        )
        failing.add_metric([], found.failing_sources)
        yield from (editions, messages, rate, sources, failing)


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    registry.register(LedgerCollector(context().core.metrics))
    # content_type, not mimetype: Flask appends "; charset=utf-8" to a mimetype, and
    # CONTENT_TYPE_LATEST already names the charset, so scrapers saw it twice.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
