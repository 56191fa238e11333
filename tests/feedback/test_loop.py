"""The whole loop over real SMTP: an edition goes out with per-delivery return paths, the inbox
answers with a bounce, a complaint, a mailto unsubscribe and a forgery, and the next edition
goes to exactly the readers nobody reported."""

from __future__ import annotations

import re
from urllib.parse import unquote

from sqlalchemy import select

from digest.config import Settings
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from digest.transports import transport_for
from tests.conftest import Received, SmtpSink
from tests.feedback.conftest import (
    BOUNCE_DOMAIN,
    InboundServer,
    arf,
    build_day,
    dsn,
    mailto_unsubscribe,
    make_site,
)


def _send(db: Database, settings: Settings, edition_id: int) -> None:
    send_until_done(
        db,
        EditionMailer(settings),
        edition_id,
        lambda: transport_for(settings),
    )


def _mailto(received: Received) -> tuple[str, str]:
    """(address, subject) of the List-Unsubscribe mailto, as a mail program would read it."""
    header = str(received.message["List-Unsubscribe"])
    match = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", header)
    assert match, header
    return match.group(1), unquote(match.group(2))


def _forge(address: str) -> str:
    """The same return path with the last character of its signature changed."""
    local, _, domain = address.rpartition("@")
    last = "a" if local[-1] != "a" else "b"
    return f"{local[:-1]}{last}@{domain}"


def test_reports_from_the_inbox_shape_the_next_edition(
    db: Database,
    bounce_settings: Settings,
    smtp_server: SmtpSink,
    inbound_server: InboundServer,
) -> None:
    """A DSN (reader 1), an ARF complaint (reader 2) and a mailto unsubscribe (reader 3) each
    take their reader out of the next edition; a DSN with a forged VERP signature (reader 4)
    changes nothing, and everyone else still gets it."""
    settings = bounce_settings.replace(smtp_url=smtp_server.url)
    make_site(db, readers=6, days=2)
    first = build_day(db, settings, 0)
    _send(db, settings, first)
    got = {r.recipients[0]: r for r in smtp_server.received}
    assert len(got) == 6
    for received in got.values():
        assert received.sender.startswith("bounces+")
        assert received.sender.endswith("@" + BOUNCE_DOMAIN)
    assert len({r.sender for r in got.values()}) == 6

    r1, r2, r3, r4 = (got[f"reader{i}@example.com"] for i in (1, 2, 3, 4))
    inbound_server.send(
        r1.sender,
        dsn(r1.sender, "reader1@example.com", message_id=str(r1.message["Message-ID"])[1:-1]),
    )
    # Feedback loops often write to one fixed address: the quoted Message-ID and the recipient
    # it names must agree with the ledger.
    inbound_server.send(
        f"bounces@{BOUNCE_DOMAIN}",
        arf(
            f"bounces@{BOUNCE_DOMAIN}",
            "reader2@example.com",
            str(r2.message["Message-ID"])[1:-1],
        ),
    )
    address, subject = _mailto(r3)
    inbound_server.send(address, mailto_unsubscribe(address, subject, "reader3@example.com"))
    forged = _forge(r4.sender)
    inbound_server.send(
        forged,
        dsn(forged, "reader4@example.com", message_id=str(r4.message["Message-ID"])[1:-1]),
    )

    with db.session() as session:
        status = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
        suppressed = dict(session.execute(select(Suppression.email, Suppression.reason)).all())
        bounced_row = session.scalars(
            select(Delivery.status)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == "reader1@example.com", Delivery.edition_id == first)
        ).one()
        reader3 = session.scalars(
            select(Subscription.status)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == "reader3@example.com")
        ).one()
    assert status["reader1@example.com"] == SubscriberStatus.BOUNCED
    assert bounced_row == DeliveryStatus.BOUNCED
    assert suppressed["reader1@example.com"].startswith("bounced: failed 5.1.1")
    assert suppressed["reader2@example.com"].startswith("complaint")
    assert status["reader2@example.com"] == SubscriberStatus.UNSUBSCRIBED
    assert reader3 == SubscriptionStatus.UNSUBSCRIBED
    assert "reader3@example.com" not in suppressed
    assert status["reader4@example.com"] == SubscriberStatus.ACTIVE
    assert set(suppressed) == {"reader1@example.com", "reader2@example.com"}

    before = len(smtp_server.received)
    second = build_day(db, settings, 1)
    _send(db, settings, second)
    assert sorted(r.recipients[0] for r in smtp_server.received[before:]) == [
        "reader0@example.com",
        "reader4@example.com",
        "reader5@example.com",
    ]
