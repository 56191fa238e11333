"""The inbox end of the loop: mail to the bounce addresses and to the unsubscribe mailto.

``handle_inbound`` decides what one message to one recipient means and applies
it; ``InboundHandler`` is the aiosmtpd handler that feeds it over SMTP (the
bounce domain's MX points here), and ``poll_imap`` feeds it from a hosted
mailbox instead. Only signed things change anything: a VERP token, the
signed unsubscribe link in the mailto subject, or (for a report sent to plain
``bounces@``) a quoted Digest Message-ID whose delivery went to the very
address the report names. Everything else is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import imaplib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from digest.config import Settings
from digest.errors import ConfigError, InputError
from digest.feedback.dsn import parse_report
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.mail.tokens import UNSUBSCRIBE, TokenSigner
from digest.mail.verp import VerpSigner, split_bounce_address
from digest.store.db import Database
from digest.store.models import Delivery, MailingList, Subscriber

log = logging.getLogger(__name__)

#: Recipients one inbound message may have: reports come to one address.
MAX_RECIPIENTS = 10
_UNSUBSCRIBE_TOKEN = re.compile(r"/unsubscribe/([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)")


class Verdict(enum.StrEnum):
    APPLIED = "applied"  # it changed something
    ALREADY = "already"  # genuine, but already recorded
    IGNORED = "ignored"  # not a report, a test copy, or names nobody
    REFUSED = "refused"  # forged or unverifiable: nothing changed


@dataclass(frozen=True)
class Recipient:
    """What an inbound address is: a bounce address (``token`` "" when plain ``bounces@``) or
    the unsubscribe mailto."""

    kind: str  # "bounce" | "unsubscribe"
    token: str = ""


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def unsubscribe_addresses(session: Any, settings: Settings) -> set[str]:
    """Every address a digest's List-Unsubscribe mailto can name (see ``EditionMailer``)."""
    if settings.unsubscribe_mailto:
        return {settings.unsubscribe_mailto.lower()}
    froms = {settings.from_address}
    froms |= {a for a in session.scalars(select(MailingList.from_address)) if a}
    return {f"unsubscribe@{_domain(a) or 'localhost'}" for a in froms}


def classify_recipient(db: Database, settings: Settings, address: str) -> Recipient | None:
    """What mail to ``address`` is for; None: not ours (refused at RCPT)."""
    address = address.strip().strip("<>").lower()
    if settings.bounce_domain:
        token = split_bounce_address(address, settings.bounce_domain)
        if token is not None:
            return Recipient("bounce", token)
    with db.session() as session:
        if address in unsubscribe_addresses(session, settings):
            return Recipient("unsubscribe")
    return None


def handle_inbound(
    db: Database, settings: Settings, recipient: Recipient, data: bytes, source: str = "smtp"
) -> Verdict:
    """Apply what one message to one of our addresses says; never raises for bad input."""
    if recipient.kind == "unsubscribe":
        return _unsubscribe(db, settings, data, source)
    return _bounce(db, settings, recipient.token, data, source)


def _apply(db: Database, settings: Settings, event: FeedbackEvent) -> Verdict:
    with db.session() as session:
        changed = apply_event(session, event, soft_bounce_limit=settings.soft_bounce_limit)
    return Verdict.APPLIED if changed else Verdict.ALREADY


def _bounce(db: Database, settings: Settings, token: str, data: bytes, source: str) -> Verdict:
    delivery_id: int | None = None
    if token:
        try:
            delivery_id = VerpSigner(settings.secret).verify(token)
        except InputError as exc:
            # Said once, without the body: a forger learns nothing, the operator sees it.
            log.warning("inbound %s: bounce token %r refused (%s)", source, token[:80], exc)
            return Verdict.REFUSED
    report = parse_report(data)
    if report is None:
        log.info("inbound %s: not a delivery or feedback report; dropped", source)
        return Verdict.IGNORED
    if delivery_id is None:
        delivery_id = _vouched_delivery(db, report.ids, report.recipient)
        if delivery_id is None:
            log.warning(
                "inbound %s: %s for %r names no delivery of ours to that address; dropped",
                source,
                report.kind,
                report.recipient[:320],
            )
            return Verdict.REFUSED
    event = FeedbackEvent(report.kind, delivery_id=delivery_id, detail=report.detail, source=source)
    return _apply(db, settings, event)


def _vouched_delivery(db: Database, ids: tuple[int, int] | None, recipient: str) -> int | None:
    """The delivery a report without a token is about, if its quoted Message-ID names a
    delivery of that edition that went to the very address the report names.

    A forger would need both the address and its delivery id: not a signature, but enough
    that a report cannot be aimed at an address by naming it alone.
    """
    if ids is None or not recipient:
        return None
    edition_id, delivery_id = ids
    with db.session() as session:
        row = session.execute(
            select(Delivery.edition_id, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id == delivery_id)
        ).first()
    if row is None or row[0] != edition_id or row[1].lower() != recipient.lower():
        return None
    return delivery_id


def _unsubscribe(db: Database, settings: Settings, data: bytes, source: str) -> Verdict:
    token = _mailto_token(data)
    if token is None:
        log.info("inbound %s: unsubscribe mail without a link token; dropped", source)
        return Verdict.IGNORED
    try:
        ids = TokenSigner(settings.secret).verify(UNSUBSCRIBE, token)
    except InputError as exc:
        log.warning("inbound %s: unsubscribe token refused (%s)", source, exc)
        return Verdict.REFUSED
    if len(ids) != 2 or ids[0] == 0:  # 0: a test copy's link
        return Verdict.IGNORED
    with db.session() as session:
        email = session.scalar(select(Subscriber.email).where(Subscriber.id == ids[0]))
    if email is None:
        return Verdict.IGNORED
    return _apply(
        db,
        settings,
        FeedbackEvent(EventKind.UNSUBSCRIBE, email=email, list_id=ids[1], source=source),
    )


def _mailto_token(data: bytes) -> str | None:
    """The signed token of the https link the mailto put in the Subject (or, if a mail program
    moved it, the first lines of the text body)."""
    try:
        message = message_from_bytes(data, policy=policy.default)
        texts = [unquote(str(message.get("Subject", "")))]
        if isinstance(message, EmailMessage):
            body = message.get_body(("plain",))
            if body is not None and isinstance(body, EmailMessage):
                texts.append(str(body.get_content())[:4000])
    except Exception as exc:  # hostile input: unreadable means no token
        log.info("unreadable unsubscribe mail: %s", type(exc).__name__)
        return None
    for text in texts:
        match = _UNSUBSCRIBE_TOKEN.search(text)
        if match:
            return match.group(1)
    return None


# -- SMTP ------------------------------------------------------------------------------------


class InboundHandler:
    """aiosmtpd handler: 550 for addresses that are not ours, each message applied per
    recipient in a thread (the database calls block). A database failure answers 451 so the
    sending system tries again; bad content is accepted and dropped, so nobody retries it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        loop = asyncio.get_running_loop()
        try:
            recipient = await loop.run_in_executor(
                None, classify_recipient, self.db, self.settings, address
            )
        except Exception:  # a database outage must not kill the server
            log.exception("inbound: cannot check recipient")
            return "451 4.3.0 Temporary failure, try again later"
        if recipient is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            for address in envelope.rcpt_tos:
                await loop.run_in_executor(None, self.process, address, bytes(data))
        except Exception:  # see the class docstring
            log.exception("inbound: cannot record a message")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 OK"

    def process(self, address: str, data: bytes) -> Verdict:
        recipient = classify_recipient(self.db, self.settings, address)
        if recipient is None:
            return Verdict.IGNORED
        return handle_inbound(self.db, self.settings, recipient, data, "smtp")


def inbound_controller(db: Database, settings: Settings, host: str, port: int) -> Controller:
    """The inbound SMTP server, not yet started (``.start()`` / ``.stop()``)."""
    return Controller(
        InboundHandler(db, settings),
        hostname=host,
        port=port,
        data_size_limit=settings.inbound_max_bytes,
        ident="Digest inbound",
    )


# -- IMAP ------------------------------------------------------------------------------------

_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    username: str
    password: str
    mailbox: str = "INBOX"
    ssl: bool = True

    @classmethod
    def from_url(cls, url: str) -> ImapConfig:
        """``imaps://user:pass@host:993/INBOX`` or ``imap://...`` (plain, for a local server)."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ConfigError("--imap must look like imaps://user:password@host/INBOX")
        secure = parts.scheme == "imaps"
        try:
            port = parts.port or (993 if secure else 143)
        except ValueError as exc:
            raise ConfigError(f"--imap: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
            ssl=secure,
        )


def _imap_recipient(db: Database, settings: Settings, data: bytes) -> Recipient | None:
    """Which of our addresses a mailbox message was sent to: the envelope is gone, so the
    delivery headers the mailbox host added are read, then To."""
    try:
        message = message_from_bytes(data, policy=policy.default)
        candidates = [str(v) for h in _RECIPIENT_HEADERS for v in message.get_all(h, [])]
    except Exception:  # hostile input
        return None
    for value in candidates:
        for address in re.findall(r"[^\s<>,;\"]+@[^\s<>,;\"]+", value)[:MAX_RECIPIENTS]:
            recipient = classify_recipient(db, settings, address)
            if recipient is not None:
                return recipient
    return None


def poll_imap(
    db: Database,
    settings: Settings,
    config: ImapConfig,
    *,
    connect: Callable[[ImapConfig], imaplib.IMAP4] | None = None,
) -> dict[Verdict, int]:
    """Read every unseen message once, apply it, and mark it seen (deleted when applied or
    dropped); a message whose recording failed stays unseen for the next poll."""
    counts = dict.fromkeys(Verdict, 0)
    opener = connect or _imap_connect
    try:
        conn = opener(config)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ConfigError(f"cannot log in to IMAP {config.host}:{config.port}: {exc}") from exc
    try:
        status, _ = conn.select(_quote_mailbox(config.mailbox))
        if status != "OK":
            raise ConfigError(f"IMAP mailbox {config.mailbox!r} cannot be opened")
        _, found = conn.uid("SEARCH", "UNSEEN")
        uids = found[0].split() if found and found[0] else []
        for uid in uids:
            _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            data = next(
                (p[1] for p in fetched if isinstance(p, tuple) and isinstance(p[1], bytes)), b""
            )
            if len(data) > settings.inbound_max_bytes:
                verdict = Verdict.IGNORED
            else:
                recipient = _imap_recipient(db, settings, data)
                verdict = (
                    Verdict.IGNORED
                    if recipient is None
                    else handle_inbound(db, settings, recipient, data, "imap")
                )
            counts[verdict] += 1
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen \\Deleted)")
        conn.expunge()
    except imaplib.IMAP4.error as exc:
        raise ConfigError(f"IMAP {config.host}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return counts


def _quote_mailbox(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_connect(config: ImapConfig) -> imaplib.IMAP4:
    conn: imaplib.IMAP4
    if config.ssl:
        conn = imaplib.IMAP4_SSL(config.host, config.port, timeout=30)
    else:
        conn = imaplib.IMAP4(config.host, config.port, timeout=30)
    conn.login(config.username, config.password)
    return conn


def poll_imap_forever(
    db: Database, settings: Settings, config: ImapConfig, interval: float = 60.0
) -> None:
    """Poll every ``interval`` seconds; a failed poll is logged and tried again next time."""
    while True:
        try:
            counts = poll_imap(db, settings, config)
            if any(counts.values()):
                log.info("imap poll: %s", {k.value: v for k, v in counts.items() if v})
        except ConfigError as exc:
            log.warning("imap poll failed: %s", exc)
        except Exception:  # a database outage: the messages stay unseen, retry
            log.exception("imap poll failed")
        time.sleep(interval)
