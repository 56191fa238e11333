"""Prometheus metrics come from the ledger, and only for those allowed to see them."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families

from digest.config import Settings, load_settings
from digest.edition.build import build_edition
from digest.errors import ConfigError
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


TOKEN = "metrics-token-" + "k3Jx9QpL2vWm8ZrT5yBn"


def test_metrics_with_a_token_need_it(db: Database, settings: Settings) -> None:
    """With DIGEST_METRICS_TOKEN set, /metrics answers 401 (and no figures) without the
    bearer token or with a wrong one, even from loopback, and 200 with the right one from
    anywhere."""
    client = create_app(settings.replace(metrics_token=TOKEN)).test_client()
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}):  # fmt: skip
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert "digest_messages" not in response.get_data(as_text=True)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.get(
        "/metrics",
        headers={"Authorization": f"bearer {TOKEN}"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 200
    assert "digest_messages" in response.get_data(as_text=True)


def test_metrics_without_a_token_answer_only_local_clients(
    db: Database, settings: Settings
) -> None:
    """Without a token /metrics answers 127.0.0.1 and ::1, and refuses (403, no figures) any
    other client, and a loopback client whose request a proxy forwarded (behind a reverse
    proxy on the same host every visitor would look local)."""
    client = create_app(settings).test_client()
    for address in ("127.0.0.1", "::1"):
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 200, address
    refused = [
        ({"REMOTE_ADDR": "203.0.113.9"}, {}),
        ({"REMOTE_ADDR": "10.0.0.2"}, {}),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"Forwarded": "for=203.0.113.9"}),
        ({"REMOTE_ADDR": "::1"}, {"X-Real-IP": "203.0.113.9"}),
    ]
    for environ, headers in refused:
        response = client.get("/metrics", environ_base=environ, headers=headers)
        assert response.status_code == 403, (environ, headers)
        assert "digest_" not in response.get_data(as_text=True)


def test_a_weak_metrics_token_is_refused_at_start() -> None:
    """A metrics token under 32 characters, or one character repeated, stops the settings
    from loading with a message naming DIGEST_METRICS_TOKEN."""
    for weak in ("short", "a" * 40):
        with pytest.raises(ConfigError, match="DIGEST_METRICS_TOKEN"):
            load_settings(environ={"DIGEST_METRICS_TOKEN": weak}, ensure_secret=False)
    loaded = load_settings(environ={"DIGEST_METRICS_TOKEN": TOKEN}, ensure_secret=False)
    assert loaded.metrics_token == TOKEN
