"""The inbox end of the loop: mail to the bounce addresses and to the unsubscribe mailto.

``handle_inbound`` decides what one message to one recipient means and applies
it; ``InboundHandler`` is the aiosmtpd handler that feeds it over SMTP (the
bounce domain's MX points here), and ``poll_imap`` feeds it from a hosted
mailbox instead. Every path reads the message with ``digest.feedback.reader``
first, within fixed limits: a message over them is refused (logged) before any
structured parsing. Only signed things change anything: a VERP token (a delivery's, or
a notice's naming the subscriber a sign-up mail went to), the signed unsubscribe link in the
mailto subject, or (for a report sent to plain ``bounces@``) a quoted Message-ID carrying our
MAC (``digest.mail.msgid``).
Everything else is logged and dropped.
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
from typing import Any
from urllib.parse import unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from digest.audience import comparable_address
from digest.config import Settings
from digest.errors import ConfigError, InputError
from digest.feedback.dsn import parse_report
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.feedback.reader import (
    Limits,
    MessageRefused,
    Part,
    body_text,
    decode_words,
    read_message,
)
from digest.mail.msgid import quoted_message_id, signer_for
from digest.mail.tokens import UNSUBSCRIBE, TokenSigner
from digest.mail.verp import NoticeSigner, VerpSigner, is_notice_token, split_bounce_address
from digest.store.db import Database
from digest.store.models import Delivery, MailingList, Subscriber

log = logging.getLogger(__name__)

#: Recipients one inbound message may have: reports come to one address.
MAX_RECIPIENTS = 10
#: Characters of the mailto's text body searched for the link (a mail program may move it there).
_MAILTO_BODY_CHARS = 4000
_ADDRESS_SEPARATORS = re.compile(r"[\s<>,;\"]+")
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
    address = comparable_address(address)
    if settings.bounce_domain:
        token = split_bounce_address(address, settings.bounce_domain)
        if token is not None:
            return Recipient("bounce", token)
    with db.session() as session:
        if address in unsubscribe_addresses(session, settings):
            return Recipient("unsubscribe")
    return None


def limits_for(settings: Settings) -> Limits:
    """The reader's limits for this site: the message size is DIGEST_INBOUND_MAX_BYTES."""
    return Limits(message_bytes=settings.inbound_max_bytes)


def read_inbound(settings: Settings, data: bytes, source: str) -> Part | None:
    """``data`` read within the site's limits; None (and the reason logged) when over them."""
    try:
        return read_message(data, limits_for(settings))
    except MessageRefused as exc:
        log.warning("inbound %s: message refused unread: %s", source, exc.reason)
        return None


def handle_inbound(
    db: Database, settings: Settings, recipient: Recipient, data: bytes, source: str = "smtp"
) -> Verdict:
    """Apply what one message to one of our addresses says; never raises for bad input."""
    message = read_inbound(settings, data, source)
    if message is None:
        return Verdict.REFUSED
    return handle_message(db, settings, recipient, message, source)


def handle_message(
    db: Database, settings: Settings, recipient: Recipient, message: Part, source: str = "smtp"
) -> Verdict:
    """``handle_inbound`` for a message already read by ``read_inbound``."""
    try:
        if recipient.kind == "unsubscribe":
            return _unsubscribe(db, settings, message, source)
        return _bounce(db, settings, recipient.token, message, source)
    except MessageRefused as exc:  # a block inside the report over the limits
        log.warning("inbound %s: message refused: %s", source, exc.reason)
        return Verdict.REFUSED


def _apply(db: Database, settings: Settings, event: FeedbackEvent) -> Verdict:
    with db.session() as session:
        changed = apply_event(session, event, soft_bounce_limit=settings.soft_bounce_limit)
    return Verdict.APPLIED if changed else Verdict.ALREADY


def _bounce(db: Database, settings: Settings, token: str, message: Part, source: str) -> Verdict:
    if token and is_notice_token(token):
        return _notice_bounce(db, settings, token, message, source)
    delivery_id: int | None = None
    if token:
        try:
            delivery_id = VerpSigner(settings.secret).verify(token)
        except InputError as exc:
            # Said once, without the body: a forger learns nothing, the operator sees it.
            log.warning("inbound %s: bounce token %r refused (%s)", source, token[:80], exc)
            return Verdict.REFUSED
    report = parse_report(message, limits_for(settings))
    if report is None:
        log.info("inbound %s: not a delivery or feedback report; dropped", source)
        return Verdict.IGNORED
    if delivery_id is None:
        delivery_id = _signed_delivery(db, settings, report.message_id, source)
        if delivery_id is None:
            return Verdict.REFUSED
    event = FeedbackEvent(report.kind, delivery_id=delivery_id, detail=report.detail, source=source)
    return _apply(db, settings, event)


def _notice_bounce(
    db: Database, settings: Settings, token: str, message: Part, source: str
) -> Verdict:
    """A report about a notice (a sign-up confirmation): its return path names the subscriber
    it went to. The address-wide rules apply (a hard bounce or a complaint suppresses it); a
    soft bounce counts runs of editions, and a notice is none, so it changes nothing."""
    try:
        subscriber_id = NoticeSigner(settings.secret).verify(token)
    except InputError as exc:
        log.warning("inbound %s: notice bounce token %r refused (%s)", source, token[:80], exc)
        return Verdict.REFUSED
    report = parse_report(message, limits_for(settings))
    if report is None:
        log.info("inbound %s: not a delivery or feedback report; dropped", source)
        return Verdict.IGNORED
    event = FeedbackEvent(
        report.kind, subscriber_id=subscriber_id, detail=report.detail, source=source
    )
    return _apply(db, settings, event)


def _signed_delivery(db: Database, settings: Settings, quoted: str, source: str) -> int | None:
    """The delivery a report without a VERP token is about: the one its quoted Message-ID names,
    if that id carries our MAC and the delivery is of that edition. The MAC is the proof, as the
    VERP token's is; the address a report names is not (feedback loops often redact it, and
    anyone can write any address)."""
    ids = signer_for(settings.secret).verify(quoted)
    if ids is None:
        claimed = quoted_message_id(quoted)
        why = (
            "quotes no Digest Message-ID"
            if claimed is None
            else "quotes an unsigned (old-format) Message-ID"
            if not claimed[2]
            else "quotes a Message-ID whose MAC does not match"
        )
        log.warning("inbound %s: report to the plain bounce address %s; ignored", source, why)
        return None
    edition_id, delivery_id = ids
    with db.session() as session:
        edition_of_row = session.scalar(
            select(Delivery.edition_id).where(Delivery.id == delivery_id)
        )
    if edition_of_row != edition_id:
        log.warning(
            "inbound %s: signed Message-ID names delivery %s of edition %s, not in the ledger",
            source,
            delivery_id,
            edition_id,
        )
        return None
    return delivery_id


def _unsubscribe(db: Database, settings: Settings, message: Part, source: str) -> Verdict:
    token = _mailto_token(message, limits_for(settings))
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


def _mailto_token(message: Part, limits: Limits) -> str | None:
    """The signed token of the https link the mailto put in the Subject (or, if a mail program
    moved it, the first lines of the text body)."""
    texts = [unquote(decode_words(message.headers.get("Subject")))]
    body = _text_body(message)
    if body is not None:
        # Four bytes a character at most: enough encoded bytes for the characters searched.
        texts.append(body_text(body, 4 * _MAILTO_BODY_CHARS)[:_MAILTO_BODY_CHARS])
    for text in texts:
        match = _UNSUBSCRIBE_TOKEN.search(text)
        if match:
            return match.group(1)
    return None


def _text_body(part: Part) -> Part | None:
    """The first text/plain part that is not an attachment, looking into multiparts but not
    into enclosed messages (a quoted message's text is not what the sender wrote)."""
    if part.headers.get("Content-Disposition").lower().startswith("attachment"):
        return None
    if part.content_type == "text/plain":
        return part
    if part.content_type.startswith("multipart/"):
        for child in part.children:
            found = _text_body(child)
            if found is not None:
                return found
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
            await loop.run_in_executor(None, self.process, list(envelope.rcpt_tos), bytes(data))
        except Exception:  # see the class docstring
            log.exception("inbound: cannot record a message")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 OK"

    def process(self, addresses: list[str], data: bytes) -> list[Verdict]:
        """Read the message once, within the limits, and apply it for each recipient."""
        message = read_inbound(self.settings, data, "smtp")
        verdicts = []
        for address in addresses:
            recipient = classify_recipient(self.db, self.settings, address)
            if recipient is None:
                verdicts.append(Verdict.IGNORED)
            elif message is None:
                verdicts.append(Verdict.REFUSED)
            else:
                verdicts.append(handle_message(self.db, self.settings, recipient, message, "smtp"))
        return verdicts


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
#: Unseen messages handled by one poll; the rest wait for the next.
IMAP_MESSAGES_PER_POLL = 1000


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


def _imap_recipient(db: Database, settings: Settings, message: Part) -> Recipient | None:
    """Which of our addresses a mailbox message was sent to: the envelope is gone, so the
    delivery headers the mailbox host added are read, then To; at most MAX_RECIPIENTS
    addresses are looked up."""
    looked_up = 0
    for name in _RECIPIENT_HEADERS:
        for value in message.headers.get_all(name):
            # Split, not a regex search for "x@y": that backtracks quadratically on a long run
            # of characters without an "@".
            for word in _ADDRESS_SEPARATORS.split(value):
                if "@" not in word:
                    continue
                if looked_up >= MAX_RECIPIENTS:
                    return None
                looked_up += 1
                recipient = classify_recipient(db, settings, word)
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
        uids = found[0].split()[:IMAP_MESSAGES_PER_POLL] if found and found[0] else []
        for uid in uids:
            # One byte past the limit at most: a huge message is known to be too big without
            # being downloaded whole.
            _, fetched = conn.uid(
                "FETCH", uid, f"(BODY.PEEK[]<0.{settings.inbound_max_bytes + 1}>)"
            )
            data = next(
                (p[1] for p in fetched if isinstance(p, tuple) and isinstance(p[1], bytes)), b""
            )
            counts[handle_imap_message(db, settings, data)] += 1
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen \\Deleted)")
        conn.expunge()
    except imaplib.IMAP4.error as exc:
        raise ConfigError(f"IMAP {config.host}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return counts


def handle_imap_message(db: Database, settings: Settings, data: bytes) -> Verdict:
    """One message from the mailbox: read within the limits, its recipient found in its
    delivery headers, then applied as ``handle_inbound`` applies SMTP mail."""
    message = read_inbound(settings, data, "imap")
    if message is None:
        return Verdict.REFUSED
    recipient = _imap_recipient(db, settings, message)
    if recipient is None:
        return Verdict.IGNORED
    return handle_message(db, settings, recipient, message, "imap")


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
