"""Signed Message-IDs: each digest's Message-ID names its ledger row and proves it is ours.

``digest.e<EDITION>.d<DELIVERY>.<MAC>@<domain>``: MAC is an HMAC-SHA256 of the
two ids under a key derived from the site secret, truncated to 80 bits, in hex
(20 characters; base32 would be shorter, but the stdlib's costs microseconds per
recipient, and hex survives case-folding all the same). A report quoting it (a
feedback loop's ARF, a DSN to plain ``bounces@``, a relay webhook) may act on
that delivery; one quoting an unsigned or altered id may not: the ids are
sequential, so without the MAC anyone could name any delivery by counting. The
same row always gets the same id (a resend after a crash is recognisably the
same message) and rows never share one (Gmail wants a unique Message-ID per
recipient).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

_MAC_BYTES = 10  # 80 bits: forging one needs ~2**79 tries, each a report sent to us
_SHA256_BLOCK = 64
_PATTERN = re.compile(
    r"<?digest\.e(\d{1,18})\.d(\d{1,18})(?:\.([0-9a-f]{1,40}))?@[^\s<>@]+>?", re.IGNORECASE
)


class MessageIdSigner:
    """Makes the Message-ID of a delivery and reads the ids back out of a genuine one."""

    def __init__(self, secret: str) -> None:
        # A key of its own, so this MAC can never be replayed as a VERP or link signature.
        key = hmac.new(secret.encode("utf-8"), b"digest.message-id", hashlib.sha256).digest()
        # HMAC (RFC 2104) with the key's inner and outer hash states computed once: per
        # message that leaves two hash copies, a few times cheaper than hmac.digest, which
        # sets the key up again on every call (this runs once per recipient).
        block = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def mac(self, edition_id: int, delivery_id: int) -> str:
        """The MAC of one (edition, delivery) pair: 20 lower-case hex digits, the first 80
        bits of HMAC-SHA256(key, b"EDITION.DELIVERY")."""
        inner = self._inner.copy()
        inner.update(b"%d.%d" % (edition_id, delivery_id))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_MAC_BYTES].hex()

    def message_id(self, edition_id: int, delivery_id: int, domain: str) -> str:
        """The Message-ID of one ledger row, without angle brackets."""
        return f"digest.e{edition_id}.d{delivery_id}.{self.mac(edition_id, delivery_id)}@{domain}"

    def verify(self, text: str) -> tuple[int, int] | None:
        """(edition id, delivery id) of the first Digest Message-ID in ``text`` if it carries
        a valid MAC; None when there is none, it is unsigned (the old form) or forged."""
        found = quoted_message_id(text)
        if found is None:
            return None
        edition_id, delivery_id, mac = found
        if not mac or not hmac.compare_digest(mac.lower(), self.mac(edition_id, delivery_id)):
            return None
        return edition_id, delivery_id


def quoted_message_id(text: str) -> tuple[int, int, str] | None:
    """(edition id, delivery id, MAC or "") of the first thing in ``text`` shaped like a
    Digest Message-ID, signed or not: what a report claims, before it is believed."""
    match = _PATTERN.search(text or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.group(3) or ""


@functools.lru_cache(maxsize=4)
def signer_for(secret: str) -> MessageIdSigner:
    """One signer per secret: the key is derived once, not once per message or report."""
    return MessageIdSigner(secret)
