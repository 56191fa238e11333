"""Prometheus metrics at ``/metrics``, read from the database on each scrape (the figures are
``digest.service.metrics``'s).

The counts are not for everyone: the number of deliveries tells a guesser how many ids there
are to guess. With DIGEST_METRICS_TOKEN set, a scrape needs ``Authorization: Bearer TOKEN``;
without it, only a client on the loopback interface is answered, and only if no proxy
forwarded its request (behind a reverse proxy on the same host every visitor would look
local).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterator

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric

from digest.service.metrics import Figures
from digest.web import context

bp = Blueprint("metrics", __name__)

#: Headers a reverse proxy adds: a request carrying one did not start on this host.
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


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
        age = GaugeMetricFamily(
            "digest_queue_age_seconds",
            "Seconds the oldest due recipient of a sending edition has waited (0: none due)",
        )
        age.add_metric([], found.queue_age)
        unclaimed = GaugeMetricFamily(
            "digest_queue_unclaimed_seconds",
            "Longest time a sending edition with due recipients has gone without a batch "
            "taking any (0 while workers take them): alert on this",
        )
        unclaimed.add_metric([], found.queue_unclaimed)
        unanswered = GaugeMetricFamily(
            "digest_messages_unanswered",
            "Ledger rows whose message went out without the server answering (maybe twice)",
        )
        unanswered.add_metric([], found.unanswered)
        yield from (age, unclaimed, unanswered)
        if found.workers is not None:
            workers = GaugeMetricFamily(
                "digest_workers", "Workers whose heartbeat in Redis is fresh, on this queue"
            )
            workers.add_metric([], found.workers)
            yield workers


def _token_matches(given: str, expected: str) -> bool:
    # Digests first: compare_digest of unequal lengths returns at once, telling the length.
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _refusal(token: str | None) -> Response | None:
    """Why this request may not see the metrics (a plain-text answer), or None if it may."""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _token_matches(given.strip(), token):
            return None
        return Response(
            "metrics need Authorization: Bearer DIGEST_METRICS_TOKEN\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="digest metrics"'},
        )
    if _is_loopback(request.remote_addr) and not any(h in request.headers for h in _PROXY_HEADERS):
        return None
    return Response(
        "metrics answer only local clients; set DIGEST_METRICS_TOKEN to scrape from elsewhere\n",
        status=403,
        mimetype="text/plain",
    )


@bp.get("/metrics")
def metrics() -> Response:
    refusal = _refusal(context().settings.metrics_token)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    registry.register(LedgerCollector(context().core.metrics))
    # content_type, not mimetype: Flask appends "; charset=utf-8" to a mimetype, and
    # CONTENT_TYPE_LATEST already names the charset, so scrapers saw it twice.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
