"""The edition lifecycle through the operator API: days to come, late subscribers, rebuild
and drop, and the state an operator reads."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from digest.service import catalog
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    utcnow,
)
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


def test_api_retry_now_sends_the_deferred_at_once(
    app: Flask, client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    """An edition whose one reader a server deferred for an hour shows next_retry_at; POST
    /api/editions/ID/retry-now answers 202 with retried 1 and the reader gets it now, a
    second attempt; a second call has nobody to retry (200)."""
    sent = client.post("/api/editions/send", headers=auth, json={"list": "daily", "date": TODAY})
    wait_for_sends(app)
    edition_id = sent.get_json()["id"]
    with db.session() as session:
        session.execute(
            update(Delivery).values(
                status=DeliveryStatus.DEFERRED,
                attempts=1,
                sent_at=None,
                next_attempt_at=utcnow() + dt.timedelta(hours=1),
            )
        )
        session.execute(update(Edition).values(status=EditionStatus.READY, completed_at=None))
    shown = client.get(f"/api/editions/{edition_id}", headers=auth).get_json()
    assert shown["counts"]["deferred"] == 1 and shown["next_retry_at"]
    assert shown["waiting"] is None and shown["unanswered"] == 0
    retried = client.post(f"/api/editions/{edition_id}/retry-now", headers=auth)
    assert retried.status_code == 202, retried.get_json()
    assert retried.get_json()["retried"] == 1 and retried.get_json()["sending"] == "background"
    wait_for_sends(app)
    done = client.get(f"/api/editions/{edition_id}", headers=auth).get_json()
    assert done["counts"]["sent"] == 1 and done["state"] == "done"
    with db.session() as session:
        assert session.scalars(select(Delivery.attempts)).one() == 2
    again = client.post(f"/api/editions/{edition_id}/retry-now", headers=auth)
    assert again.status_code == 200 and again.get_json()["retried"] == 0
