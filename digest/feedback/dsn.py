"""Reading the reports mail systems send back: RFC 3464 delivery status notifications and
RFC 5965 (ARF) feedback reports, with the stdlib ``email`` package.

Everything here reads untrusted bytes. Nothing is acted on: the result is a
``Report`` saying what the message claims, and the caller decides whether to
believe it (a valid VERP token, or a Message-ID that matches the named address).
Any message that is not one of these reports gives ``None``, never an exception.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses

from digest.feedback.events import EventKind

log = logging.getLogger(__name__)

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_MESSAGE_ID = re.compile(r"<?digest\.e(\d{1,18})\.d(\d{1,18})@([^\s<>@]+)>?", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"]+@[A-Za-z0-9.-]+$")
#: Feedback types (RFC 5965 and its registry) that mean "the reader does not want this".
_COMPLAINTS = {"abuse", "fraud", "virus", "other"}  # not "not-spam" nor "auth-failure"


@dataclass(frozen=True)
class Report:
    """What one report claims: the kind of news, about which address and which message."""

    kind: EventKind
    #: The failed recipient (Final-Recipient, Original-Rcpt-To, or the original To).
    recipient: str
    #: (edition id, delivery id) from the original message's Message-ID, when quoted.
    ids: tuple[int, int] | None
    #: Status and diagnostic, or the feedback type, for the record.
    detail: str


def parse_report(data: bytes) -> Report | None:
    """The report in ``data``; None for anything else (an auto-reply, garbage, a forgery that
    does not even parse)."""
    try:
        message = message_from_bytes(data, policy=policy.default)
        if not isinstance(message, EmailMessage) or message.get_content_type() != (
            "multipart/report"
        ):
            return None
        report_type = str(message.get_param("report-type", "") or "").lower()
        if report_type == "delivery-status":
            return _delivery_status(message)
        if report_type == "feedback-report":
            return _feedback_report(message)
    except Exception as exc:  # any parser failure on hostile input is "not a report"
        log.warning("unreadable report: %s: %s", type(exc).__name__, exc)
    return None


def message_ids(value: str) -> tuple[int, int] | None:
    """(edition id, delivery id) from a Digest Message-ID (``digest.e1.d2@domain``)."""
    match = _MESSAGE_ID.search(value or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _parts(message: EmailMessage, content_type: str) -> list[Message]:
    return [part for part in message.iter_parts() if part.get_content_type() == content_type]


def _address(value: str) -> str:
    """The bare address of ``rfc822; user@host``, ``<user@host>`` or ``Name <user@host>``."""
    _, _, raw = str(value).rpartition(";")
    addresses = [addr for _, addr in getaddresses([raw.strip()]) if addr]
    address = addresses[0].strip().lower() if addresses else ""
    return address if _ADDRESS.match(address) else ""


def _original_headers(message: EmailMessage) -> Message | None:
    """The headers of the message the report is about, quoted whole or as headers only."""
    for part in message.iter_parts():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                inner = payload[0]
                return inner if isinstance(inner, Message) else None
        if content_type == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                return message_from_string(text.decode("utf-8", "replace"), policy=policy.default)
    return None


def _quoted_ids_and_to(message: EmailMessage) -> tuple[tuple[int, int] | None, str]:
    original = _original_headers(message)
    if original is None:
        return None, ""
    return message_ids(_raw(original, "Message-ID")), _address(_raw(original, "To"))


def _raw(message: Message, name: str) -> str:
    """A header's unparsed value: the structured parsers of ``policy.default`` raise on some
    malformed values (``Message-ID: <>``), and one bad header must not hide the rest."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return " ".join(str(value).split())
    return ""


def _delivery_status(message: EmailMessage) -> Report | None:
    ids, original_to = _quoted_ids_and_to(message)
    for part in _parts(message, "message/delivery-status"):
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        # The first block is about the message; the rest are one per recipient.
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            action = _raw(block, "Action").strip().lower()
            status = _STATUS.match(_raw(block, "Status"))
            if action not in ("failed", "delayed") or not status:
                continue
            recipient = _address(_raw(block, "Final-Recipient")) or _address(
                _raw(block, "Original-Recipient")
            )
            code = ".".join(status.groups())
            diagnostic = " ".join(_raw(block, "Diagnostic-Code").split())
            detail = f"{action} {code} {diagnostic}".strip()
            # A permanent failure is hard; a delay, or a temporary failure given up on, is soft.
            hard = action == "failed" and status.group(1) == "5"
            kind = EventKind.HARD_BOUNCE if hard else EventKind.SOFT_BOUNCE
            return Report(kind, recipient or original_to, ids, detail[:400])
    return None


def _feedback_report(message: EmailMessage) -> Report | None:
    ids, original_to = _quoted_ids_and_to(message)
    for part in _parts(message, "message/feedback-report"):
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(fields, Message):
            continue
        feedback_type = _raw(fields, "Feedback-Type").strip().lower()
        if feedback_type not in _COMPLAINTS:
            return None
        recipient = _address(_raw(fields, "Original-Rcpt-To")) or original_to
        return Report(EventKind.COMPLAINT, recipient, ids, f"feedback-type {feedback_type}")
    return None
