"""The subscriber pages through the HTTP client: double opt-in, one-click unsubscribe,
preferences, the archive, and tokens that cannot be forged or reused for another purpose."""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from digest.config import Settings
from digest.edition.build import build_edition
from digest.mail.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE, TokenSigner
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import (
    Article,
    ConsentEvent,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from digest.transports import RecordingTransport
from digest.web import create_app
from digest.web.after import after_response

DAY = dt.date(2026, 11, 24)


@pytest.fixture
def site(db: Database) -> None:
    """Two lists over two sections, one article each on DAY, and one confirmed reader."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        sports, _ = catalog.add_section(session, "sports", "Sports")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national", "sports"])
        catalog.add_list(session, "weekly", "Weekly", ["sports"])
        for i, section in enumerate([national, sports]):
            session.add(Article(url=f"https://n.example/{i}", section_id=section.id,
                                headline=f"{section.name} story", teaser="Teaser.",
                                published_at=dt.datetime(2026, 11, 24, 9 + i)))  # fmt: skip
        catalog.subscribe(session, daily, "ann@example.com", "Ann")


class SettlingClient(FlaskClient):
    """A client that, after each request, waits for the work the page left for after its
    answer (recording a sign-up, mailing it), so a test sees the outcome."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        assert after_response(self.application).wait(30), "background work did not finish"
        return response


def _app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.test_client_class = SettlingClient
    return app


@pytest.fixture
def app(settings: Settings, db: Database, site: None) -> Iterator[Flask]:
    yield _app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _ids(db: Database, email: str) -> tuple[int, dict[str, int]]:
    with db.session() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        lists = {lst.slug: lst.id for lst in session.scalars(select(MailingList))}
        return subscriber.id, lists


def _subscription(db: Database, email: str, slug: str) -> Subscription | None:
    with db.session() as session:
        return session.scalars(
            select(Subscription)
            .join(Subscriber)
            .join(MailingList)
            .where(Subscriber.email == email, MailingList.slug == slug)
        ).first()


def _outbox_messages(settings: Settings) -> list[EmailMessage]:
    found = []
    for path in sorted(Path(settings.outbox_dir).rglob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def test_subscribe_then_confirm_with_consent_recorded(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """The form creates a pending subscription and mails a confirm link; GET on the link only
    shows a button, POST confirms; the consent (IP, form, wording) is stored."""
    page = client.get("/subscribe/daily")
    assert page.status_code == 200 and b"Sports" in page.data
    done = client.post("/subscribe/daily", data={"email": "Bob@Example.org", "name": "Bob",
                                                  "sections": ["sports"]})  # fmt: skip
    assert done.status_code == 200 and b"Check your inbox" in done.data
    pending = _subscription(db, "bob@example.org", "daily")
    assert pending is not None and pending.status == SubscriptionStatus.PENDING
    assert pending.sections == ["sports"] and pending.source == "web form"
    assert pending.consent_ip == "127.0.0.1" and "Daily" in (pending.consent_text or "")

    (mail,) = _outbox_messages(settings)
    assert mail["To"].addresses[0].addr_spec == "bob@example.org"
    link = re.search(r"https://news\.example(/confirm/\S+)", mail.get_content())
    assert link
    shown = client.get(link.group(1))
    assert shown.status_code == 200 and b"Confirm my subscription" in shown.data
    still = _subscription(db, "bob@example.org", "daily")
    assert still is not None and still.status == SubscriptionStatus.PENDING
    client.post(link.group(1))
    confirmed = _subscription(db, "bob@example.org", "daily")
    assert confirmed is not None and confirmed.status == SubscriptionStatus.CONFIRMED


def test_bad_address_is_refused_and_nothing_stored(client: FlaskClient, db: Database) -> None:
    """An invalid address gets the form back with the reason (400) and no subscriber row."""
    page = client.post("/subscribe/daily", data={"email": "not an address"})
    assert page.status_code == 400 and b"invalid email address" in page.data
    with db.session() as session:
        assert session.scalars(select(Subscriber.email)).all() == ["ann@example.com"]


def test_subscribed_address_gets_the_same_answer_as_a_new_one(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """Signing up an address that is already confirmed answers the same status and the same
    page as a new address, and does the same work (one email: a note, not a confirm link), so
    neither the page nor its timing reveals who subscribes."""
    known = client.post("/subscribe/daily", data={"email": "ann@example.com"})
    new = client.post("/subscribe/daily", data={"email": "newcomer@example.com"})
    assert (known.status_code, known.data) == (new.status_code, new.data)
    assert known.status_code == 200 and b"Check your inbox" in known.data
    mails = {m["To"].addresses[0].addr_spec: m for m in _outbox_messages(settings)}
    assert set(mails) == {"ann@example.com", "newcomer@example.com"}
    note = mails["ann@example.com"].get_content()
    assert "already" in note and "/preferences/" in note and "/confirm/" not in note
    kept = _subscription(db, "ann@example.com", "daily")
    assert kept is not None and kept.status == SubscriptionStatus.CONFIRMED


def test_one_click_post_unsubscribes_and_get_never_does(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """GET shows a button and changes nothing; POST with List-Unsubscribe=One-Click answers 200
    at once, without a redirect or a cookie, and the subscription is ended."""
    subscriber_id, lists = _ids(db, "ann@example.com")
    token = TokenSigner(settings.secret).sign(UNSUBSCRIBE, subscriber_id, lists["daily"])
    shown = client.get(f"/unsubscribe/{token}")
    assert shown.status_code == 200 and b"Unsubscribe from all lists" in shown.data
    kept = _subscription(db, "ann@example.com", "daily")
    assert kept is not None and kept.status == SubscriptionStatus.CONFIRMED
    done = client.post(f"/unsubscribe/{token}", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert done.status_code == 200 and "Set-Cookie" not in done.headers
    ended = _subscription(db, "ann@example.com", "daily")
    assert ended is not None and ended.status == SubscriptionStatus.UNSUBSCRIBED


def test_unsubscribe_from_all_lists(client: FlaskClient, db: Database, settings: Settings) -> None:
    """The "all lists" button ends every subscription and marks the subscriber unsubscribed."""
    subscriber_id, lists = _ids(db, "ann@example.com")
    token = TokenSigner(settings.secret).sign(UNSUBSCRIBE, subscriber_id, lists["daily"])
    client.post(f"/unsubscribe/{token}", data={"scope": "all"})
    with db.session() as session:
        subscriber = session.get_one(Subscriber, subscriber_id)
        assert subscriber.status == SubscriberStatus.UNSUBSCRIBED


def test_forged_altered_or_misused_tokens_change_nothing(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """A token signed with another key, altered by one character, or made for another purpose
    gets a plain 400 page and the subscription stays as it was."""
    subscriber_id, lists = _ids(db, "ann@example.com")
    good = TokenSigner(settings.secret).sign(UNSUBSCRIBE, subscriber_id, lists["daily"])
    forged = TokenSigner("another key").sign(UNSUBSCRIBE, subscriber_id, lists["daily"])
    # Not the last character: its low bits are base64 padding, which decoding ignores.
    middle = len(good) - 5
    altered = good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1 :]
    confirm = TokenSigner(settings.secret).sign(CONFIRM, subscriber_id, lists["daily"])
    for token in (forged, altered, confirm, "garbage"):
        page = client.post(f"/unsubscribe/{token}", data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
        assert page.status_code == 400 and b"Nothing was changed" in page.data
    kept = _subscription(db, "ann@example.com", "daily")
    assert kept is not None and kept.status == SubscriptionStatus.CONFIRMED


def test_preferences_change_sections_lists_and_name(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """The preferences form picks sections, joins another list and renames, all at once."""
    subscriber_id, lists = _ids(db, "ann@example.com")
    token = TokenSigner(settings.secret).sign(PREFERENCES, subscriber_id)
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200 and b"Weekly" in page.data
    saved = client.post(f"/preferences/{token}", data={
        "name": "Ann B.", f"list-{lists['daily']}": "on", f"sections-{lists['daily']}": "sports",
        f"list-{lists['weekly']}": "on",
    })  # fmt: skip
    assert saved.status_code == 200 and b"Saved" in saved.data
    daily = _subscription(db, "ann@example.com", "daily")
    weekly = _subscription(db, "ann@example.com", "weekly")
    assert daily is not None and daily.sections == ["sports"]
    assert weekly is not None and weekly.status == SubscriptionStatus.CONFIRMED
    with db.session() as session:
        assert session.get_one(Subscriber, subscriber_id).name == "Ann B."


def test_preferences_say_no_mail_comes_when_the_chosen_sections_are_empty(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """The page says a day with nothing in the chosen sections brings no mail, or the whole
    digest on a list that sends all then."""
    subscriber_id, _ = _ids(db, "ann@example.com")
    token = TokenSigner(settings.secret).sign(PREFERENCES, subscriber_id)
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert "have no news, no mail comes." in page
    with db.session() as session:
        catalog.edit_list(session, "weekly", when_empty="all")
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert "have no news, no mail comes." in page  # daily
    assert "have no news, the whole digest comes instead." in page  # weekly


def test_archive_shows_editions_without_personal_links(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """A sent edition is listed in the archive and shown with the list's public links only."""
    with db.session() as session:
        edition, _ = build_edition(session, settings, catalog.get_list(session, "daily"), DAY)
        edition_id = edition.id
    transport = RecordingTransport()
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    index = client.get("/archive/daily/")
    assert index.status_code == 200 and b"2026-11-24" in index.data
    page = client.get("/archive/daily/2026-11-24")
    assert page.status_code == 200 and b"National story" in page.data
    assert b"/unsubscribe/" not in page.data and b"/preferences/" not in page.data
    assert client.get("/archive/daily/2026-11-23").status_code == 404
    assert client.get("/archive/nope/").status_code == 404


def test_unsubscribe_header_of_a_sent_digest_works(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """The https List-Unsubscribe URL of a real sent message, POSTed the way Gmail's button
    does, unsubscribes that reader."""
    with db.session() as session:
        edition, _ = build_edition(session, settings, catalog.get_list(session, "daily"), DAY)
        edition_id = edition.id
    transport = RecordingTransport()
    send_until_done(db, EditionMailer(settings), edition_id, lambda: transport)
    ((_, data),) = transport.sent
    header = str(message_from_bytes(data, policy=policy.default)["List-Unsubscribe"])
    url = re.search(r"<https://news\.example(/unsubscribe/[^>]+)>", header)
    assert url
    page = client.post(url.group(1), data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert page.status_code == 200
    ended = _subscription(db, "ann@example.com", "daily")
    assert ended is not None and ended.status == SubscriptionStatus.UNSUBSCRIBED


# -- abuse: repeated sign-ups, replayed links, consent history --------------------------------


def _confirm_links(settings: Settings, address: str) -> list[str]:
    links = []
    for mail in _outbox_messages(settings):
        if mail["To"].addresses[0].addr_spec == address:
            found = re.search(r"https://news\.example(/confirm/\S+)", mail.get_content())
            if found:
                links.append(found.group(1))
    return links


def _events(db: Database, email: str) -> list[ConsentEvent]:
    with db.session() as session:
        return list(
            session.scalars(
                select(ConsentEvent).join(Subscriber).where(Subscriber.email == email)
                .order_by(ConsentEvent.id)
            )
        )  # fmt: skip


def test_fifty_sign_ups_of_one_address_send_one_email(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """Fifty posts of the form for one address within the window, each from another IP (so the
    per-IP limit plays no part), send one confirmation email; every post gets the same "check
    your inbox" page."""
    for i in range(50):
        page = client.post("/subscribe/daily", data={"email": "target@example.com"},
                           environ_base={"REMOTE_ADDR": f"203.0.113.{i}"})  # fmt: skip
        assert page.status_code == 200 and b"Check your inbox" in page.data
    assert len(_outbox_messages(settings)) == 1
    assert b"at most one" in page.data


def test_sign_ups_per_client_ip_are_limited_with_a_clear_page(
    settings: Settings, db: Database, site: None
) -> None:
    """Past DIGEST_SIGNUPS_PER_IP_PER_HOUR posts from one IP the form answers 429 with a styled
    page and Retry-After, mails and stores nothing; another IP is unaffected."""
    client = _app(settings.replace(signups_per_ip_per_hour=3)).test_client()
    for i in range(3):
        assert (
            client.post("/subscribe/daily", data={"email": f"r{i}@example.com"}).status_code == 200
        )
    refused = client.post("/subscribe/daily", data={"email": "late@example.com"})
    assert refused.status_code == 429 and b"Too many sign-ups" in refused.data
    assert b"<style>" in refused.data and int(refused.headers["Retry-After"]) > 0
    assert len(_outbox_messages(settings)) == 3
    with db.session() as session:
        assert session.scalars(
            select(Subscriber).where(Subscriber.email == "late@example.com")
        ).first() is None  # fmt: skip
    other = client.post("/subscribe/daily", data={"email": "late@example.com"},
                        environ_base={"REMOTE_ADDR": "192.0.2.7"})  # fmt: skip
    assert other.status_code == 200


def test_confirm_link_replayed_after_unsubscribing_from_all_is_void(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """A confirm link used, then "unsubscribe from all", then the same link POSTed again: it
    does not subscribe them again; signing up anew mails a fresh link that works."""
    client.post("/subscribe/daily", data={"email": "carol@example.com"})
    (link,) = _confirm_links(settings, "carol@example.com")
    client.post(link)
    subscriber_id, lists = _ids(db, "carol@example.com")
    token = TokenSigner(settings.secret).sign(UNSUBSCRIBE, subscriber_id, lists["daily"])
    client.post(f"/unsubscribe/{token}", data={"scope": "all"})
    replay = client.post(link)
    assert replay.status_code == 400 and b"Nothing was changed" in replay.data
    gone = _subscription(db, "carol@example.com", "daily")
    assert gone is not None and gone.status == SubscriptionStatus.UNSUBSCRIBED
    with db.session() as session:
        assert session.get_one(Subscriber, subscriber_id).status == SubscriberStatus.UNSUBSCRIBED
    # Even once a new sign-up makes the subscription pending again, the old link stays void.
    client.post("/subscribe/daily", data={"email": "carol@example.com"})
    (fresh,) = set(_confirm_links(settings, "carol@example.com")) - {link}
    assert client.post(link).status_code == 400
    assert client.post(fresh).status_code == 200
    back = _subscription(db, "carol@example.com", "daily")
    assert back is not None and back.status == SubscriptionStatus.CONFIRMED


def test_resubmitted_form_does_not_overwrite_the_consent_record(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """A second sign-up for a pending address (from another IP, other sections) is appended to
    the consent history and changes nothing on the subscription; confirming the mailed link
    applies the consent that link was sent for."""
    client.post("/subscribe/daily", data={"email": "dan@example.com", "sections": ["sports"]})
    client.post("/subscribe/daily", data={"email": "dan@example.com", "sections": ["national"]},
                environ_base={"REMOTE_ADDR": "198.51.100.9"})  # fmt: skip
    pending = _subscription(db, "dan@example.com", "daily")
    assert pending is not None and pending.status == SubscriptionStatus.PENDING
    assert pending.consent_ip == "127.0.0.1" and pending.sections == ["sports"]
    (link,) = _confirm_links(settings, "dan@example.com")
    client.post(link)
    confirmed = _subscription(db, "dan@example.com", "daily")
    assert confirmed is not None and confirmed.status == SubscriptionStatus.CONFIRMED
    assert confirmed.consent_ip == "127.0.0.1" and confirmed.sections == ["sports"]
    events = _events(db, "dan@example.com")
    assert [(e.action, e.ip, e.sections) for e in events] == [
        ("signup", "127.0.0.1", ["sports"]),
        ("signup", "198.51.100.9", ["national"]),
        ("confirm", "127.0.0.1", None),
    ]
    assert all("Daily" in (e.wording or "") for e in events[:2])


def test_a_failed_sign_up_email_keeps_the_consent_and_frees_the_slot(
    settings: Settings, db: Database, site: None
) -> None:
    """When the SMTP server cannot be reached the page still answers as usual, the sign-up is
    in the consent history, and the address's email slot is given back: posting again once
    mail works sends the confirmation at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    broken = _app(settings.replace(smtp_url=f"smtp://127.0.0.1:{dead}")).test_client()
    page = broken.post("/subscribe/daily", data={"email": "eve@example.com"})
    assert page.status_code == 200 and b"Check your inbox" in page.data
    assert [e.action for e in _events(db, "eve@example.com")] == ["signup"]
    working = _app(settings).test_client()
    working.post("/subscribe/daily", data={"email": "eve@example.com"})
    assert len(_confirm_links(settings, "eve@example.com")) == 1


def test_a_test_copy_is_marked_and_its_links_say_so(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """A test copy's subject starts with [TEST]; its unsubscribe and preferences links open a
    page that says it is a test copy (GET and POST alike) and change nothing."""
    from email import message_from_bytes, policy
    from urllib.parse import urlsplit

    from digest.service.core import Digest
    from digest.transports import RecordingTransport

    transport = RecordingTransport()
    core = Digest(settings, db=db, transport_factory=lambda: transport)
    draft, _ = core.draft("daily", DAY)
    core.send_test(draft, "editor@example.com")
    ((_, raw),) = transport.sent
    message = message_from_bytes(raw, policy=policy.default)
    assert str(message["Subject"]).startswith("[TEST] ")
    links = [
        part.strip("<> ")
        for part in str(message["List-Unsubscribe"]).split(",")
        if part.strip().startswith("<http")
    ]
    before = _subscription(db, "ann@example.com", "daily")
    assert before is not None
    for path in (urlsplit(links[0]).path, "/preferences/preview"):
        for method in (client.get, client.post):
            page = method(path)
            assert page.status_code == 200 and b"Test copy" in page.data, path
    after = _subscription(db, "ann@example.com", "daily")
    assert after is not None and after.status == before.status == SubscriptionStatus.CONFIRMED
