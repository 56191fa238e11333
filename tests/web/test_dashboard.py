"""The operator dashboard through the HTTP client (login, CSRF, pages, actions), and once in a
real browser: sign in and send today's digest with the button."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from digest.config import Settings
from digest.edition.build import build_edition
from digest.edition.select import local_today
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Source,
    StopReason,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from digest.web import create_app
from tests.web.browser import chromium_page, live_server, require_browser
from tests.web.conftest import OPERATOR_PASSWORD, wait_for_sends

READERS = ["ann@example.com", "bob@example.com"]


@pytest.fixture
def site(db: Database) -> None:
    """A daily list (UTC) with two readers and a story published now, a weekly list with one
    pending sign-up, and a failing source."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        weekly, _ = catalog.add_list(session, "weekly", "Weekly", ["national"])
        session.add(
            Article(
                url="https://n.example/1",
                section_id=national.id,
                headline="Bridge reopens today",
                teaser="Teaser.",
                published_at=utcnow(),
            )
        )
        for address in READERS:
            catalog.subscribe(session, daily, address)
        session.add(
            Source(
                url="https://n.example/feed",
                name="Town feed",
                section_id=national.id,
                consecutive_errors=3,
                last_error="HTTP 503 from n.example",
            )
        )
        session.flush()
        catalog.subscribe(session, weekly, "pending@example.com")
        session.execute(
            update(Subscription)
            .where(Subscription.list_id == weekly.id)
            .values(status=SubscriptionStatus.PENDING)
        )


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def _log_in(client: FlaskClient, password: str = OPERATOR_PASSWORD) -> Any:
    page = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"password": password, "csrf_token": _csrf(page.get_data(as_text=True))},
    )


@pytest.fixture
def operator(client: FlaskClient, site: None) -> tuple[FlaskClient, str]:
    """A signed-in client and the session's CSRF token."""
    assert _log_in(client).status_code == 303
    return client, _csrf(client.get("/dashboard/").get_data(as_text=True))


def _today_edition(db: Database, slug: str = "daily") -> Edition | None:
    with db.session() as session:
        mailing_list = catalog.get_list(session, slug)
        return session.scalars(
            select(Edition).where(
                Edition.list_id == mailing_list.id,
                Edition.edition_date == local_today(mailing_list.timezone),
            )
        ).first()


def _statuses(db: Database, edition_id: int) -> list[DeliveryStatus]:
    with db.session() as session:
        return sorted(
            session.scalars(select(Delivery.status).where(Delivery.edition_id == edition_id))
        )


def _build_today(db: Database, settings: Settings) -> int:
    with db.session() as session:
        mailing_list = catalog.get_list(session, "daily")
        edition, _ = build_edition(
            session, settings, mailing_list, local_today(mailing_list.timezone)
        )
        return edition.id


# -- login -------------------------------------------------------------------------------------


def test_pages_and_actions_need_a_login(client: FlaskClient, db: Database, site: None) -> None:
    """Without a session the overview and the preview redirect to the login page, and a send
    POST (even with the session's CSRF token) sends nothing."""
    for path in ("/dashboard/", "/dashboard/preview/daily"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].endswith("/dashboard/login")
    token = _csrf(client.get("/dashboard/login").get_data(as_text=True))
    response = client.post("/dashboard/lists/daily/send", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert _today_edition(db) is None


def test_wrong_password_is_refused(client: FlaskClient, site: None) -> None:
    """A wrong password answers 401 with the form again and does not open the dashboard."""
    response = _log_in(client, "guess")
    assert response.status_code == 401
    assert "That user name or password is not right." in response.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 303


def test_login_sets_an_httponly_samesite_cookie_and_logout_ends_it(
    client: FlaskClient, site: None
) -> None:
    """The right password opens the dashboard with an HttpOnly, SameSite=Lax session cookie;
    signing out closes it again."""
    response = _log_in(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "Today's editions" in page.get_data(as_text=True)
    client.post("/dashboard/logout", data={"csrf_token": _csrf(page.get_data(as_text=True))})
    assert client.get("/dashboard/").status_code == 303


def test_login_is_off_without_an_operator_password(
    db: Database, settings: Settings, site: None
) -> None:
    """With no DIGEST_OPERATOR_PASSWORD the login page says so (503) and no password works."""
    app = create_app(settings)
    client = app.test_client()
    page = client.get("/dashboard/login")
    assert page.status_code == 503
    assert "no operator password is set" in page.get_data(as_text=True)
    with client.session_transaction() as session:
        session["csrf"] = "known"
    refused = client.post("/dashboard/login", data={"password": "", "csrf_token": "known"})
    assert refused.status_code == 503
    assert client.get("/dashboard/").status_code == 303


def test_changing_the_password_ends_existing_sessions(
    app: Flask, web_settings: Settings, site: None
) -> None:
    """A session made with the old password is not accepted once the password changes."""
    old = app.test_client()
    assert _log_in(old).status_code == 303
    cookie = old.get_cookie("session")
    assert cookie is not None
    changed = create_app(web_settings.replace(operator_password="a new password")).test_client()
    changed.set_cookie("session", cookie.value)
    assert changed.get("/dashboard/").status_code == 303


def test_sixty_wrong_passwords_are_stopped_after_five(client: FlaskClient, site: None) -> None:
    """Of 60 wrong passwords from one IP only the first 5 are checked (401); the rest get a
    429 lockout page with Retry-After, and while locked even the right password is refused.
    Another IP can still sign in."""
    codes = [_log_in(client, f"guess {i}").status_code for i in range(60)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    locked = _log_in(client)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in locked.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 303
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    assert _log_in(other).status_code == 303


def test_failed_logins_from_many_ips_lock_the_login_overall(
    web_settings: Settings, db: Database, site: None
) -> None:
    """Guesses spread over many IPs stop at DIGEST_LOGIN_ATTEMPTS_OVERALL in the window; a
    right password gives its attempt back, so it does not count towards the lockout."""
    app = create_app(web_settings.replace(login_attempts_overall=6))
    assert _log_in(app.test_client()).status_code == 303  # given back: not counted
    client = app.test_client()
    codes = []
    for i in range(10):
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{i}"
        codes.append(_log_in(client, "wrong").status_code)
    assert codes == [401] * 6 + [429] * 4


def test_a_cookie_saved_before_logout_is_refused_after(client: FlaskClient, site: None) -> None:
    """Logging out ends the login server-side: a copy of the session cookie taken while signed
    in no longer opens the dashboard once the operator signs out."""
    assert _log_in(client).status_code == 303
    saved = client.get_cookie("session")
    assert saved is not None
    page = client.get("/dashboard/")
    client.post("/dashboard/logout", data={"csrf_token": _csrf(page.get_data(as_text=True))})
    thief = client.application.test_client()
    thief.set_cookie("session", saved.value)
    assert thief.get("/dashboard/").status_code == 303


def test_each_login_gets_a_new_session_id(client: FlaskClient, site: None) -> None:
    """Signing in replaces the session (fixation): nothing planted before the login survives,
    and two logins carry different server-side ids, so ending one leaves the other."""
    with client.session_transaction() as planted:
        planted["sid"] = "chosen-by-an-attacker"
        planted["csrf"] = "planted"
    assert _log_in_with(client, "planted").status_code == 303
    with client.session_transaction() as first:
        first_sid = first["sid"]
        assert first_sid != "chosen-by-an-attacker" and first["csrf"] != "planted"
    second = client.application.test_client()
    assert _log_in(second).status_code == 303
    with second.session_transaction() as other:
        assert other["sid"] != first_sid
    page = second.get("/dashboard/")
    second.post("/dashboard/logout", data={"csrf_token": _csrf(page.get_data(as_text=True))})
    assert client.get("/dashboard/").status_code == 200


def _log_in_with(client: FlaskClient, csrf: str) -> Any:
    return client.post("/dashboard/login", data={"password": OPERATOR_PASSWORD, "csrf_token": csrf})


# -- CSRF --------------------------------------------------------------------------------------


def test_posts_without_the_sessions_csrf_token_are_refused(
    operator: tuple[FlaskClient, str], db: Database
) -> None:
    """A signed-in operator's POST with no CSRF token, or another one, is a 400 and changes
    nothing; the login form needs the token too."""
    client, _ = operator
    assert client.post("/dashboard/lists/daily/send").status_code == 400
    forged = client.post("/dashboard/lists/daily/send", data={"csrf_token": "x" * 43})
    assert forged.status_code == 400
    assert _today_edition(db) is None
    fresh = client.application.test_client()
    assert fresh.post("/dashboard/login", data={"password": OPERATOR_PASSWORD}).status_code == 400


# -- pages -------------------------------------------------------------------------------------


def test_overview_shows_lists_counts_sources_and_sandboxed_previews(
    operator: tuple[FlaskClient, str],
) -> None:
    """The overview lists each list with its subscriber counts and a send button, the failing
    source with its error, and a sandboxed iframe per list; its CSP allows only own frames."""
    client, _ = operator
    response = client.get("/dashboard/")
    html = response.get_data(as_text=True)
    assert 'id="list-daily"' in html and 'id="list-weekly"' in html
    daily_row = html.split('id="list-daily"')[1].split("</tr>")[0]
    assert '<td class="num">2<br>' in daily_row and "Send Daily now" in daily_row
    weekly_row = html.split('id="list-weekly"')[1].split("</tr>")[0]
    assert "1 pending" in weekly_row
    assert "Town feed" in html and "HTTP 503 from n.example" in html
    assert '<iframe sandbox="" loading="lazy"' in html
    assert 'src="/dashboard/preview/daily"' in html
    assert "frame-src 'self'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert 'http-equiv="refresh"' not in html  # nothing is sending


def test_preview_route_serves_the_next_digest_sandboxed(operator: tuple[FlaskClient, str]) -> None:
    """/dashboard/preview/<slug> is today's digest HTML, with a sandbox CSP of its own; an
    unknown list is a 404."""
    client, _ = operator
    response = client.get("/dashboard/preview/daily")
    assert response.status_code == 200
    assert "Bridge reopens today" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"].startswith("sandbox;")
    assert client.get("/dashboard/preview/nope").status_code == 404


# -- actions -----------------------------------------------------------------------------------


def test_send_button_sends_todays_edition_once(
    app: Flask, operator: tuple[FlaskClient, str], db: Database
) -> None:
    """The send button builds today's edition and sends it to every reader; pressing it again
    mails nobody twice; the overview then shows the progress."""
    client, token = operator
    response = client.post("/dashboard/lists/daily/send", data={"csrf_token": token})
    assert response.status_code == 303
    wait_for_sends(app)
    edition = _today_edition(db)
    assert edition is not None
    assert _statuses(db, edition.id) == [DeliveryStatus.SENT] * 2
    client.post("/dashboard/lists/daily/send", data={"csrf_token": token})
    wait_for_sends(app)
    assert _statuses(db, edition.id) == [DeliveryStatus.SENT] * 2
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "is done: nothing to send" in html
    assert '<progress value="2" max="2">100%</progress>' in html


def test_pause_resume_and_cancel_buttons(
    app: Flask, operator: tuple[FlaskClient, str], db: Database, web_settings: Settings
) -> None:
    """Pause holds a sending edition (and the page reloads itself while one is sending),
    resume sends the rest, cancel skips the unsent; a refused action is shown, not raised."""
    client, token = operator
    edition_id = _build_today(db, web_settings)
    sending = client.get("/dashboard/").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="5">' in sending
    assert f'action="/dashboard/editions/{edition_id}/pause"' in sending

    client.post(f"/dashboard/editions/{edition_id}/pause", data={"csrf_token": token})
    with db.session() as session:
        assert session.get_one(Edition, edition_id).status == EditionStatus.PAUSED
    client.post(f"/dashboard/editions/{edition_id}/resume", data={"csrf_token": token})
    wait_for_sends(app)
    assert _statuses(db, edition_id) == [DeliveryStatus.SENT] * 2

    refused = client.post(
        f"/dashboard/editions/{edition_id}/cancel",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "nothing to cancel" in refused.get_data(as_text=True)
    assert (
        client.post(
            f"/dashboard/editions/{edition_id}/explode", data={"csrf_token": token}
        ).status_code
        == 404
    )


def test_cancel_button_skips_unsent_readers(
    operator: tuple[FlaskClient, str], db: Database, web_settings: Settings
) -> None:
    """Cancel marks every unsent reader skipped and the edition cancelled."""
    client, token = operator
    edition_id = _build_today(db, web_settings)
    page = client.post(
        f"/dashboard/editions/{edition_id}/cancel",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "2 unsent recipients skipped" in page.get_data(as_text=True)
    assert _statuses(db, edition_id) == [DeliveryStatus.SKIPPED] * 2


def test_overview_names_states_as_an_operator_would(
    operator: tuple[FlaskClient, str], db: Database, web_settings: Settings
) -> None:
    """An edition built but not claimed yet is "scheduled", not "ready"; one stopped by
    transport errors is "failed" with the reason beside it."""
    client, _ = operator
    edition_id = _build_today(db, web_settings)
    row = client.get("/dashboard/").get_data(as_text=True).split(f'id="edition-{edition_id}"')[1]
    assert '<span class="status status-scheduled">scheduled</span>' in row.split("</tr>")[0]
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        edition.status = EditionStatus.PAUSED
        edition.stop_reason = StopReason.TRANSPORT_ERRORS
        edition.status_reason = "paused: 5 transport errors in a row; last: connection refused"
    row = client.get("/dashboard/").get_data(as_text=True).split(f'id="edition-{edition_id}"')[1]
    row = row.split("</tr>")[0]
    assert '<span class="status status-failed">failed</span>' in row
    assert "connection refused" in row


# -- in a real browser -------------------------------------------------------------------------


def test_operator_signs_in_and_sends_from_the_dashboard_in_chromium(
    db: Database, web_settings: Settings, site: None
) -> None:
    """In headless Chromium: the dashboard sends to the login, the password opens it, clicking
    the send button asks "Send 'Daily' to 2 subscribers?" first, and its yes sends today's
    edition: the ledger shows every reader sent."""
    require_browser()
    apps: list[Flask] = []

    def app_for(base_url: str) -> Flask:
        apps.append(create_app(web_settings.replace(base_url=base_url)))
        return apps[-1]

    with live_server(app_for) as base_url, chromium_page() as page:
        page.goto(f"{base_url}/dashboard/")
        assert page.url.endswith("/dashboard/login")
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("text=Today's editions")
        page.get_by_role("link", name="Send Daily now").click()
        page.wait_for_selector("text=Send “Daily” to 2 subscribers?")
        assert _today_edition(db) is None  # nothing is sent before the yes
        page.get_by_role("button", name="Yes, send to 2 subscribers").click()
        page.wait_for_selector("text=is being sent")
        wait_for_sends(apps[0])
    edition = _today_edition(db)
    assert edition is not None
    assert _statuses(db, edition.id) == [DeliveryStatus.SENT] * len(READERS)
