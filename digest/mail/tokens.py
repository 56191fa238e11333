"""Signed tokens for the links a subscriber gets: unsubscribe, preferences, confirm.

Each purpose signs with its own salt, so a token for one cannot be used for
another; each names the subscriber (and list), so it cannot be moved to
someone else; and a change of one character makes it invalid.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

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
    """Tokens of the form ``<ids>.<timestamp>.<HMAC-SHA256>``, all URL-safe.

    A plain timestamped signature over the ids (not a serialised object): it is
    made for every recipient of every edition, so it must cost microseconds.
    """

    def __init__(self, secret: str) -> None:
        self._signers = {
            purpose: TimestampSigner(secret, salt=f"digest.{purpose}", digest_method=hashlib.sha256)
            for purpose in MAX_AGE
        }

    def sign(self, purpose: str, *ids: int) -> str:
        return self._signers[purpose].sign(".".join(str(int(i)) for i in ids)).decode("ascii")

    def verify(self, purpose: str, token: str) -> list[int]:
        """The ids of a valid, unexpired token of ``purpose``; InputError otherwise."""
        try:
            value = self._signers[purpose].unsign(token, max_age=MAX_AGE[purpose])
        except SignatureExpired as exc:
            raise InputError("this link has expired") from exc
        except BadSignature as exc:
            raise InputError("this link is not valid") from exc
        try:
            return [int(part) for part in value.decode("ascii").split(".")]
        except ValueError as exc:  # signed by us, so only a change of format gets here
            raise InputError("this link is not valid") from exc
