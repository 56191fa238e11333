"""The edition lifecycle through the operator API: days to come, late subscribers, rebuild
and drop, and the state an operator reads."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient

from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, utcnow
from tests.builders import api_token
from tests.web.conftest import wait_for_sends

NOW = utcnow()
TODAY = (NOW - dt.timedelta(minutes=30)).date().isoformat()
TOMORROW = (NOW + dt.timedelta(days=1)).date().isoformat()


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    """A daily list (UTC) with one reader and a story of today, and a bearer token."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(
            Article(url="https://n.example/1", section_id=section.id, headline="Story",
                    teaser="", published_at=NOW - dt.timedelta(minutes=30))
        )  # fmt: skip
        catalog.subscribe(session, daily, "ann@example.com")
    token = api_token(db)
    return {"Authorization": f"Bearer {token}"}


def test_api_refuses_tomorrow_and_includes_late_subscribers(
    app: Flask, client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    """POST /api/editions/send for tomorrow is a 400 that stores nothing; after a send, a new
    reader shows as "late" and include-late sends to that reader alone."""
    ahead = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": TOMORROW}
    )
    assert ahead.status_code == 400 and "has not started yet" in ahead.get_json()["error"]
    assert client.get("/api/editions", headers=auth).get_json() == []

    sent = client.post("/api/editions/send", headers=auth, json={"list": "daily", "date": TODAY})
    wait_for_sends(app)
    edition_id = sent.get_json()["id"]
    with db.session() as session:
        catalog.subscribe(session, catalog.get_list(session, "daily"), "bob@example.com")
    again = client.post("/api/editions/send", headers=auth, json={"list": "daily", "date": TODAY})
    assert again.get_json()["late"] == 1 and again.get_json()["state"] == "done"
    late = client.post(f"/api/editions/{edition_id}/include-late", headers=auth)
    assert late.status_code == 202 and late.get_json()["included"] == 1
    wait_for_sends(app)
    shown = client.get(f"/api/editions/{edition_id}", headers=auth).get_json()
    assert shown["counts"]["sent"] == 2 and shown["state"] == "done"

    refused = client.delete(f"/api/editions/{edition_id}", headers=auth)
    assert refused.status_code == 400 and "cannot be dropped" in refused.get_json()["error"]
    assert client.post(f"/api/editions/{edition_id}/rebuild", headers=auth).status_code == 400


def test_api_drops_an_edition_nobody_has(
    client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    """DELETE /api/editions/ID removes an edition built for a day with no stories yet, and
    the day can be sent afresh."""
    empty = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": "2026-01-01"}
    ).get_json()
    assert empty["state"] == "empty"
    dropped = client.delete(f"/api/editions/{empty['id']}", headers=auth)
    assert dropped.status_code == 200
    assert dropped.get_json() == {"dropped": empty["id"], "list": "daily", "date": "2026-01-01",
                                  "rows": 0}  # fmt: skip
    assert client.get(f"/api/editions/{empty['id']}", headers=auth).status_code == 404
