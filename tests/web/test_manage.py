"""The dashboard's users and roles, and the operator's management pages, through the HTTP
client: who may open what (403 for a lower role), each page's empty state and content, and
each change (sections, sources, lists, subscribers, import/export, forget, suppressions)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, Subscriber, Suppression, User
from digest.web import context
from tests.web.conftest import OPERATOR_PASSWORD
from tests.web.manage_helpers import add_users, csrf, sign_in

MANAGE_PAGES = [
    "/dashboard/sections",
    "/dashboard/sources",
    "/dashboard/lists",
    "/dashboard/subscribers",
    "/dashboard/suppressions",
]


@pytest.fixture
def users(app: Flask) -> None:
    add_users(app)


@pytest.fixture
def site(db: Database) -> None:
    """A section, a list with one reader."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        catalog.subscribe(session, daily, "ann@example.com", "Ann")


def test_passwords_are_stored_as_scrypt_hashes(app: Flask, users: None, db: Database) -> None:
    """A user's row holds a salted scrypt hash, not the password."""
    with db.session() as session:
        stored = session.scalars(select(User.password_hash).where(User.name == "olga")).one()
    assert stored.startswith("scrypt$") and "operator-pass-1" not in stored


@pytest.mark.parametrize("page", MANAGE_PAGES)
def test_management_pages_need_the_operator_role(
    client: FlaskClient, users: None, site: None, page: str
) -> None:
    """Signed out: the login; viewer and editor: 403 with a page that says which role is
    needed; operator: the page."""
    assert client.get(page).status_code == 303
    for name, status in (("vera", 403), ("eddie", 403), ("olga", 200)):
        sign_in(client, name)
        response = client.get(page)
        assert response.status_code == status, name
        if status == 403:
            assert "needs the <strong>operator</strong> role" in response.get_data(True)
        client.post(
            "/dashboard/logout", data={"csrf_token": csrf(client.get("/dashboard/").get_data(True))}
        )


def test_viewer_reads_but_cannot_send(client: FlaskClient, users: None, site: None) -> None:
    """A viewer sees the overview without send buttons or management links; sending, its
    confirmation and edition actions answer 403 and send nothing."""
    token = sign_in(client, "vera")
    page = client.get("/dashboard/").get_data(True)
    assert "Today's editions" in page and "Send Daily now" not in page
    assert "/dashboard/sources" not in page
    assert client.get("/dashboard/lists/daily/send").status_code == 403
    assert client.post("/dashboard/lists/daily/send", data={"csrf_token": token}).status_code == 403
    assert client.post("/dashboard/editions/1/pause", data={"csrf_token": token}).status_code == 403


def test_editor_sees_send_confirmation_with_the_recipient_count(
    client: FlaskClient, users: None, site: None
) -> None:
    """An editor's send button leads to a page asking "Send “Daily” to 1 subscriber?"; the
    nav offers no management pages."""
    sign_in(client, "eddie")
    page = client.get("/dashboard/").get_data(True)
    assert "Send Daily now" in page and "/dashboard/sections" not in page
    confirm = client.get("/dashboard/lists/daily/send")
    assert confirm.status_code == 200
    assert "Send “Daily” to 1 subscriber?" in confirm.get_data(True)
    assert client.get("/dashboard/lists/nope/send").status_code == 404


def test_builtin_operator_password_still_signs_in(client: FlaskClient, site: None) -> None:
    """The DIGEST_OPERATOR_PASSWORD login (no user name, or "operator") is an operator."""
    page = client.get("/dashboard/login").get_data(True)
    response = client.post(
        "/dashboard/login", data={"password": OPERATOR_PASSWORD, "csrf_token": csrf(page)}
    )
    assert response.status_code == 303
    assert client.get("/dashboard/sections").status_code == 200


def test_disabled_user_and_role_change_take_effect_at_once(
    app: Flask, client: FlaskClient, users: None, site: None
) -> None:
    """Demoting a signed-in operator closes the management pages on their next request;
    disabling them ends their session; they cannot sign in again."""
    from digest.web import context

    sign_in(client, "olga")
    assert client.get("/dashboard/sections").status_code == 200
    with app.app_context():
        context().core.users.set_role("olga", "editor")
    assert client.get("/dashboard/sections").status_code == 403
    with app.app_context():
        context().core.users.disable("olga")
    assert client.get("/dashboard/").status_code == 303
    page = client.get("/dashboard/login").get_data(True)
    refused = client.post(
        "/dashboard/login",
        data={"user": "olga", "password": "operator-pass-1", "csrf_token": csrf(page)},
    )
    assert refused.status_code == 401


def test_empty_states_say_what_to_do(client: FlaskClient, users: None) -> None:
    """With nothing set up, each page says what to add next."""
    sign_in(client, "olga")
    assert "No sections yet — add the first one below" in client.get(
        "/dashboard/sections"
    ).get_data(True)
    assert "No sources yet — add a feed URL below" in client.get("/dashboard/sources").get_data(
        True
    )
    assert "No lists yet — add one below" in client.get("/dashboard/lists").get_data(True)
    assert "add a list</a> first" in client.get("/dashboard/subscribers").get_data(True)
    assert "No suppressed addresses" in client.get("/dashboard/suppressions").get_data(True)


def test_sections_add_rename_and_remove(client: FlaskClient, users: None, site: None) -> None:
    """A section is added, renamed, refused removal while a list uses it, and removed when
    nothing does."""
    token = sign_in(client, "olga")
    client.post(
        "/dashboard/sections", data={"csrf_token": token, "slug": "sports", "name": "Sport"}
    )
    client.post(
        "/dashboard/sections", data={"csrf_token": token, "slug": "sports", "name": "Sports"}
    )
    page = client.get("/dashboard/sections").get_data(True)
    assert "Sports" in page and "Sport<" not in page
    used = client.post(
        "/dashboard/sections/national/remove", data={"csrf_token": token}, follow_redirects=True
    )
    assert "section national is used by 1 lists" in used.get_data(True)
    gone = client.post(
        "/dashboard/sections/sports/remove", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Section Sports removed." in gone.get_data(True)
    bad = client.post(
        "/dashboard/sections",
        data={"csrf_token": token, "slug": "Bad Slug!", "name": "x"},
        follow_redirects=True,
    )
    assert bad.status_code == 200 and "Not done:" in bad.get_data(True)


def test_source_refuses_a_path_and_lists_edit_in_place(
    client: FlaskClient, users: None, site: None, db: Database
) -> None:
    """The browser adds only http(s) feeds; a list's settings are saved from its page, and a
    bad setting is refused with the catalog's message, changing nothing."""
    token = sign_in(client, "olga")
    refused = client.post(
        "/dashboard/sources",
        data={"csrf_token": token, "url": "/etc/passwd", "section": "national"},
        follow_redirects=True,
    )
    assert "a feed address starts with http:// or https://" in refused.get_data(True)
    saved = client.post(
        "/dashboard/lists/daily",
        data={
            "csrf_token": token,
            "name": "Daily news",
            "sections": "national",
            "send_at": "06:30",
            "timezone": "Asia/Karachi",
            "per_section": "3",
            "enabled": "on",
            "when_empty": "all",
            "utm": "utm_source=digest&utm_campaign={list}",
            "review": "on",
            "review_hours": "3",
            "unreviewed": "hold",
        },
        follow_redirects=True,
    )
    assert "Saved." in saved.get_data(True)
    with db.session() as session:
        daily = catalog.get_list(session, "daily")
        assert (daily.name, daily.send_at, daily.timezone, daily.per_section) == (
            "Daily news",
            "06:30",
            "Asia/Karachi",
            3,
        )
        assert daily.public is False
        # Every setting is in the form: the reader rule, tracking tags and the review.
        assert (daily.when_empty, daily.utm) == ("all", "utm_source=digest&utm_campaign={list}")
        assert (daily.review, daily.review_hours, daily.unreviewed) == (True, 3, "hold")
    page = client.get("/dashboard/lists/daily").get_data(True)
    assert 'id="list-review" name="review" checked' in page
    bad = client.post(
        "/dashboard/lists/daily",
        data={"csrf_token": token, "name": "X", "sections": "national", "send_at": "25:99"},
        follow_redirects=True,
    )
    assert "Not done:" in bad.get_data(True)
    with db.session() as session:
        assert catalog.get_list(session, "daily").name == "Daily news"
    added = client.post(
        "/dashboard/lists",
        data={"csrf_token": token, "slug": "weekly", "name": "Weekly", "sections": "national"},
        follow_redirects=True,
    )
    assert "List Weekly added." in added.get_data(True)


def test_subscribers_search_add_import_export_history_and_forget(
    client: FlaskClient, users: None, site: None, db: Database
) -> None:
    """Search finds by part of the address; add opens the person's history; an import reports
    bad rows by line; the export is CSV with formula cells defused; forgetting needs the
    address typed back."""
    token = sign_in(client, "olga")
    assert "ann@example.com" in client.get("/dashboard/subscribers?q=ANN").get_data(True)
    assert "Nobody matches" in client.get("/dashboard/subscribers?q=zed%25").get_data(True)
    added = client.post(
        "/dashboard/subscribers",
        data={"csrf_token": token, "email": "Bob@Example.com", "name": "=cmd()", "list": "daily"},
        follow_redirects=True,
    )
    body = added.get_data(True)
    assert "bob@example.com subscribed to daily" in body and "Consent" in body
    report = client.post(
        "/dashboard/subscribers/import",
        data={
            "csrf_token": token,
            "list": "daily",
            "csv": (io.BytesIO(b"email,name\ncat@example.com,Cat\nnot-an-address,X\n"), "in.csv"),
        },
        content_type="multipart/form-data",
    )
    text = report.get_data(True)
    assert report.status_code == 200 and "<strong>1</strong> added" in text
    assert '<td class="num">3</td>' in text
    export = client.get("/dashboard/subscribers/export?list=daily")
    assert export.mimetype == "text/csv"
    assert "'=cmd()" in export.get_data(True) and "cat@example.com" in export.get_data(True)
    with db.session() as session:
        bob = session.scalars(select(Subscriber).where(Subscriber.email == "bob@example.com")).one()
    assert client.get(f"/dashboard/subscribers/{bob.id}/forget").status_code == 200
    wrong = client.post(
        f"/dashboard/subscribers/{bob.id}/forget",
        data={"csrf_token": token, "confirm": "someone else"},
        follow_redirects=True,
    )
    assert "type the address exactly" in wrong.get_data(True)
    done = client.post(
        f"/dashboard/subscribers/{bob.id}/forget",
        data={"csrf_token": token, "confirm": "bob@example.com"},
        follow_redirects=True,
    )
    assert "Forgotten:" in done.get_data(True)
    assert "bob@example.com" not in client.get("/dashboard/subscribers").get_data(True)


def test_suppressions_add_and_remove(
    client: FlaskClient, users: None, site: None, db: Database
) -> None:
    """An address is suppressed (normalised) and taken off again; a bad address is refused."""
    token = sign_in(client, "olga")
    client.post(
        "/dashboard/suppressions",
        data={"csrf_token": token, "email": "Spam@Example.com", "reason": "asked by phone"},
    )
    page = client.get("/dashboard/suppressions").get_data(True)
    assert "spam@example.com" in page and "operator: asked by phone" in page
    client.post(
        "/dashboard/suppressions/remove", data={"csrf_token": token, "email": "spam@example.com"}
    )
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    bad = client.post(
        "/dashboard/suppressions",
        data={"csrf_token": token, "email": "nope"},
        follow_redirects=True,
    )
    assert "Not done:" in bad.get_data(True)


def test_management_posts_need_the_csrf_token(client: FlaskClient, users: None, site: None) -> None:
    """A management form without the session's token is a 400 that changes nothing."""
    sign_in(client, "olga")
    assert client.post("/dashboard/sections", data={"slug": "x", "name": "X"}).status_code == 400


def test_review_needs_the_editor_role_and_records_the_users_name(
    app: Flask, client: FlaskClient, users: None, db: Database
) -> None:
    """A viewer gets 403 on the review pages; an editor's change is recorded under the
    editor's user name, and the nav offers the review to editors only."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(
            session, "daily", "Daily", ["national"], send_at="07:00", review=True
        )
        daily.created_at = dt.datetime(2024, 3, 1)
        catalog.subscribe(session, daily, "ann@example.com", "Ann")
        section = catalog.get_section(session, "national")
        story = Article(
            url="https://n.example/1", section_id=section.id, headline="Story",
            teaser="Teaser.", published_at=dt.datetime(2024, 3, 10, 1),
        )  # fmt: skip
        session.add(story)
        session.commit()
        story_id = story.id
    with app.app_context():
        context().core.send_due(dt.datetime(2024, 3, 10, 5, 0))
        edition_id = context().core.review.show("daily").edition_id
    page = f"/dashboard/review/{edition_id}"
    token = sign_in(client, "vera")
    assert "/dashboard/review/" not in client.get("/dashboard/").get_data(True)
    assert client.get(page).status_code == 403
    assert client.post(f"{page}/note", data={"csrf_token": token, "note": "x"}).status_code == 403
    client.post("/dashboard/logout", data={"csrf_token": token})
    token = sign_in(client, "eddie")
    assert "/dashboard/review/" in client.get("/dashboard/").get_data(True)
    assert client.get(page).status_code == 200
    teaser = {"csrf_token": token, "story": str(story_id), "teaser": "Sharper."}
    assert client.post(f"{page}/teaser", data=teaser).status_code == 303
    with app.app_context():
        events = context().core.review.show("daily").events
    assert [(e.who, e.action) for e in events] == [("eddie", "teaser")]
