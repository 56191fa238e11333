"""The public pages and the sign-up mails speak their list's language: an Urdu list's pages are
in Urdu and right to left, an English list's stay as they were, and a page of no list follows
the browser among the shipped languages."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from digest.config import Settings
from digest.edition.build import build_edition
from digest.mail.tokens import PREFERENCES, UNSUBSCRIBE, TokenSigner
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.translations import DOMAIN, LOCALE_DIR
from digest.store.db import Database
from digest.store.models import Article, MailingList, Subscriber
from digest.transports import RecordingTransport
from digest.web import create_app
from tests.web.test_public import SettlingClient

DAY = dt.date(2026, 11, 24)
RTL_ROOT = '<html lang="ur" dir="rtl">'
LTR_ROOT = '<html lang="en" dir="ltr">'


def _english_fragments() -> list[str]:
    """Every piece of English text the catalogue holds (placeholders and tags cut out), long
    enough not to be part of a name or an address by chance."""
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as source:
        template = read_po(source)
    pieces: set[str] = set()
    for message in template:
        for text in [message.id] if isinstance(message.id, str) else message.id:
            for piece in re.split(r"%\([a-z]+\)s|<[^>]+>", text):
                if len(piece.strip(" .:?()")) >= 6:
                    pieces.add(piece.strip())
    return sorted(pieces)


ENGLISH = _english_fragments()


class _Text(HTMLParser):
    """The page's text (its title too), less its style sheet and what is marked English (an
    address checker's reason)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip or tag == "style" or (tag != "html" and dict(attrs).get("lang") == "en"):
            self.skip.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip.pop()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _visible(html: str) -> str:
    reader = _Text()
    reader.feed(html)
    return " ".join("".join(reader.parts).split())


def _assert_urdu(page: TestResponse, *phrases: str) -> None:
    html = page.get_data(as_text=True)
    assert RTL_ROOT in html
    text = _visible(html)
    leftover = [piece for piece in ENGLISH if piece in text]
    assert leftover == [], page.request.path
    for phrase in phrases:
        assert phrase in text, (phrase, page.request.path)


@pytest.fixture
def site(db: Database) -> None:
    """An Urdu list and an English one over two sections, an article, and two readers: Ann
    (of the Urdu list) and Ben (of the English list first, then of the Urdu one)."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "قومی")
        catalog.add_section(session, "sports", "کھیل")
        urdu, _ = catalog.add_list(session, "akhbar", "روزنامہ", ["national", "sports"],
                                   language="ur")  # fmt: skip
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        catalog.add_list(session, "arabic", "Arabic Daily", ["national"], language="ar")
        session.add(Article(url="https://n.example/1", section_id=national.id,
                            headline="بجٹ منظور", teaser="خلاصہ۔",
                            published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        catalog.subscribe(session, urdu, "ann@example.com", "Ann")
        catalog.subscribe(session, daily, "ben@example.com", "Ben")
        catalog.subscribe(session, urdu, "ben@example.com", "Ben")


def _app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.test_client_class = SettlingClient
    return app


@pytest.fixture
def client(settings: Settings, db: Database, site: None) -> Iterator[FlaskClient]:
    yield _app(settings).test_client()


def _ids(db: Database, email: str) -> tuple[int, dict[str, int]]:
    with db.session() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        lists = {lst.slug: lst.id for lst in session.scalars(select(MailingList))}
        return subscriber.id, lists


def _mails(settings: Settings) -> list[EmailMessage]:
    found = []
    for path in sorted(Path(settings.outbox_dir).rglob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def test_sign_up_pages_and_mails_of_an_urdu_list_are_urdu(
    client: FlaskClient, settings: Settings
) -> None:
    """The form, its error, "check your inbox", the confirmation mail, the confirm page before
    and after the click, and the note to an address already subscribed: all Urdu, the pages
    right to left."""
    form = client.get("/subscribe/akhbar")
    _assert_urdu(form, "روزنامہ کو سبسکرائب کریں", "ای میل پتا", "قومی", "کھیل",
                 "جی ہاں، مجھے The Test Gazette کی طرف سے روزنامہ ای میل کریں۔")  # fmt: skip
    wrong = client.post("/subscribe/akhbar", data={"email": "not an address"})
    assert wrong.status_code == 400
    _assert_urdu(wrong, "یہ درست ای میل پتا نہیں ہے۔")
    sent = client.post("/subscribe/akhbar", data={"email": "cat@example.com"})
    _assert_urdu(sent, "اپنا ان باکس دیکھیں", "ہر 3 گھنٹے میں")
    client.post("/subscribe/akhbar", data={"email": "ann@example.com"})

    mails = {m["To"].addresses[0].addr_spec: m for m in _mails(settings)}
    confirm = mails["cat@example.com"]
    assert str(confirm["Subject"]) == "روزنامہ کی سبسکرپشن کی تصدیق کریں"
    assert "براہِ کرم تصدیق کریں" in confirm.get_content()
    link = re.search(r"https://news\.example(/confirm/\S+)", confirm.get_content())
    assert link
    _assert_urdu(client.get(link.group(1)), "میری سبسکرپشن کی تصدیق کریں")
    _assert_urdu(client.post(link.group(1)), "آپ کی سبسکرپشن مکمل ہو گئی")

    note = mails["ann@example.com"]
    assert str(note["Subject"]) == "آپ پہلے سے روزنامہ وصول کر رہے ہیں"
    preferences = re.search(r"https://news\.example(/preferences/\S+)", note.get_content())
    assert preferences
    _assert_urdu(client.get(preferences.group(1)), "آپ کی ترجیحات")


def test_link_pages_of_an_urdu_list_are_urdu(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """Unsubscribe (asked and done, from the list and from all), preferences (shown and
    saved), the archive and its missing editions are Urdu and right to left."""
    signer = TokenSigner(settings.secret)
    ann, lists = _ids(db, "ann@example.com")
    unsubscribe = f"/unsubscribe/{signer.sign(UNSUBSCRIBE, ann, lists['akhbar'])}"
    preferences = f"/preferences/{signer.sign(PREFERENCES, ann, lists['akhbar'])}"
    _assert_urdu(client.get(preferences), "آپ کی ترجیحات", "ترجیحات محفوظ کریں")
    _assert_urdu(client.post(preferences, data={f"list-{lists['akhbar']}": "on"}),
                 "محفوظ ہو گیا۔")  # fmt: skip
    _assert_urdu(client.get(unsubscribe), "روزنامہ سے ان سبسکرائب کریں")
    _assert_urdu(client.post(unsubscribe, data={"scope": "list"}),
                 "آپ کو ان سبسکرائب کر دیا گیا ہے", "روزنامہ کی کوئی ای میل نہیں")  # fmt: skip
    ben, _ = _ids(db, "ben@example.com")
    everything = f"/unsubscribe/{signer.sign(UNSUBSCRIBE, ben, lists['akhbar'])}"
    _assert_urdu(client.post(everything, data={"scope": "all"}), "کسی فہرست کی کوئی ای میل")

    _assert_urdu(client.get("/archive/akhbar/"), "روزنامہ: پچھلے شمارے", "ابھی کوئی شمارہ نہیں۔")
    with db.session() as session:
        edition, _ = build_edition(session, settings, catalog.get_list(session, "akhbar"), DAY)
        edition_id = edition.id
    send_until_done(db, EditionMailer(settings), edition_id, lambda: RecordingTransport())
    listed = client.get("/archive/akhbar/")
    assert '<span dir="auto">' in listed.get_data(as_text=True)
    edition_page = client.get("/archive/akhbar/2026-11-24").get_data(as_text=True)
    assert '<html lang="ur" dir="rtl"' in edition_page and "بجٹ منظور" in edition_page
    for missing in ("/archive/akhbar/2026-11-23", "/archive/akhbar/yesterday"):
        page = client.get(missing)
        assert page.status_code == 404
        _assert_urdu(page, "نہیں ملا")


def test_too_many_sign_ups_page_is_in_the_list_language(
    settings: Settings, db: Database, site: None
) -> None:
    """The 429 page of an Urdu list's form is Urdu, counts in Urdu's plural forms."""
    client = _app(settings.replace(signups_per_ip_per_hour=1)).test_client()
    client.post("/subscribe/akhbar", data={"email": "dee@example.com"})
    refused = client.post("/subscribe/akhbar", data={"email": "eve@example.com"})
    assert refused.status_code == 429
    _assert_urdu(refused, "بہت زیادہ سائن اپ", "ایک سے زیادہ بار")


def test_english_list_pages_stay_english_and_left_to_right(
    client: FlaskClient, db: Database, settings: Settings
) -> None:
    """An English list's pages say what they said before, ``lang="en" dir="ltr"``, and do not
    vary with the browser's language."""
    signer = TokenSigner(settings.secret)
    ben, lists = _ids(db, "ben@example.com")
    urdu_browser = {"Accept-Language": "ur"}
    form = client.get("/subscribe/daily", headers=urdu_browser)
    html = form.get_data(as_text=True)
    assert LTR_ROOT in html and "Subscribe to <bdi>Daily</bdi>" in html
    assert "Accept-Language" not in form.headers.get("Vary", "")
    unsubscribe = client.get(f"/unsubscribe/{signer.sign(UNSUBSCRIBE, ben, lists['daily'])}",
                             headers=urdu_browser)  # fmt: skip
    assert LTR_ROOT in unsubscribe.get_data(as_text=True)
    assert b"Unsubscribe from all lists" in unsubscribe.data
    # Ben's first list is the English one: a link naming no list speaks its language.
    preferences = client.get(f"/preferences/{signer.sign(PREFERENCES, ben)}")
    assert (
        LTR_ROOT in preferences.get_data(as_text=True) and b"Your preferences" in preferences.data
    )
    # The same reader, through a link from the Urdu list's mail, gets Urdu.
    _assert_urdu(client.get(f"/preferences/{signer.sign(PREFERENCES, ben, lists['akhbar'])}"))


def test_a_language_without_a_catalogue_is_english_left_to_right(client: FlaskClient) -> None:
    """An Arabic list's page is English (no Arabic catalogue), so ``lang="en" dir="ltr"``; its
    Arabic-script names would still lay out right (``dir="auto"``, ``<bdi>``)."""
    html = client.get("/subscribe/arabic").get_data(as_text=True)
    assert LTR_ROOT in html and "Subscribe to <bdi>Arabic Daily</bdi>" in html
    assert '<span dir="auto">قومی</span>' in html


def test_pages_of_no_list_follow_the_browser(client: FlaskClient, settings: Settings) -> None:
    """The index and a broken link's page are Urdu for a browser asking for Urdu (and say
    they vary by it), English for any other; an expired link says it expired."""
    urdu = client.get("/", headers={"Accept-Language": "ur-PK, en;q=0.5"})
    _assert_urdu(urdu, "نیوز لیٹر", "روزنامہ")
    assert "Accept-Language" in urdu.headers["Vary"]
    french = client.get("/", headers={"Accept-Language": "fr, de;q=0.8"})
    assert LTR_ROOT in french.get_data(as_text=True) and b"Newsletters" in french.data
    assert LTR_ROOT in client.get("/").get_data(as_text=True)

    broken = client.get("/unsubscribe/garbage", headers={"Accept-Language": "ur"})
    assert broken.status_code == 400
    _assert_urdu(broken, "یہ لنک درست نہیں ہے۔")
    signer = TokenSigner(settings.secret)
    real_time = time.time
    long_ago = real_time() - 401 * 86400
    try:
        time.time = lambda: long_ago
        old = signer.sign(UNSUBSCRIBE, 1, 1)
    finally:
        time.time = real_time
    expired = client.get(f"/unsubscribe/{old}")
    assert expired.status_code == 400 and b"This link has expired." in expired.data
    _assert_urdu(client.get(f"/unsubscribe/{old}", headers={"Accept-Language": "ur"}),
                 "اس لنک کی میعاد ختم ہو چکی ہے۔")  # fmt: skip


def test_names_in_messages_are_escaped(settings: Settings, db: Database, site: None) -> None:
    """A list name with markup is shown as text inside a translated sentence, in both
    languages: values put into a message are escaped like any other output."""
    with db.session() as session:
        catalog.add_list(session, "evil", "<script>alert(1)</script>", ["national"], language="ur")
    page = _app(settings).test_client().get("/subscribe/evil").get_data(as_text=True)
    assert "<script>" not in page
    assert "<bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi> کو سبسکرائب کریں" in page
