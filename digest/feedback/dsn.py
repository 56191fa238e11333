"""Reading the reports mail systems send back: RFC 3464 delivery status notifications and
RFC 5965 (ARF) feedback reports, from a message already read by ``digest.feedback.reader``.

Everything here reads untrusted input, and only through the bounded reader:
raw header values, parameters and bodies each cut to a fixed size, never the
stdlib's structured header objects. Nothing is acted on: the result is a
``Report`` saying what the message claims, and the caller decides whether to
believe it (a valid VERP token, or a quoted Message-ID carrying our MAC). Any
message that is not one of these reports gives ``None``; one over the reader's limits
raises ``MessageRefused``, the only exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.audience import lookup_form
from digest.feedback.events import EventKind
from digest.feedback.reader import (
    Headers,
    Limits,
    Part,
    body_text,
    parse_header_block,
    read_message,
    split_header_block,
)

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
#: Feedback types (RFC 5965 and its registry) that mean "the reader does not want this".
_COMPLAINTS = {"abuse", "fraud", "virus", "other"}  # not "not-spam" nor "auth-failure"
#: Per-recipient blocks read from one delivery-status part (a DSN names one or a few).
MAX_STATUS_BLOCKS = 50


@dataclass(frozen=True)
class Report:
    """What one report claims: the kind of news, about which address and which message."""

    kind: EventKind
    #: The failed recipient (Final-Recipient, Original-Rcpt-To, or the original To).
    recipient: str
    #: The original message's Message-ID as quoted (not yet checked: see digest.mail.msgid).
    message_id: str
    #: Status and diagnostic, or the feedback type, for the record.
    detail: str


def parse_report(message: Part | bytes, limits: Limits | None = None) -> Report | None:
    """The report in ``message``; None for anything else (an auto-reply, garbage, a forgery
    that does not even parse). MessageRefused when a block of it is over ``limits`` (bytes
    are read with them first): over-limit input is never read further."""
    limits = limits or Limits()
    if isinstance(message, bytes):
        message = read_message(message, limits)
    if message.content_type != "multipart/report":
        return None
    report_type = message.params.get("report-type", "").lower()
    if report_type == "delivery-status":
        return _delivery_status(message, limits)
    if report_type == "feedback-report":
        return _feedback_report(message, limits)
    return None


def _address(value: str) -> str:
    """The bare address of ``rfc822; user@host``, ``<user@host>`` or ``Name <user@host>``."""
    # The first of a list ("a@b, c@d"), in the stored form (digest.audience: one place).
    first = value if value.rstrip().endswith(">") else value.split(",")[0]
    return lookup_form(first) or ""


def _field_blocks(part: Part, limits: Limits) -> list[Headers]:
    """The blocks of fields of a delivery-status or feedback-report part (RFC 3464 2.1: header
    blocks separated by empty lines), from at most ``limits.decoded_bytes`` of it."""
    text = body_text(part, limits.decoded_bytes).encode("utf-8", "replace")
    blocks: list[Headers] = []
    while text.strip() and len(blocks) < MAX_STATUS_BLOCKS:
        block, body_start = split_header_block(text.lstrip(b"\r\n"), limits)
        blocks.append(parse_header_block(block, limits))
        text = text.lstrip(b"\r\n")[body_start:]
    return blocks


def _original_headers(message: Part, limits: Limits) -> Headers | None:
    """The headers of the message the report is about, quoted whole or as headers only."""
    for part in message.children:
        if part.content_type == "message/rfc822" and part.children:
            return part.children[0].headers
        if part.content_type == "text/rfc822-headers":
            text = body_text(part, limits.header_block_bytes).encode("utf-8", "replace")
            block, _ = split_header_block(text, limits)
            return parse_header_block(block, limits)
    return None


def _quoted_id_and_to(message: Part, limits: Limits) -> tuple[str, str]:
    original = _original_headers(message, limits)
    if original is None:
        return "", ""
    return original.get("Message-ID"), _address(original.get("To"))


def _delivery_status(message: Part, limits: Limits) -> Report | None:
    quoted_id, original_to = _quoted_id_and_to(message, limits)
    for part in message.children:
        if part.content_type != "message/delivery-status":
            continue
        # The first block is about the message; the rest are one per recipient.
        for block in _field_blocks(part, limits)[1:]:
            action = block.get("Action").strip().lower()
            status = _STATUS.match(block.get("Status"))
            if action not in ("failed", "delayed") or not status:
                continue
            recipient = _address(block.get("Final-Recipient")) or _address(
                block.get("Original-Recipient")
            )
            code = ".".join(status.groups())
            detail = f"{action} {code} {block.get('Diagnostic-Code')}".strip()
            # A permanent failure is hard; a delay, or a temporary failure given up on, is soft.
            hard = action == "failed" and status.group(1) == "5"
            kind = EventKind.HARD_BOUNCE if hard else EventKind.SOFT_BOUNCE
            return Report(kind, recipient or original_to, quoted_id, detail[:400])
    return None


def _feedback_report(message: Part, limits: Limits) -> Report | None:
    quoted_id, original_to = _quoted_id_and_to(message, limits)
    for part in message.children:
        if part.content_type != "message/feedback-report":
            continue
        blocks = _field_blocks(part, limits)
        if not blocks:
            continue
        fields = blocks[0]
        feedback_type = fields.get("Feedback-Type").strip().lower()
        if feedback_type not in _COMPLAINTS:
            return None
        recipient = _address(fields.get("Original-Rcpt-To")) or original_to
        return Report(EventKind.COMPLAINT, recipient, quoted_id, f"feedback-type {feedback_type}")
    return None
