"""A person unsubscribes from a real digest in a real browser (headless Chromium)."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from digest.config import Settings
from digest.edition.build import build_edition
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, SubscriptionStatus
from digest.transports import OutboxTransport
from digest.web import create_app
from tests.web.browser import chromium_page, live_server, require_browser


def test_footer_link_of_a_sent_digest_unsubscribes_in_the_browser(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Opening the footer link of a delivered digest and clicking the button ends the
    subscription; opening the link alone does not."""
    require_browser()
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        session.add(Article(url="https://n.example/a", section_id=section.id, headline="Story",
                            teaser="", published_at=dt.datetime(2026, 11, 24, 9)))  # fmt: skip
        subscriber, _ = catalog.subscribe(session, daily, "ann@example.com", "Ann")
        subscriber_id = subscriber.id

    def app_for(base_url: str) -> object:
        return create_app(settings.replace(base_url=base_url))

    with live_server(app_for) as base_url, chromium_page() as page:
        site = settings.replace(base_url=base_url)
        with db.session() as session:
            edition, _ = build_edition(session, site, catalog.get_list(session, "daily"),
                                       dt.date(2026, 11, 24))  # fmt: skip
            edition_id = edition.id
        send_until_done(db, EditionMailer(site), edition_id,
                        lambda: OutboxTransport(tmp_path / "outbox"))  # fmt: skip
        (eml,) = (tmp_path / "outbox").rglob("*.eml")
        msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        html = msg.get_body(("html",)).get_content()
        link = re.search(r'href="(http://127\.0\.0\.1:\d+/unsubscribe/[^"]+)"', html)
        assert link

        page.goto(link.group(1))
        assert _status(db, subscriber_id) == SubscriptionStatus.CONFIRMED
        page.get_by_role("button", name="Unsubscribe from Daily").click()
        page.wait_for_selector("text=You are unsubscribed")
    assert _status(db, subscriber_id) == SubscriptionStatus.UNSUBSCRIBED


def _status(db: Database, subscriber_id: int) -> SubscriptionStatus:
    from sqlalchemy import select

    from digest.store.models import Subscription

    with db.session() as session:
        return session.scalars(
            select(Subscription.status).where(Subscription.subscriber_id == subscriber_id)
        ).one()
