"""Prometheus metrics come from the ledger."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from digest.config import Settings
from digest.edition.build import build_edition
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article
from digest.transports import RecordingTransport
from digest.web import create_app


def test_metrics_count_editions_messages_and_rate(db: Database, settings: Settings) -> None:
    """After a send of three messages (one refused) /metrics shows them by outcome, the
    edition by status and a non-zero send rate, in Prometheus' text format."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="H",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        for i in range(3):
            catalog.subscribe(session, daily, f"r{i}@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, daily, dt.date(2026, 11, 24))
        edition_id = edition.id
    transport = RecordingTransport({"r1@example.com": 550})
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)

    response = create_app(settings).test_client().get("/metrics")
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert samples[("digest_messages", (("status", "sent"),))] == 2
    assert samples[("digest_messages", (("status", "bounced"),))] == 1
    assert samples[("digest_editions", (("status", "done"),))] == 1
    assert samples[("digest_send_rate", ())] > 0
