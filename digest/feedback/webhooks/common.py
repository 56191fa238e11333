"""What every relay's webhook shares: the refusal, a ``Notice`` about one recipient, the
``Outcome`` of one call, the helpers that read a relay's untrusted JSON, and matching each notice
to a delivery and applying it as a ``FeedbackEvent``, all in one transaction.

A notice names a delivery only through something we signed: the VERP return path or our
Message-ID (its MAC verified, ``digest.mail.msgid``), and only when that delivery went to
the very address the relay names. Otherwise it is about the address alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.audience import EMAIL_MAX_LENGTH, is_forgotten, lookup_form
from digest.config import Settings
from digest.errors import InputError
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.mail.msgid import signer_for
from digest.mail.verp import VerpSigner, split_bounce_address
from digest.store.db import Database
from digest.store.models import Delivery, Subscriber

log = logging.getLogger(__name__)

#: Most events one call may carry (SendGrid batches up to a few thousand).
MAX_EVENTS = 10_000


class WebhookRefused(InputError):
    """A webhook call that changes nothing: ``status`` is what to answer (400 malformed,
    401 unsigned, 403 forged or stale, 404 not configured, 503 cannot check it just now)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """What a relay says about one recipient, before it is matched to a delivery."""

    kind: EventKind
    recipient: str
    #: The envelope sender the relay echoes (our VERP return path, when we set one).
    return_path: str = ""
    #: The Message-ID of the message it is about (angle brackets or not), or text quoting it.
    message_id: str = ""
    detail: str = ""


@dataclass
class Outcome:
    """How many notices of one call changed something, were already recorded, or named
    nobody (or were kinds of news that change nothing, like a delivery)."""

    applied: int = 0
    already: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"applied": self.applied, "already": self.already, "ignored": self.ignored}


# -- reading a relay's JSON ------------------------------------------------------------------


def clean_address(value: object) -> str:
    """A bare, lower-cased address, or "" for anything else (a relay's field is still text
    from the Internet: it must not become a header or a row with a newline in it)."""
    if not isinstance(value, str) or len(value) > 4 * EMAIL_MAX_LENGTH:
        return ""
    # The stored form (digest.audience: one place), so an internationalised domain written
    # in Unicode by the relay names the subscriber stored in punycode.
    return lookup_form(value) or ""


def clean_text(value: object, limit: int = 400) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())[:limit]


def parse_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookRefused(400, "body is not JSON") from exc


def decode_b64(value: str, what: str, status: int = 403) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRefused(status, f"{what} is not base64") from exc


def signed_timestamp(value: object, now: float, max_age: int) -> int:
    """Seconds since the epoch from a signed field, refused when outside the window (a replay
    of an old call, or a clock so far off that the window means nothing)."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    if not re.fullmatch(r"[0-9]{1,12}", text.strip()):
        raise WebhookRefused(400, "timestamp is not a number of seconds")
    stamp = int(text)
    if abs(now - stamp) > max_age:
        raise WebhookRefused(403, "timestamp is outside the accepted window")
    return stamp


def json_object(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def json_records(value: object) -> list[dict[str, Any]]:
    """The objects of a JSON list, skipping anything else in it."""
    if not isinstance(value, list):
        return []
    return [item for item in value[:MAX_EVENTS] if isinstance(item, dict)]


# -- matching and applying -------------------------------------------------------------------


def _delivery_to(
    session: Session, delivery_id: int, edition_id: int | None, recipient: str
) -> bool:
    """Whether the delivery exists, is of that edition (when given) and went to ``recipient``."""
    row = session.execute(
        select(Delivery.edition_id, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None or (edition_id is not None and row[0] != edition_id):
        return False
    return bool(recipient) and row[1] == recipient


def match_delivery(session: Session, settings: Settings, notice: Notice) -> int | None:
    """The delivery a notice is about: from our VERP return path, else our Message-ID, and
    only if it went to the address the relay names."""
    if settings.bounce_domain and notice.return_path:
        token = split_bounce_address(notice.return_path, settings.bounce_domain)
        if token:
            try:
                delivery_id = VerpSigner(settings.secret).verify(token)
            except InputError as exc:
                log.warning("webhook: return path token refused (%s)", exc)
            else:
                if _delivery_to(session, delivery_id, None, notice.recipient):
                    return delivery_id
    ids = signer_for(settings.secret).verify(notice.message_id)
    if ids is not None and _delivery_to(session, ids[1], ids[0], notice.recipient):
        return ids[1]
    return None


def apply_notices(
    db: Database, settings: Settings, notices: Iterable[Notice], source: str
) -> Outcome:
    """Apply every notice of one call in one transaction: all or nothing."""
    outcome = Outcome()
    with db.session() as session:
        for notice in notices:
            delivery_id = match_delivery(session, settings, notice)
            if delivery_id is None and (
                not notice.recipient or is_forgotten(session, notice.recipient)
            ):
                # Nobody to name, or a forgotten person whose address must not be stored again.
                outcome.ignored += 1
                continue
            event = FeedbackEvent(
                notice.kind,
                email=notice.recipient,
                delivery_id=delivery_id,
                detail=notice.detail,
                source=source,
            )
            if apply_event(session, event, soft_bounce_limit=settings.soft_bounce_limit):
                outcome.applied += 1
            else:
                outcome.already += 1
    return outcome
