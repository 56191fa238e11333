"""The operator API through the HTTP client: bearer tokens (missing, wrong, revoked), CRUD on
lists, sections, sources and subscribers, CSV import, and editions from preview to send,
test copy, pause, resume, cancel and retry-failed; plus the `digest tokens` commands."""

from __future__ import annotations

import datetime as dt
import io
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from digest.cli import App
from digest.cli.tokens import tokens
from digest.config import Settings
from digest.edition.build import build_edition
from digest.service import catalog
from digest.service.access import Access
from digest.store.db import Database
from digest.store.models import (
    ApiToken,
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    Source,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from digest.web import context, create_app
from digest.web.api.openapi import OPENAPI
from tests.builders import api_token, ledger_counts
from tests.conftest import SmtpSink
from tests.web.conftest import wait_for_sends

DAY = dt.date(2026, 11, 24)
READERS = ["ann@example.com", "bob@example.com", "cy@example.com"]


@pytest.fixture
def site(db: Database) -> None:
    """Two sections, a daily list carrying both with three readers, an empty weekly list,
    and one story per section on DAY."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        sports, _ = catalog.add_section(session, "sports", "Sports")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national", "sports"])
        catalog.add_list(session, "weekly", "Weekly", ["sports"])
        for i, section in enumerate([national, sports]):
            session.add(
                Article(
                    url=f"https://n.example/{i}",
                    section_id=section.id,
                    headline=f"{section.name} headline {i}",
                    teaser="Teaser.",
                    published_at=dt.datetime(2026, 11, 24, 9 + i),
                )
            )
        for address in READERS:
            catalog.subscribe(session, daily, address)


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    token = api_token(db)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_app(db: Database) -> Iterator[Callable[[Settings], Flask]]:
    """Apps on other settings (SMTP) over the same database, cleaned up like ``app``."""
    made: list[Flask] = []

    def make(settings: Settings) -> Flask:
        made.append(create_app(settings))
        return made[-1]

    yield make
    for flask_app in made:
        wait_for_sends(flask_app)
        with flask_app.app_context():
            context().close()


def _edition(db: Database, settings: Settings, slug: str = "daily") -> int:
    """The list's edition of DAY, built (ledger written) but not sent."""
    with db.session() as session:
        edition, _ = build_edition(session, settings, catalog.get_list(session, slug), DAY)
        return edition.id


def _outbox(settings: Settings) -> list[Path]:
    return sorted(Path(settings.outbox_dir).rglob("*.eml"))


def _api_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, OpenAPI-style path) of every API route the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def _concrete(path: str) -> str:
    return path.replace("{edition_id}", "1").replace("{subscriber_id}", "1")


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer dgt_guessed"],
)
def test_every_route_refuses_calls_without_a_valid_token(
    app: Flask, client: FlaskClient, site: None, header: str | None
) -> None:
    """Each API route but the OpenAPI description answers 401 with a JSON error and a Bearer
    challenge, and no data, when the token is missing, malformed or unknown."""
    headers = {"Authorization": header} if header else {}
    routes = [r for r in _api_routes(app) if r[1] != "/api/openapi.json"]
    assert len(routes) == 26  # every operator route exists; adding one updates this count
    for method, path in routes:
        response = client.open(_concrete(path), method=method, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        assert set(response.get_json()) == {"error"}, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)


def test_revoked_token_is_refused_and_a_live_one_records_its_use(
    client: FlaskClient, db: Database, site: None
) -> None:
    """A token works until revoked, then gets 401 "token revoked"; a call stamps last_used_at."""
    access = Access(Settings(), lambda: db)
    row, token = access.create_token("ci")
    token_id = row.id
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/lists", headers=headers).status_code == 200
    with db.session() as session:
        assert session.get_one(ApiToken, token_id).last_used_at is not None
    access.revoke_token(token_id)
    refused = client.get("/api/lists", headers=headers)
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "token revoked"}
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_tokens_are_stored_only_as_their_sha256(db: Database) -> None:
    """The database holds the token's SHA-256, never the token."""
    import hashlib

    row, token = Access(Settings(), lambda: db).create_token("ci")
    with db.session() as session:
        stored = session.get_one(ApiToken, row.id).token_hash
    assert token.startswith("dgt_") and token not in stored
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_openapi_description_is_public_and_lists_every_route(
    app: Flask, client: FlaskClient
) -> None:
    """GET /api/openapi.json needs no token and documents every API route and method."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.") and spec == OPENAPI
    for method, path in _api_routes(app):
        assert method.lower() in spec["paths"].get(path, {}), (method, path)
    served = {(m, p) for m, p in _api_routes(app)}
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == served


def test_unknown_api_path_answers_json_404(client: FlaskClient, auth: dict[str, str]) -> None:
    """A path under /api/ that does not exist gets a JSON 404, not an HTML page."""
    response = client.get("/api/nothing-here", headers=auth)
    assert response.status_code == 404 and "error" in response.get_json()


# -- sections, sources, lists ----------------------------------------------------------------


def test_sections_create_rename_and_list(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """POST /api/sections creates (201) or renames (200); GET lists them by slug."""
    created = client.post("/api/sections", headers=auth, json={"slug": "world", "name": "World"})
    assert created.status_code == 201 and created.get_json()["slug"] == "world"
    renamed = client.post("/api/sections", headers=auth, json={"slug": "world", "name": "Globe"})
    assert renamed.status_code == 200
    listed = client.get("/api/sections", headers=auth).get_json()
    assert [(s["slug"], s["name"]) for s in listed] == [
        ("national", "National"),
        ("sports", "Sports"),
        ("world", "Globe"),
    ]


def test_section_input_errors_are_one_line_400s(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """A bad slug, a missing name or a body that is not JSON is a 400 with one line of error."""
    for body in ({"slug": "Bad Slug", "name": "x"}, {"slug": "ok"}, [1, 2]):
        response = client.post("/api/sections", headers=auth, json=body)
        assert response.status_code == 400, body
        assert "\n" not in response.get_json()["error"]
    not_json = client.post("/api/sections", headers=auth, data="slug=x")
    assert not_json.status_code == 400


def test_sources_add_web_feeds_only_and_show_health(
    client: FlaskClient, auth: dict[str, str], db: Database, site: None
) -> None:
    """POST /api/sources adds an http(s) feed, refuses a server-side file path, 404s an
    unknown section; GET shows each source's fetch health."""
    added = client.post(
        "/api/sources", headers=auth, json={"url": "https://n.example/feed", "section": "national"}
    )
    assert added.status_code == 201
    local = client.post(
        "/api/sources", headers=auth, json={"url": "/etc/hostname", "section": "national"}
    )
    assert local.status_code == 400 and "http" in local.get_json()["error"]
    unknown = client.post(
        "/api/sources", headers=auth, json={"url": "https://x.example/f", "section": "nope"}
    )
    assert unknown.status_code == 404 and unknown.get_json() == {"error": "unknown section: nope"}
    with db.session() as session:
        session.execute(update(Source).values(consecutive_errors=2, last_error="HTTP 500"))
    (source,) = client.get("/api/sources", headers=auth).get_json()
    assert source["url"] == "https://n.example/feed" and source["section"] == "national"
    assert source["consecutive_errors"] == 2 and source["last_error"] == "HTTP 500"


def test_lists_create_update_and_count_subscribers(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """POST /api/lists creates or changes a list; GET shows sections and subscriber counts."""
    created = client.post(
        "/api/lists",
        headers=auth,
        json={
            "slug": "evening",
            "name": "Evening",
            "sections": ["sports", "national"],
            "timezone": "Asia/Karachi",
            "send_at": "18:30",
            "per_section": 3,
        },
    )
    assert created.status_code == 201
    assert created.get_json()["sections"] == ["sports", "national"]
    changed = client.post(
        "/api/lists",
        headers=auth,
        json={"slug": "evening", "name": "Evening", "sections": "national"},
    )
    assert changed.status_code == 200 and changed.get_json()["sections"] == ["national"]
    reviewed = client.post(
        "/api/lists",
        headers=auth,
        json={"slug": "evening", "name": "Evening", "sections": "national", "review": True,
              "review_hours": 3, "unreviewed": "hold", "when_empty": "all",
              "utm": "utm_source=digest"},
    )  # fmt: skip
    shown = reviewed.get_json()
    assert (shown["review"], shown["review_hours"], shown["unreviewed"]) == (True, 3, "hold")
    assert (shown["when_empty"], shown["utm"]) == ("all", "utm_source=digest")
    for bad in ({"review": "yes"}, {"review_hours": 99}, {"unreviewed": "maybe"}):
        refused = client.post(
            "/api/lists",
            headers=auth,
            json={"slug": "evening", "name": "Evening", "sections": "national", **bad},
        )
        assert refused.status_code == 400, bad
    bad_zone = client.post(
        "/api/lists",
        headers=auth,
        json={"slug": "x", "name": "X", "sections": ["national"], "timezone": "Mars/Olympus"},
    )
    assert bad_zone.status_code == 400
    lists = {item["slug"]: item for item in client.get("/api/lists", headers=auth).get_json()}
    assert set(lists) == {"daily", "evening", "weekly"}
    assert lists["daily"]["subscribers"]["confirmed"] == 3
    assert lists["evening"]["timezone"] == "Asia/Karachi"


# -- subscribers -------------------------------------------------------------------------------


def test_subscribers_add_list_and_unsubscribe_keeping_the_record(
    client: FlaskClient, auth: dict[str, str], db: Database, site: None
) -> None:
    """POST subscribes (201, then 200 for the same address), GET ?list= shows the list's
    subscribers, DELETE unsubscribes from every list and keeps the subscriber row."""
    added = client.post(
        "/api/subscribers",
        headers=auth,
        json={"email": "Dee@Example.com", "name": "Dee", "list": "weekly"},
    )
    assert added.status_code == 201
    subscriber = added.get_json()
    assert (
        subscriber["email"] == "dee@example.com"
        and subscriber["lists"]["weekly"]["status"] == "confirmed"
    )
    again = client.post(
        "/api/subscribers", headers=auth, json={"email": "dee@example.com", "list": "weekly"}
    )
    assert again.status_code == 200 and again.get_json()["added"] is False
    client.post(
        "/api/subscribers", headers=auth, json={"email": "dee@example.com", "list": "daily"}
    )
    weekly = client.get("/api/subscribers?list=weekly", headers=auth).get_json()
    assert [s["email"] for s in weekly] == ["dee@example.com"]
    assert len(client.get("/api/subscribers?limit=2", headers=auth).get_json()) == 2

    gone = client.delete(f"/api/subscribers/{subscriber['id']}", headers=auth)
    assert gone.status_code == 200
    assert {v["status"] for v in gone.get_json()["lists"].values()} == {"unsubscribed"}
    with db.session() as session:
        row = session.get_one(Subscriber, subscriber["id"])
        assert row.status == SubscriberStatus.UNSUBSCRIBED
        states = session.scalars(
            select(Subscription.status).where(Subscription.subscriber_id == row.id)
        ).all()
        assert states and set(states) == {SubscriptionStatus.UNSUBSCRIBED}
    assert client.delete("/api/subscribers/99999", headers=auth).status_code == 404


def test_subscriber_input_errors(client: FlaskClient, auth: dict[str, str], site: None) -> None:
    """A bad address or missing list is 400, an unknown list 404, a bad page size 400."""
    bad = client.post("/api/subscribers", headers=auth, json={"email": "nope", "list": "daily"})
    assert bad.status_code == 400 and "invalid email" in bad.get_json()["error"]
    missing = client.post("/api/subscribers", headers=auth, json={"email": "a@example.com"})
    assert missing.status_code == 400 and missing.get_json() == {"error": "'list' is required"}
    unknown = client.get("/api/subscribers?list=nope", headers=auth)
    assert unknown.status_code == 404
    assert client.get("/api/subscribers?limit=0", headers=auth).status_code == 400


def test_csv_import_reports_bad_rows_by_line_and_imports_the_rest(
    client: FlaskClient, auth: dict[str, str], db: Database, site: None
) -> None:
    """A CSV body imports its good rows; a bad address and an extra field are reported with
    their line numbers; an address already on the list is counted as already there."""
    body = (
        "email,name\nnew1@example.com,New One\nnot-an-address,X\nann@example.com,Ann\n"
        "new2@example.com,Two,extra\nnew3@example.com,\n"
    )
    response = client.post(
        "/api/subscribers/import?list=daily", headers=auth, data=body, content_type="text/csv"
    )
    assert response.status_code == 422
    report = response.get_json()
    assert report["added"] == 2 and report["already"] == 1
    assert [e["line"] for e in report["errors"]] == [3, 5]
    assert "invalid email" in report["errors"][0]["reason"]
    with db.session() as session:
        emails = {
            s.email
            for s, _ in catalog.list_subscribers(session, catalog.get_list(session, "daily"))
        }
    assert {"new1@example.com", "new3@example.com"} <= emails
    assert "new2@example.com" not in emails


def test_csv_import_as_a_multipart_file_and_whole_file_errors(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """A form upload in the field 'file' imports the same way; a CSV without an email column
    is a 400 naming the upload (not a temporary path); no list is a 400."""
    upload = {"file": (io.BytesIO(b"email\nw1@example.com\n"), "weekly.csv")}
    response = client.post(
        "/api/subscribers/import?list=weekly",
        headers=auth,
        data=upload,
        content_type="multipart/form-data",
    )
    assert response.get_json() == {"added": 1, "already": 0, "errors": []}
    wrong = client.post(
        "/api/subscribers/import?list=weekly",
        headers=auth,
        data="address\nx@example.com\n",
        content_type="text/csv",
    )
    assert wrong.status_code == 400
    assert wrong.get_json()["error"].startswith("api-upload.csv: the first line must name")
    no_list = client.post("/api/subscribers/import", headers=auth, data="email\na@b.example\n")
    assert no_list.status_code == 400


# -- editions ----------------------------------------------------------------------------------


def test_send_builds_the_edition_and_sends_each_reader_once(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    web_settings: Settings,
    site: None,
) -> None:
    """POST /api/editions/send answers 202 with the edition id, sends in the background to
    every reader; sending again builds nothing and mails nobody twice."""
    response = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": DAY.isoformat()}
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["created"] is True and body["sending"] == "background"
    wait_for_sends(app)
    assert ledger_counts(db, body["id"]) == {"sent": 3}
    assert len(_outbox(web_settings)) == 3

    again = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": DAY.isoformat()}
    )
    wait_for_sends(app)
    assert again.status_code == 200
    assert again.get_json()["id"] == body["id"] and again.get_json()["status"] == "done"
    assert len(_outbox(web_settings)) == 3

    shown = client.get(f"/api/editions/{body['id']}", headers=auth).get_json()
    assert shown["status"] == "done" and shown["counts"]["sent"] == 3
    assert shown["total"] == shown["done"] == 3
    listed = client.get("/api/editions", headers=auth).get_json()
    assert [e["id"] for e in listed] == [body["id"]]


def test_send_of_a_day_without_articles_records_an_empty_edition(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """A day with no stories is answered 200 with status "empty": nothing is sending."""
    response = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": "2026-01-01"}
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "empty" and response.get_json()["sending"] == "nothing"


def test_send_input_errors(client: FlaskClient, auth: dict[str, str], site: None) -> None:
    """An unknown list is 404; a bad date or no list is 400; an unknown edition is 404."""
    assert client.post("/api/editions/send", headers=auth, json={"list": "nope"}).status_code == 404
    bad_date = client.post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": "24/11"}
    )
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.get_json()["error"]
    assert client.post("/api/editions/send", headers=auth, json={}).status_code == 400
    assert client.get("/api/editions/999", headers=auth).status_code == 404
    assert client.post("/api/editions/999/pause", headers=auth).status_code == 404


def test_send_with_an_unreachable_smtp_server_builds_nothing(
    make_app: Callable[[Settings], Flask],
    db: Database,
    web_settings: Settings,
    auth: dict[str, str],
    site: None,
) -> None:
    """With DIGEST_SMTP_URL pointing nowhere the send is refused with 503 before any edition
    is built, rather than failing later in a thread nobody watches."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request: nobody listens
    client = make_app(web_settings.replace(smtp_url=f"smtp://127.0.0.1:{port}")).test_client()
    response = client.post("/api/editions/send", headers=auth, json={"list": "daily"})
    assert response.status_code == 503 and "error" in response.get_json()
    with db.session() as session:
        assert session.scalars(select(Edition)).first() is None


def test_send_through_a_real_smtp_server(
    make_app: Callable[[Settings], Flask],
    web_settings: Settings,
    auth: dict[str, str],
    site: None,
    smtp_server: SmtpSink,
) -> None:
    """Over SMTP (aiosmtpd) every reader gets exactly one message."""
    app = make_app(web_settings.replace(smtp_url=smtp_server.url))
    response = app.test_client().post(
        "/api/editions/send", headers=auth, json={"list": "daily", "date": DAY.isoformat()}
    )
    assert response.status_code == 202
    wait_for_sends(app)
    assert sorted(r for m in smtp_server.received for r in m.recipients) == READERS


def test_preview_is_the_digest_html_with_sample_links(
    client: FlaskClient, auth: dict[str, str], site: None
) -> None:
    """GET /api/editions/preview returns the HTML with the day's headlines and the sample
    unsubscribe link, sandboxed by its CSP; a day without stories is a 400."""
    response = client.get(f"/api/editions/preview?list=daily&date={DAY}", headers=auth)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "National headline 0" in html and "Sports headline 1" in html
    assert "https://news.example/unsubscribe/preview" in html
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    empty = client.get("/api/editions/preview?list=daily&date=2026-01-01", headers=auth)
    assert empty.status_code == 400 and "nothing to preview" in empty.get_json()["error"]
    assert client.get("/api/editions/preview", headers=auth).status_code == 400


def test_test_copy_goes_to_one_address_and_leaves_the_ledger_alone(
    client: FlaskClient, auth: dict[str, str], db: Database, web_settings: Settings, site: None
) -> None:
    """POST /api/editions/<id>/test sends one copy to the given address only; no ledger row
    changes; a bad address is a 400."""
    edition_id = _edition(db, web_settings)
    response = client.post(
        f"/api/editions/{edition_id}/test", headers=auth, json={"to": "Editor@Example.com"}
    )
    assert response.status_code == 200 and response.get_json()["sent_to"] == "editor@example.com"
    (copy,) = _outbox(web_settings)
    assert b"To: editor@example.com" in copy.read_bytes()
    assert ledger_counts(db, edition_id) == {"pending": 3}
    bad = client.post(f"/api/editions/{edition_id}/test", headers=auth, json={"to": "x"})
    assert bad.status_code == 400


def test_pause_resume_and_cancel_follow_the_edition_state(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    web_settings: Settings,
    site: None,
) -> None:
    """Pause holds a built edition; pausing twice is a 400; resume (202) sends the rest;
    cancel skips every unsent reader and cannot be undone by resume."""
    edition_id = _edition(db, web_settings)
    paused = client.post(f"/api/editions/{edition_id}/pause", headers=auth)
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    twice = client.post(f"/api/editions/{edition_id}/pause", headers=auth)
    assert twice.status_code == 400 and "not sending" in twice.get_json()["error"]
    resumed = client.post(f"/api/editions/{edition_id}/resume", headers=auth)
    assert resumed.status_code == 202
    wait_for_sends(app)
    assert ledger_counts(db, edition_id) == {"sent": 3}

    weekly_reader = client.post(
        "/api/subscribers", headers=auth, json={"email": "w@example.com", "list": "weekly"}
    )
    assert weekly_reader.status_code == 201
    other = _edition(db, web_settings, "weekly")
    cancelled = client.post(f"/api/editions/{other}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert (
        cancelled.get_json()["status"] == "cancelled" and cancelled.get_json()["skipped_now"] == 1
    )
    assert client.post(f"/api/editions/{other}/resume", headers=auth).status_code == 400
    assert ledger_counts(db, other) == {"skipped": 1}


def test_retry_failed_sends_to_the_failed_rows_only(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    web_settings: Settings,
    site: None,
) -> None:
    """retry-failed requeues only failed rows (202) and sends them; with none failed it is 200."""
    edition_id = _edition(db, web_settings)
    client.post("/api/editions/send", headers=auth, json={"list": "daily", "date": DAY.isoformat()})
    wait_for_sends(app)
    with db.session() as session:
        ann = session.scalars(select(Subscriber.id).where(Subscriber.email == READERS[0])).one()
        session.execute(
            update(Delivery)
            .where(Delivery.edition_id == edition_id, Delivery.subscriber_id == ann)
            .values(status=DeliveryStatus.FAILED, sent_at=None)
        )
    before = len(_outbox(web_settings))
    response = client.post(f"/api/editions/{edition_id}/retry-failed", headers=auth)
    assert response.status_code == 202 and response.get_json()["requeued"] == 1
    wait_for_sends(app)
    assert ledger_counts(db, edition_id) == {"sent": 3}
    assert len(_outbox(web_settings)) == before + 1
    nothing = client.post(f"/api/editions/{edition_id}/retry-failed", headers=auth)
    assert nothing.status_code == 200 and nothing.get_json()["requeued"] == 0


# -- the `digest tokens` commands --------------------------------------------------------------


def test_token_commands_create_list_and_revoke(
    client: FlaskClient, web_settings: Settings, site: None
) -> None:
    """`tokens create` prints a token the API accepts; `tokens list` shows it; after
    `tokens revoke` the API refuses it."""
    operator = App(None)
    operator.settings = web_settings
    runner = CliRunner()
    created = runner.invoke(tokens, ["create", "deploy bot"], obj=operator)
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/lists", headers=headers).status_code == 200
    listed = runner.invoke(tokens, ["list"], obj=operator)
    assert "deploy bot" in listed.output and "active" in listed.output
    assert token not in listed.output
    token_id = listed.output.split()[0]
    assert runner.invoke(tokens, ["revoke", token_id], obj=operator).exit_code == 0
    assert client.get("/api/lists", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(tokens, ["list"], obj=operator).output
