"""The inbound server and the report readers: VERP tokens, DSN and ARF parsing, idempotence,
soft-bounce runs, and mail that is garbage or not for us."""

from __future__ import annotations

import base64
import quopri
import random
import smtplib
from typing import Any

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.errors import InputError
from digest.feedback.dsn import parse_report
from digest.feedback.events import EventKind
from digest.feedback.inbound import Recipient, Verdict, handle_inbound
from digest.mail.tokens import UNSUBSCRIBE, TokenSigner
from digest.mail.verp import VerpSigner, return_path, split_bounce_address
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from digest.transports import Envelope, Outcome, RecordingTransport, SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink
from tests.feedback.conftest import (
    BOUNCE_DOMAIN,
    InboundServer,
    arf,
    build_day,
    delivery_of,
    dsn,
    make_site,
)


def _snapshot(db: Database) -> dict[str, Any]:
    """Every row the feedback code may change, as plain values."""
    with db.session() as session:
        return {
            "subscribers": sorted(session.execute(select(Subscriber.email, Subscriber.status))),
            "subscriptions": sorted(session.execute(select(Subscription.id, Subscription.status))),
            "deliveries": sorted(
                session.execute(select(Delivery.id, Delivery.status, Delivery.last_error))
            ),
            "suppressions": sorted(
                session.execute(
                    select(Suppression.email, Suppression.reason, Suppression.created_at)
                )
            ),
            "soft": sorted(
                session.execute(
                    select(SoftBounce.subscriber_id, SoftBounce.streak, SoftBounce.last_edition_id)
                )
            ),
        }


def _noise(size: int) -> bytes:
    """Random bytes in lines short enough for SMTP (a longer line is the server's 500)."""
    raw = random.Random(14).randbytes(size).replace(b"\r", b"").replace(b"\n", b"")
    return b"\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76)) + b"\r\n"


def _sent_site(db: Database, settings: Settings, readers: int, days: int) -> list[int]:
    """A site with ``days`` editions, each sent (recorded) to every reader still mailable."""
    make_site(db, readers=readers, days=days)
    editions = []
    for day in range(days):
        edition_id = build_day(db, settings, day)
        send_until_done(db, EditionMailer(settings), edition_id, RecordingTransport)
        editions.append(edition_id)
    return editions


def _bounce_to(settings: Settings, delivery_id: int) -> Recipient:
    token = split_bounce_address(return_path(settings, delivery_id), BOUNCE_DOMAIN)
    assert token
    return Recipient("bounce", token)


# -- VERP ----------------------------------------------------------------------------------


def test_return_path_names_the_delivery_and_cannot_be_forged(bounce_settings: Settings) -> None:
    """With a bounce domain the return path is bounces+TOKEN@domain, TOKEN (case-folded too)
    gives the delivery id back, a changed or foreign token is refused, and without a bounce
    domain the From address is the return path as before."""
    address = return_path(bounce_settings, 123456789)
    local, _, domain = address.partition("@")
    assert domain == BOUNCE_DOMAIN and local.startswith("bounces+") and len(local) <= 64
    token = local.removeprefix("bounces+")
    signer = VerpSigner(bounce_settings.secret)
    assert signer.verify(token) == signer.verify(token.upper()) == 123456789
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), "1-" + token[2:], "", "x"):
        with pytest.raises(InputError):
            signer.verify(bad)
    with pytest.raises(InputError):
        VerpSigner("another-secret").verify(token)
    plain = bounce_settings.replace(bounce_domain=None)
    assert return_path(plain, 5) == plain.from_address
    assert return_path(plain, 5, "news@list.example") == "news@list.example"


def test_return_path_is_the_mail_from_on_the_wire(
    bounce_settings: Settings, smtp_server: SmtpSink
) -> None:
    """A message sent through the SMTP transport with return_path as envelope sender reaches
    the server with exactly that MAIL FROM."""
    sender = return_path(bounce_settings, 42)
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(
            Envelope(sender, "reader@example.com"), b"Subject: x\r\n\r\nbody\r\n"
        )
    assert result.outcome == Outcome.SENT
    assert smtp_server.received[0].sender == sender


# -- reading reports ------------------------------------------------------------------------


def test_reports_are_read_for_kind_recipient_and_message() -> None:
    """A 5.x.x failure is hard, a delay or 4.x.x is soft, an abuse report is a complaint (each
    with the Message-ID it quotes, not yet believed), a not-spam report and a plain message
    are not reports at all."""
    hard = parse_report(dsn("b@x", "Reader1@Example.com", message_id="digest.e3.d7@g.example"))
    assert hard is not None
    assert (hard.kind, hard.recipient, hard.message_id) == (
        EventKind.HARD_BOUNCE,
        "reader1@example.com",
        "<digest.e3.d7@g.example>",
    )
    assert "5.1.1" in hard.detail
    for action, status in (("delayed", "4.2.2"), ("failed", "4.4.7")):
        soft = parse_report(dsn("b@x", "r@example.com", status=status, action=action))
        assert soft is not None and soft.kind == EventKind.SOFT_BOUNCE
    assert parse_report(dsn("b@x", "r@example.com", status="2.0.0", action="delivered")) is None
    complaint = parse_report(arf("b@x", "r2@example.com", "digest.e1.d9@g.example"))
    assert complaint is not None
    assert (complaint.kind, complaint.recipient, complaint.message_id) == (
        EventKind.COMPLAINT,
        "r2@example.com",
        "<digest.e1.d9@g.example>",
    )
    assert parse_report(arf("b@x", "r2@example.com", "m@x", feedback_type="not-spam")) is None
    assert parse_report(b"Subject: Out of office\r\n\r\nI am away.\r\n") is None


# -- applying them ----------------------------------------------------------------------


def test_the_same_report_twice_changes_nothing_more(
    db: Database, bounce_settings: Settings, inbound_server: InboundServer
) -> None:
    """A hard bounce delivered twice over SMTP, and a complaint applied twice, leave the
    database exactly as the first one left it, and say so."""
    editions = _sent_site(db, bounce_settings, readers=3, days=1)
    did = delivery_of(db, editions[0], "reader0@example.com")
    address = return_path(bounce_settings, did)
    report = dsn(address, "reader0@example.com", message_id=f"digest.e{editions[0]}.d{did}@x")
    inbound_server.send(address, report)
    after_first = _snapshot(db)
    inbound_server.send(address, report)
    assert _snapshot(db) == after_first
    assert handle_inbound(db, bounce_settings, _bounce_to(bounce_settings, did), report) == (
        Verdict.ALREADY
    )

    other = delivery_of(db, editions[0], "reader1@example.com")
    complaint = arf("x", "reader1@example.com", f"digest.e{editions[0]}.d{other}@x")
    recipient = _bounce_to(bounce_settings, other)
    assert handle_inbound(db, bounce_settings, recipient, complaint) == Verdict.APPLIED
    after_complaint = _snapshot(db)
    assert handle_inbound(db, bounce_settings, recipient, complaint) == Verdict.ALREADY
    assert _snapshot(db) == after_complaint


def test_soft_bounces_in_editions_running_suppress(db: Database, bounce_settings: Settings) -> None:
    """Three editions soft-bouncing in a row suppress an address (a repeated report counts
    once); an edition delivered in between starts the run again."""
    editions = _sent_site(db, bounce_settings, readers=2, days=4)

    def soft(email: str, edition_id: int) -> Verdict:
        did = delivery_of(db, edition_id, email)
        report = dsn("x", email, status="4.2.2", action="delayed")
        return handle_inbound(db, bounce_settings, _bounce_to(bounce_settings, did), report)

    def suppressed(email: str) -> bool:
        with db.session() as session:
            return (
                session.scalar(select(Suppression.id).where(Suppression.email == email)) is not None
            )

    assert soft("reader0@example.com", editions[0]) == Verdict.APPLIED
    assert soft("reader0@example.com", editions[1]) == Verdict.APPLIED
    assert soft("reader0@example.com", editions[1]) == Verdict.ALREADY
    assert not suppressed("reader0@example.com")
    assert soft("reader0@example.com", editions[2]) == Verdict.APPLIED
    assert suppressed("reader0@example.com")
    with db.session() as session:
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "reader0@example.com")
        )
    assert status == SubscriberStatus.BOUNCED

    # reader1: editions 0 and 1 soft-bounce, 2 was delivered without complaint, 3 soft-bounces.
    for index in (0, 1, 3):
        soft("reader1@example.com", editions[index])
    assert not suppressed("reader1@example.com")
    with db.session() as session:
        streak = session.scalar(
            select(SoftBounce.streak)
            .join(Subscriber, Subscriber.id == SoftBounce.subscriber_id)
            .where(Subscriber.email == "reader1@example.com")
        )
    assert streak == 1


def test_garbage_and_strangers_change_nothing_and_the_server_stays_up(
    db: Database, bounce_settings: Settings, inbound_server: InboundServer
) -> None:
    """Mail for other addresses is refused with 550; junk bytes, broken reports, an auto-reply,
    a report naming someone else's delivery and an oversized message are dropped without a
    change; afterwards a genuine bounce still works."""
    editions = _sent_site(db, bounce_settings, readers=2, days=1)
    did = delivery_of(db, editions[0], "reader0@example.com")
    genuine = return_path(bounce_settings, did)
    reader1 = delivery_of(db, editions[0], "reader1@example.com")
    before = _snapshot(db)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        inbound_server.send("postmaster@gazette.example", b"Subject: hi\r\n\r\nhello\r\n")
    assert refused.value.recipients["postmaster@gazette.example"][0] == 550

    plain = f"bounces@{BOUNCE_DOMAIN}"
    junk = [
        (f"bounces+not-a-token@{BOUNCE_DOMAIN}", dsn("x", "reader0@example.com")),
        (genuine, _noise(3000)),
        (genuine, b"Subject: Automatic reply\r\n\r\nI am on holiday.\r\n"),
        (
            genuine,
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=Q\r\n\r\n"
            b"--Q\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n",
        ),
        (genuine, b"Content-Type: multipart/report; report-type=feedback-report\r\n\r\n--\r\n"),
        (genuine, b"=?utf-8?q?=0A=00?=: \x00\x01\r\nFrom: <\r\n\r\n"),
        # No token: the quoted Message-ID names reader1's delivery, the report reader0.
        (
            plain,
            dsn(
                plain,
                "reader0@example.com",
                message_id=f"digest.e{editions[0]}.d{reader1}@x",
            ),
        ),
        (
            "unsubscribe@gazette.example",
            b"Subject: unsubscribe https://x/unsubscribe/1.2.3.4\r\n\r\n",
        ),
        ("unsubscribe@gazette.example", b"Subject: please take me off\r\n\r\n"),
    ]
    for address, data in junk:
        assert inbound_server.send(address, data) == {}
    with pytest.raises(smtplib.SMTPException) as too_big:
        inbound_server.send(genuine, b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 30000)
    assert "552" in str(too_big.value)
    assert _snapshot(db) == before

    inbound_server.send(genuine, dsn(genuine, "reader0@example.com"))
    with db.session() as session:
        assert session.scalars(select(Suppression.email)).all() == ["reader0@example.com"]


def test_a_mailto_unsubscribe_is_read_however_the_mail_program_wrote_it(
    db: Database, bounce_settings: Settings
) -> None:
    """The signed link is found in a Subject a mail program encoded (RFC 2047, folded), in a
    quoted-printable text body, and in the base64 text part of a multipart/alternative; each
    unsubscribes its reader, and the same link in an attachment or a 9 KB Subject does not."""
    list_id = make_site(db, readers=5)
    with db.session() as session:
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
    signer = TokenSigner(bounce_settings.secret)

    def link(i: int) -> str:
        token = signer.sign(UNSUBSCRIBE, ids[f"reader{i}@example.com"], list_id)
        return f"https://news.example/unsubscribe/{token}"

    def words(text: str) -> str:
        encoded = base64.b64encode(text.encode()).decode()
        return "\r\n ".join(
            f"=?utf-8?b?{encoded[i : i + 40]}?=" for i in range(0, len(encoded), 40)
        )

    head = "From: r@example.com\r\nTo: unsubscribe@gazette.example\r\n"
    qp = quopri.encodestring(f"Please unsubscribe me: {link(1)}\r\n".encode()).decode()
    b64 = base64.encodebytes(f"unsubscribe {link(2)}".encode()).decode()
    attached = base64.encodebytes(link(3).encode()).decode()
    mails = {
        0: f"{head}Subject: {words('unsubscribe ' + link(0))}\r\n\r\n",
        1: f"{head}Subject: hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}",
        2: f"{head}Content-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\n"
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{b64}\r\n--A--\r\n",
        3: f"{head}Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\n"
        "Content-Type: text/plain\r\nContent-Disposition: attachment\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{attached}\r\n--M--\r\n",
        4: f"{head}Subject: unsubscribe {link(4)}{' padding' * 1200}\r\n\r\n",
    }
    unsubscribe = Recipient("unsubscribe")
    verdicts = {
        i: handle_inbound(db, bounce_settings, unsubscribe, mail.encode())
        for i, mail in mails.items()
    }
    assert verdicts == {
        0: Verdict.APPLIED,
        1: Verdict.APPLIED,
        2: Verdict.APPLIED,
        3: Verdict.IGNORED,
        4: Verdict.REFUSED,
    }
    with db.session() as session:
        ended = set(
            session.scalars(
                select(Subscriber.email)
                .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .where(Subscription.status == SubscriptionStatus.UNSUBSCRIBED)
            )
        )
    assert ended == {"reader0@example.com", "reader1@example.com", "reader2@example.com"}
