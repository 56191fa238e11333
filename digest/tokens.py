"""Signed tokens for the links a subscriber gets: unsubscribe, preferences, confirm.

Each purpose signs with its own salt, so a token for one cannot be used for
another; each names the subscriber (and list), so it cannot be moved to
someone else; and a change of one character makes it invalid.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.errors import InputError

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
CONFIRM = "confirm"

# How long each kind of token is honoured. Unsubscribe links must keep working
# long after the send (CAN-SPAM: 30 days at least); confirm links should not.
MAX_AGE = {
    UNSUBSCRIBE: 400 * 86400,
    PREFERENCES: 400 * 86400,
    CONFIRM: 7 * 86400,
}


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"digest.{purpose}") for purpose in MAX_AGE
        }

    def sign(self, purpose: str, *payload: int) -> str:
        return str(self._serializers[purpose].dumps(list(payload)))

    def verify(self, purpose: str, token: str) -> list[Any]:
        """The payload of a valid, unexpired token of ``purpose``; InputError otherwise."""
        try:
            value = self._serializers[purpose].loads(token, max_age=MAX_AGE[purpose])
        except SignatureExpired as exc:
            raise InputError("this link has expired") from exc
        except BadSignature as exc:
            raise InputError("this link is not valid") from exc
        if not isinstance(value, list):
            raise InputError("this link is not valid")
        return value
