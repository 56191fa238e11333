"""Fixtures for the inbox loop: settings with a bounce domain, the inbound SMTP server on a free
port, a site whose editions can be built day after day, and builders of the reports mail
systems send back."""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.edition.build import build_edition
from digest.feedback.inbound import inbound_controller
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, Delivery, MailingList, Subscriber

BOUNCE_DOMAIN = "bounces.gazette.example"
FIRST_DAY = dt.date(2026, 11, 24)


@pytest.fixture
def bounce_settings(settings: Settings) -> Settings:
    return settings.replace(bounce_domain=BOUNCE_DOMAIN, soft_bounce_limit=3)


@dataclass
class InboundServer:
    host: str
    port: int

    def send(self, recipient: str, data: bytes, sender: str = "") -> dict[str, tuple[int, bytes]]:
        """Deliver ``data`` over SMTP, as a remote mail system would (null sender by default)."""
        with smtplib.SMTP(self.host, self.port, timeout=60) as conn:
            return conn.sendmail(sender, [recipient], data)


@pytest.fixture
def inbound_server(db: Database, bounce_settings: Settings) -> Iterator[InboundServer]:
    """`digest inbound`'s SMTP server on a free loopback port, on the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = inbound_controller(db, bounce_settings, "127.0.0.1", port)
    controller.start()
    try:
        yield InboundServer("127.0.0.1", port)
    finally:
        controller.stop()


def make_site(db: Database, readers: int, days: int = 1) -> int:
    """A list 'daily' with one section, a story on each of ``days`` days from FIRST_DAY, and
    readers reader0..N-1@example.com; returns the list id."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        for i in range(days):
            session.add(
                Article(
                    url=f"https://n.example/{i}",
                    guid=f"g{i}",
                    section_id=section.id,
                    headline=f"Story of day {i}",
                    teaser="A teaser.",
                    published_at=dt.datetime.combine(FIRST_DAY + dt.timedelta(days=i), dt.time(9)),
                )
            )
        for i in range(readers):
            catalog.subscribe(session, mailing_list, f"reader{i}@example.com", f"Reader {i}")
        session.flush()
        return mailing_list.id


def build_day(db: Database, settings: Settings, day_index: int) -> int:
    """Build the edition of FIRST_DAY + day_index; returns its id."""
    with db.session() as session:
        mailing_list = session.scalars(select(MailingList)).one()
        edition, _ = build_edition(
            session, settings, mailing_list, FIRST_DAY + dt.timedelta(days=day_index)
        )
        return edition.id


def delivery_of(db: Database, edition_id: int, email: str) -> int:
    with db.session() as session:
        return session.scalars(
            select(Delivery.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.edition_id == edition_id, Subscriber.email == email)
        ).one()


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def dsn(
    to: str,
    final_recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    message_id: str = "",
) -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes one."""
    return _crlf(
        f"""From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.{final_recipient}.{status}@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Tue, 24 Nov 2026 07:00:01 +0000

Final-Recipient: rfc822; {final_recipient}
Original-Recipient: rfc822;{final_recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{final_recipient}>: Recipient address rejected

--BOUNDARY
Content-Type: text/rfc822-headers

From: The Test Gazette <digest@gazette.example>
To: {final_recipient}
Subject: The Test Gazette
Message-ID: <{message_id}>

--BOUNDARY--
"""
    )


def arf(to: str, original_rcpt: str, message_id: str, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 feedback report (a reader pressed "this is spam")."""
    return _crlf(
        f"""From: feedbackloop@mailbox.example
To: {to}
Subject: FW: The Test Gazette
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="ARF"

--ARF
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARF
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <digest@gazette.example>
Original-Rcpt-To: <{original_rcpt}>
Source-IP: 192.0.2.1

--ARF
Content-Type: message/rfc822
Content-Disposition: inline

From: The Test Gazette <digest@gazette.example>
To: Reader <{original_rcpt}>
Subject: The Test Gazette
Message-ID: <{message_id}>
Date: Tue, 24 Nov 2026 07:00:01 +0000

The digest.

--ARF--
"""
    )


def mailto_unsubscribe(to: str, subject: str, sender: str) -> bytes:
    """What a mail program sends when a reader clicks the List-Unsubscribe mailto."""
    return _crlf(
        f"""From: {sender}
To: {to}
Subject: {subject}
Message-ID: <unsub.{sender}@mailbox.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Please unsubscribe me.
"""
    )
