"""Postmark's Bounce and SpamComplaint webhooks, authenticated with HTTP Basic credentials
(Postmark sends those put in the webhook URL)."""

from __future__ import annotations

import base64
import binascii
import hmac

from digest.feedback.events import EventKind
from digest.feedback.webhooks.common import (
    Notice,
    WebhookRefused,
    clean_address,
    clean_text,
    parse_json,
)

#: Postmark bounce ``Type``s and what each means for the address. Not listed (auto-replies,
#: address changes, challenge mails, "Blocked" by content, ...) change nothing.
_POSTMARK_KINDS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "BadEmailAddress": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "DnsError": EventKind.SOFT_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
}


def verify_postmark(authorization: str, user: str, password: str | None) -> None:
    """Check HTTP Basic credentials (Postmark sends those put in the webhook URL)."""
    if not password:
        raise WebhookRefused(404, "the Postmark webhook is not configured")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise WebhookRefused(401, "missing Basic credentials")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise WebhookRefused(401, "malformed Basic credentials") from exc
    given_user, _, given_password = given.partition(":")
    # Both compared, always, in constant time: the answer says nothing about which was wrong.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise WebhookRefused(401, "wrong Basic credentials")


def postmark_notices(body: bytes) -> list[Notice]:
    """The notice of one Postmark Bounce or SpamComplaint record (one record per call)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise WebhookRefused(400, "a Postmark record is a JSON object")
    record_type = data.get("RecordType")
    if record_type not in ("Bounce", "SpamComplaint"):
        return []
    kind = _POSTMARK_KINDS.get(str(data.get("Type", "")))
    if kind is None:
        return []
    # The bounce's full text (Content) quotes our Message-ID when Postmark was asked to keep it.
    content = data.get("Content")
    quoted = content[:200_000] if isinstance(content, str) else ""
    detail = f"postmark {clean_text(data.get('Type'), 40)}: {clean_text(data.get('Description'))}"
    details = clean_text(data.get("Details"))
    return [
        Notice(
            kind,
            clean_address(data.get("Email")),
            message_id=quoted,
            detail=f"{detail} {details}".strip(),
        )
    ]
