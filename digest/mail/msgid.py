"""Signed Message-IDs: each digest's Message-ID names its ledger row and proves it is ours.

``digest.e<EDITION>.d<DELIVERY>.<MAC>@<domain>``: MAC is an HMAC-SHA256 of the
two ids under a key derived from the site secret, truncated to 80 bits, in
lower-case base32. A report quoting it (a feedback loop's ARF, a DSN to plain
``bounces@``, a relay webhook) may act on that delivery; one quoting an unsigned
or altered id may not: the ids are sequential, so without the MAC anyone could
name any delivery by counting. The same row always gets the same id (a resend
after a crash is recognisably the same message) and rows never share one (Gmail
wants a unique Message-ID per recipient).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

_MAC_BYTES = 10  # 80 bits: forging one needs ~2**79 tries, each a report sent to us
_PATTERN = re.compile(
    r"<?digest\.e(\d{1,18})\.d(\d{1,18})(?:\.([a-z2-7]{1,32}))?@[^\s<>@]+>?", re.IGNORECASE
)


class MessageIdSigner:
    """Makes the Message-ID of a delivery and reads the ids back out of a genuine one."""

    def __init__(self, secret: str) -> None:
        # A key of its own, so this MAC can never be replayed as a VERP or link signature.
        self._key = hmac.new(secret.encode("utf-8"), b"digest.message-id", hashlib.sha256).digest()

    def mac(self, edition_id: int, delivery_id: int) -> str:
        """The lower-case base32 MAC of one (edition, delivery) pair: 16 characters."""
        digest = hmac.digest(self._key, b"%d.%d" % (edition_id, delivery_id), "sha256")
        return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii").lower()

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
