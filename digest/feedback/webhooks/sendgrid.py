"""SendGrid's Signed Event Webhook: an ECDSA (P-256, SHA-256) signature over the timestamp
and the body, checked with the verification key from SendGrid's console."""

from __future__ import annotations

import base64
import binascii
import functools
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.errors import ConfigError
from digest.feedback.events import EventKind
from digest.feedback.webhooks.common import (
    Notice,
    WebhookRefused,
    clean_address,
    clean_text,
    decode_b64,
    json_records,
    parse_json,
    signed_timestamp,
)


@functools.lru_cache(maxsize=4)
def _sendgrid_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64.strip()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    return key


def verify_sendgrid(
    public_key_b64: str | None,
    signature: str,
    timestamp: str,
    body: bytes,
    *,
    max_age: int,
    now: float | None = None,
) -> None:
    """Check the Signed Event Webhook's ECDSA (P-256, SHA-256) signature over timestamp + body."""
    if not public_key_b64:
        raise WebhookRefused(404, "the SendGrid webhook is not configured")
    if not signature.strip() or not timestamp.strip():
        raise WebhookRefused(401, "the SendGrid call is not signed")
    signed_timestamp(timestamp, time.time() if now is None else now, max_age)
    key = _sendgrid_key(public_key_b64)
    try:
        key.verify(
            decode_b64(signature, "the SendGrid signature"),
            timestamp.strip().encode("ascii") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature as exc:
        raise WebhookRefused(403, "the SendGrid signature does not match") from exc


def sendgrid_notices(body: bytes) -> list[Notice]:
    """Notices of a SendGrid event batch: ``bounce`` (type bounce: hard; blocked: soft),
    ``dropped`` (for a bounced or invalid address: hard; a spam-reporting one: complaint)
    and ``spamreport``. Other events (delivered, open, ...) change nothing."""
    data = parse_json(body)
    if not isinstance(data, list):
        raise WebhookRefused(400, "a SendGrid batch is a JSON list")
    notices: list[Notice] = []
    for event in json_records(data):
        name = event.get("event")
        reason = clean_text(event.get("reason"))
        kind: EventKind | None = None
        if name == "bounce":
            blocked = event.get("type") == "blocked"
            kind = EventKind.SOFT_BOUNCE if blocked else EventKind.HARD_BOUNCE
        elif name == "spamreport":
            kind = EventKind.COMPLAINT
        elif name == "dropped":
            lowered = reason.lower()
            if "spam reporting" in lowered:
                kind = EventKind.COMPLAINT
            elif "bounced" in lowered or lowered == "invalid":
                kind = EventKind.HARD_BOUNCE
        if kind is None:
            continue
        status = clean_text(event.get("status"), 20)
        notices.append(
            Notice(
                kind,
                clean_address(event.get("email")),
                message_id=clean_text(event.get("smtp-id")),
                detail=f"sendgrid {name} {status} {reason}".strip(),
            )
        )
    return notices
