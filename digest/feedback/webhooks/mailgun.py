"""Mailgun's webhooks: JSON signed with an HMAC-SHA256 of timestamp and token under the HTTP
webhook signing key, each token accepted once (``TokenMemory``)."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from digest.feedback.events import EventKind
from digest.feedback.webhooks.common import (
    Notice,
    WebhookRefused,
    clean_address,
    clean_text,
    json_object,
    parse_json,
    signed_timestamp,
)


class TokenMemory:
    """Tokens seen in the replay window, in this process's memory.

    Per process, on purpose: it needs no table or Redis, and a replay that reaches another
    process within the window can only apply again what was applied once, which changes
    nothing (``apply_event`` is idempotent). Bounded: past ``limit`` live tokens, new ones are
    refused (503, the relay retries) rather than letting memory grow without end.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, token: str, expires: float, now: float) -> bool:
        """True the first time ``token`` is seen before it expires."""
        with self._lock:
            if len(self._expiry) >= self.limit:
                self._expiry = {t: e for t, e in self._expiry.items() if e > now}
                if len(self._expiry) >= self.limit:
                    raise WebhookRefused(503, "too many webhook calls in the replay window")
            seen = self._expiry.get(token)
            if seen is not None and seen > now:
                return False
            self._expiry[token] = expires
            return True

    def release(self, token: str) -> None:
        """Forget a token whose call was not recorded, so the relay's retry is accepted."""
        with self._lock:
            self._expiry.pop(token, None)


def verify_mailgun(
    signing_key: str | None,
    body: bytes,
    memory: TokenMemory,
    *,
    max_age: int,
    now: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check ``signature`` = HMAC-SHA256(key, timestamp + token), the timestamp's age and that
    the token is new; returns the token (claimed in ``memory``) and the payload."""
    if not signing_key:
        raise WebhookRefused(404, "the Mailgun webhook is not configured")
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise WebhookRefused(400, "a Mailgun call is a JSON object")
    signed = payload.get("signature")
    if not isinstance(signed, dict):
        raise WebhookRefused(401, "the Mailgun call is not signed")
    token, given, stamp = signed.get("token"), signed.get("signature"), signed.get("timestamp")
    if not isinstance(token, str) or not isinstance(given, str) or stamp is None:
        raise WebhookRefused(401, "the Mailgun call is not signed")
    if not re.fullmatch(r"[\x21-\x7e]{1,200}", token):
        raise WebhookRefused(400, "malformed Mailgun token")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", given.strip()):
        raise WebhookRefused(403, "the Mailgun signature does not match")
    now = time.time() if now is None else now
    seconds = signed_timestamp(stamp, now, max_age)
    expected = hmac.new(
        signing_key.encode("utf-8"), f"{stamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise WebhookRefused(403, "the Mailgun signature does not match")
    # Claimed only once the signature holds, so forged calls cannot fill the memory.
    if not memory.claim(token, seconds + max_age, now):
        raise WebhookRefused(403, "the Mailgun token was used already")
    return token, payload


def mailgun_notices(payload: Mapping[str, Any]) -> list[Notice]:
    """The notice of a Mailgun ``failed`` (severity permanent: hard; temporary: soft) or
    ``complained`` event; other events change nothing."""
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise WebhookRefused(400, "the Mailgun call has no event-data")
    name = data.get("event")
    if name == "failed":
        permanent = data.get("severity") == "permanent"
        kind = EventKind.HARD_BOUNCE if permanent else EventKind.SOFT_BOUNCE
    elif name == "complained":
        kind = EventKind.COMPLAINT
    else:
        return []
    message = json_object(data.get("message"))
    headers = json_object(message.get("headers"))
    envelope = json_object(data.get("envelope"))
    status = json_object(data.get("delivery-status"))
    detail = " ".join(
        part
        for part in (
            "mailgun",
            clean_text(name, 20),
            clean_text(data.get("severity"), 20),
            clean_text(status.get("code"), 10),
            clean_text(status.get("message")) or clean_text(status.get("description")),
        )
        if part
    )
    return [
        Notice(
            kind,
            clean_address(data.get("recipient")),
            return_path=clean_text(envelope.get("sender")),
            message_id=clean_text(headers.get("message-id")),
            detail=detail,
        )
    ]
