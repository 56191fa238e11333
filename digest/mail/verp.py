"""VERP: an envelope sender per delivery, so a bounce names the ledger row it is about.

The return path is ``bounces+TOKEN@<bounce domain>``. TOKEN is the delivery id
and a truncated HMAC-SHA256 of it, both in lower-case base32: mail systems may
fold the case of a local part, and base32 survives that where base64 would not.
It carries no time stamp: a bounce may come days after the send, and a valid
token lets its holder report nothing worse than a bounce of that one message.

Mail sent outside an edition (a sign-up confirmation, a notice) has no delivery row: its
return path is ``bounces+n-TOKEN@<bounce domain>``, TOKEN naming the subscriber it went to,
MACed under a key of its own (``NoticeSigner``). The ``n-`` prefix and its second hyphen keep
the two kinds apart: a delivery token has exactly one hyphen.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

from digest.audience import bare_address
from digest.config import Settings
from digest.errors import InputError

#: The local part before the ``+``: mail to ``bounces@`` (no token) is accepted too.
BOUNCE_LOCAL = "bounces"
_MAC_BYTES = 10  # 80 bits: forging one needs ~2**79 tries, each an SMTP message
_TOKEN = re.compile(r"^([a-z2-7]{1,13})-([a-z2-7]{16})$")
#: What starts the token of a notice's return path.
NOTICE_PREFIX = "n-"
_NOTICE_TOKEN = re.compile(r"^n-([a-z2-7]{1,13})-([a-z2-7]{16})$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded)


class VerpSigner:
    """Makes and checks the token of a delivery id."""

    def __init__(self, secret: str) -> None:
        # A key of its own, so a VERP MAC can never be replayed as any other signature.
        self._key = hmac.new(secret.encode("utf-8"), b"digest.verp", hashlib.sha256).digest()

    def _mac(self, raw_id: bytes) -> bytes:
        return hmac.new(self._key, raw_id, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, delivery_id: int) -> str:
        if delivery_id < 1:
            raise ValueError("a delivery id is positive")
        raw = delivery_id.to_bytes((delivery_id.bit_length() + 7) // 8, "big")
        return f"{_b32(raw)}-{_b32(self._mac(raw))}"

    def verify(self, token: str) -> int:
        """The delivery id of a genuine token; InputError for anything else."""
        match = _TOKEN.match(token.strip().lower())
        if not match:
            raise InputError("not a bounce token")
        try:
            raw, mac = _unb32(match.group(1)), _unb32(match.group(2))
        except ValueError as exc:
            raise InputError("not a bounce token") from exc
        if not hmac.compare_digest(mac, self._mac(raw)):
            raise InputError("bounce token signature does not match")
        delivery_id = int.from_bytes(raw, "big")
        if delivery_id < 1:
            raise InputError("not a bounce token")
        return delivery_id


class NoticeSigner:
    """Makes and checks the token of a notice's return path: the subscriber it was sent to."""

    def __init__(self, secret: str) -> None:
        # Not the delivery key: a delivery token can never pass for a notice's, nor back.
        self._key = hmac.new(secret.encode("utf-8"), b"digest.verp.notice", hashlib.sha256).digest()

    def _mac(self, raw_id: bytes) -> bytes:
        return hmac.new(self._key, raw_id, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, subscriber_id: int) -> str:
        if subscriber_id < 1:
            raise ValueError("a subscriber id is positive")
        raw = subscriber_id.to_bytes((subscriber_id.bit_length() + 7) // 8, "big")
        return f"{NOTICE_PREFIX}{_b32(raw)}-{_b32(self._mac(raw))}"

    def verify(self, token: str) -> int:
        """The subscriber id of a genuine notice token; InputError for anything else."""
        match = _NOTICE_TOKEN.match(token.strip().lower())
        if not match:
            raise InputError("not a notice bounce token")
        try:
            raw, mac = _unb32(match.group(1)), _unb32(match.group(2))
        except ValueError as exc:
            raise InputError("not a notice bounce token") from exc
        if not hmac.compare_digest(mac, self._mac(raw)):
            raise InputError("notice bounce token signature does not match")
        subscriber_id = int.from_bytes(raw, "big")
        if subscriber_id < 1:
            raise InputError("not a notice bounce token")
        return subscriber_id


def is_notice_token(token: str) -> bool:
    """Whether a bounce address's token is meant as a notice's (checked, still, by verify)."""
    return token.strip().lower().startswith(NOTICE_PREFIX)


@functools.lru_cache(maxsize=4)
def _signer(secret: str) -> VerpSigner:
    # return_path runs once per recipient: derive the key once per secret, not per message.
    return VerpSigner(secret)


def return_path(settings: Settings, delivery_id: int, from_address: str | None = None) -> str:
    """The envelope sender (MAIL FROM) for one delivery.

    With DIGEST_BOUNCE_DOMAIN set: ``bounces+TOKEN@<bounce domain>``. Without it: the
    From address (``from_address``, the list's own, else the site's), as before.
    """
    if not settings.bounce_domain:
        return from_address or settings.from_address
    token = _signer(settings.secret).sign(delivery_id)
    return f"{BOUNCE_LOCAL}+{token}@{settings.bounce_domain.lower()}"


def notice_return_path(settings: Settings, subscriber_id: int, from_address: str) -> str:
    """The envelope sender of a notice to one subscriber: ``bounces+n-TOKEN@<bounce domain>``
    with DIGEST_BOUNCE_DOMAIN set, else ``from_address``."""
    if not settings.bounce_domain:
        return from_address
    token = NoticeSigner(settings.secret).sign(subscriber_id)
    return f"{BOUNCE_LOCAL}+{token}@{settings.bounce_domain.lower()}"


def split_bounce_address(address: str, bounce_domain: str) -> str | None:
    """The token part of an address at the bounce domain: "" for plain ``bounces@``, None when
    the address is not a bounce address at all."""
    local, at, domain = bare_address(address).rpartition("@")
    if not at or domain.lower() != bounce_domain.lower():
        return None
    base, plus, token = local.partition("+")
    if base.lower() != BOUNCE_LOCAL:
        return None
    return token if plus else ""
