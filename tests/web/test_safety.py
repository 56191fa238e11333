"""Requests that must never change anything: every route of the app fetched with GET and HEAD
(as link scanners do), with valid tokens and a signed-in operator, leaves the database as it
was. And the shared counters behind the abuse limits hold under concurrent requests."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from digest.config import Settings
from digest.edition.build import build_edition
from digest.mail.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE, TokenSigner
from digest.mail.tracking import CLICK, OPEN, LinkSigner
from digest.send.batch import EditionMailer, send_until_done
from digest.service import catalog, throttle
from digest.store.db import Database
from digest.store.models import (
    Article,
    Base,
    ConsentEvent,
    Delivery,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from digest.transports import RecordingTransport
from tests.builders import api_token
from tests.web.conftest import OPERATOR_PASSWORD

DAY = dt.date(2026, 11, 24)
#: Bookkeeping that a read may update without changing what anything means: when an API token
#: was last used (rewritten at most once a minute).
IGNORED_COLUMNS = {("api_tokens", "last_used_at")}


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in IGNORED_COLUMNS]
            rows = conn.execute(select(*columns)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


@pytest.fixture
def world(db: Database, settings: Settings) -> dict[str, Any]:
    """A list with a sent edition, one confirmed reader, one pending sign-up (with its consent
    event), and an API token: enough for every route to find what it names."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/1", section_id=national.id,
                            headline="Story", teaser="Teaser.",
                            published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        catalog.subscribe(session, daily, "ann@example.com", "Ann")
        catalog.subscribe(session, daily, "pen@example.com", "Pen")
        session.flush()
        pending = session.scalars(
            select(Subscription).join(Subscriber).where(Subscriber.email == "pen@example.com")
        ).one()
        pending.status = SubscriptionStatus.PENDING
        signup = ConsentEvent(subscriber_id=pending.subscriber_id, list_id=daily.id,
                              action="signup", source="web form", wording="Yes")  # fmt: skip
        session.add(signup)
        session.flush()
        ann = session.scalars(select(Subscriber).where(Subscriber.email == "ann@example.com"))
        ann_id = ann.one().id
        ids = {"list": daily.id, "ann": ann_id, "pen": pending.subscriber_id, "signup": signup.id}
    with db.session() as session:
        edition, _ = build_edition(session, settings, catalog.get_list(session, "daily"), DAY)
        edition_id = edition.id
    transport = RecordingTransport()
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    signer = TokenSigner(settings.secret)
    links = LinkSigner(settings.secret)
    with db.session() as session:
        delivery_id = session.scalars(
            select(Delivery.id).where(Delivery.edition_id == edition_id).limit(1)
        ).one()
        article_id = session.scalars(select(Article.id)).one()
    return {
        "slug": "daily",
        "day": DAY.isoformat(),
        "edition_id": edition_id,
        "subscriber_id": ids["ann"],
        "api_token": api_token(db, "safety test"),
        "tokens": {
            # Without the sign-up id, as links mailed before sign-ups were numbered: those
            # must be as safe to prefetch.
            "public.confirm": signer.sign(CONFIRM, ids["pen"], ids["list"]),
            "public.unsubscribe": signer.sign(UNSUBSCRIBE, ids["ann"], ids["list"]),
            "public.preferences": signer.sign(PREFERENCES, ids["ann"]),
            # Tracking is off in these settings: the links still lead on, and count nothing.
            "clicks.click": links.sign(CLICK, edition_id, article_id, delivery_id),
            "clicks.opened": links.sign(OPEN, edition_id, 0, delivery_id),
        },
    }


def _url(rule: Rule, world: dict[str, Any]) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        if name == "token":
            values[name] = world["tokens"][rule.endpoint]
        elif name in world:
            values[name] = world[name]
        else:
            raise AssertionError(f"{rule.rule}: the test has no value for <{name}>: add one")
    return str(rule.build(values, append_unknown=False)[1])


def test_get_and_head_on_every_route_change_nothing(
    app: Flask, db: Database, world: dict[str, Any]
) -> None:
    """Every GET route of the app (public pages with valid confirm, unsubscribe and preferences
    tokens, the dashboard signed in, the API with a valid token), fetched with HEAD and with
    GET, answers without a server error and leaves every table as it was."""
    client = app.test_client()
    login_page = client.get("/dashboard/login").get_data(as_text=True)
    csrf = login_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed_in = client.post("/dashboard/login",
                            data={"password": OPERATOR_PASSWORD, "csrf_token": csrf})  # fmt: skip
    assert signed_in.status_code == 303
    headers = {"Authorization": f"Bearer {world['api_token']}"}
    before = _snapshot(db)
    fetched = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        url = _url(rule, world)
        for method in ("HEAD", "GET"):
            response = client.open(url, method=method, headers=headers)
            assert response.status_code < 500, (method, url, response.status_code)
            fetched.append((method, rule.endpoint, response.status_code))
        assert _snapshot(db) == before, f"{url} changed the database"
    endpoints = {endpoint for _, endpoint, _ in fetched}
    assert {"public.confirm", "public.unsubscribe", "public.preferences"} <= endpoints
    assert ("HEAD", "public.confirm", 200) in fetched
    assert ("HEAD", "public.unsubscribe", 200) in fetched


def test_head_on_confirm_and_unsubscribe_links_changes_nothing(
    app: Flask, db: Database, world: dict[str, Any]
) -> None:
    """`curl -I` on a confirm link and on an unsubscribe link (what corporate scanners do)
    leaves the pending sign-up pending and the reader subscribed."""
    client = app.test_client()
    for endpoint in ("public.confirm", "public.unsubscribe"):
        path = endpoint.split(".")[1]
        assert client.head(f"/{path}/{world['tokens'][endpoint]}").status_code == 200
    with db.session() as session:
        statuses = dict(
            session.execute(
                select(Subscriber.email, Subscription.status).join(Subscription.subscriber)
            ).all()
        )
    assert statuses == {
        "ann@example.com": SubscriptionStatus.CONFIRMED,
        "pen@example.com": SubscriptionStatus.PENDING,
    }


def test_one_click_post_still_unsubscribes_at_once(
    app: Flask, db: Database, world: dict[str, Any]
) -> None:
    """The RFC 8058 POST (body List-Unsubscribe=One-Click) unsubscribes with 200, no redirect
    and no cookie, and is recorded in the consent history as a one-click unsubscribe."""
    client = app.test_client()
    response = client.post(f"/unsubscribe/{world['tokens']['public.unsubscribe']}",
                           data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    with db.session() as session:
        subscription = session.scalars(
            select(Subscription).where(Subscription.subscriber_id == world["subscriber_id"])
        ).one()
        assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
        event = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
        assert event is not None and (event.action, event.source) == ("unsubscribe", "one-click")


def test_concurrent_takes_never_exceed_the_limit(db: Database) -> None:
    """Twelve requests racing for a limit of 3 (each in its own session and thread, as separate
    web processes would) get exactly 3 slots, on SQLite and PostgreSQL; a slot given back is
    free again, and the window can be started afresh."""
    window = dt.timedelta(hours=1)
    start = threading.Barrier(12)

    def attempt() -> bool:
        start.wait()
        with db.session() as session:
            return throttle.take(session, "race", "198.51.100.1", 3, window).allowed

    with ThreadPoolExecutor(12) as pool:
        verdicts = list(pool.map(lambda _: attempt(), range(12)))
    assert verdicts.count(True) == 3
    with db.session() as session:
        refused = throttle.take(session, "race", "198.51.100.1", 3, window)
        assert not refused.allowed and 0 < refused.retry_after <= 3600
        throttle.give_back(session, "race", "198.51.100.1")
        assert throttle.take(session, "race", "198.51.100.1", 3, window).allowed
        assert throttle.blocked(session, "race", "198.51.100.1", 3, window) > 0
        throttle.forget(session, "race", "198.51.100.1")
        assert throttle.blocked(session, "race", "198.51.100.1", 3, window) == 0
