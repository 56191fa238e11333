"""Assembling the MIME message for each recipient from parts built once per edition.

The message is ``multipart/alternative`` (text, then HTML), UTF-8,
quoted-printable, with CRLF line ends throughout (what SMTP wants on the wire).
Headers are written here rather than by ``email.message.EmailMessage``: that
costs milliseconds per message, and CPython 3.11.7's header parser can be
tricked into emitting a header line from an encoded word (gh-121650). Every
value that reaches a header went through ``header_safe`` first.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from urllib.parse import quote

from digest.render.renderer import PersonalTemplate, RenderedDigest

CRLF = b"\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")


def header_safe(value: str) -> str:
    """A header value with every control character and line break replaced by a space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def encode_header(name: str, value: str) -> bytes:
    """``Name: value`` folded to 78 columns, with RFC 2047 encoded words for non-ASCII.

    Text that merely looks like an encoded word (``=?utf-8?q?...?=``) is itself
    encoded, so a receiver shows it literally instead of decoding it.
    """
    value = header_safe(value)
    charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\r\n", maxlinelen=78)
    return f"{name}: {encoded}".encode("ascii") + CRLF


def address_header(name: str, value: str) -> bytes:
    """A header whose value ``format_address`` already made ASCII and safe: written as is."""
    return f"{name}: {value}".encode("ascii") + CRLF


def format_address(name: str, address: str) -> str:
    """``Name <address>`` for a header; the name quoted or encoded as needed, never trusted."""
    name = header_safe(name)
    if not name:
        return address
    if name.isascii():
        if _ATEXT_PHRASE.match(name) and "=?" not in name:
            return f"{name} <{address}>"
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{Header(name, 'utf-8').encode(linesep=' ')} <{address}>"


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", CRLF)


class EncodedPart:
    """A body part encoded once, with room for the personal links.

    Each static segment is quoted-printable encoded once per edition variant
    and ends with a soft line break; each link is encoded on its own line(s)
    per recipient, followed by a soft line break. Soft line breaks decode to
    nothing, so the decoded text is exactly the filled-in template, while the
    costly encoding of 40 KB of HTML happens once, not per recipient. A link
    can never be split by a line break it did not bring itself.
    """

    def __init__(self, template: PersonalTemplate) -> None:
        segments = template.segments
        self.static = [_qp(text) + b"=\r\n" for text in segments[0::2]]
        self.names = list(segments[1::2])

    def fill(self, links: Mapping[str, str]) -> bytes:
        parts = [self.static[0]]
        for name, static in zip(self.names, self.static[1:], strict=True):
            parts.append(_qp(links[name]))
            parts.append(b"=\r\n")
            parts.append(static)
        return b"".join(parts)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    links: Mapping[str, str]  # placeholder name -> personal URL, "unsubscribe" among them
    message_id: str  # without angle brackets


class MessageTemplate:
    """One edition variant's message, ready to be personalised per recipient."""

    def __init__(
        self,
        *,
        from_name: str,
        from_address: str,
        subject: str,
        list_id: str,
        rendered: RenderedDigest,
        unsubscribe_mailto: str,
        signer: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.from_address = from_address
        self.html: PersonalTemplate = rendered.html
        self.text: PersonalTemplate = rendered.text
        self._encoded = {"plain": EncodedPart(rendered.text), "html": EncodedPart(rendered.html)}
        self.unsubscribe_mailto = unsubscribe_mailto
        self.signer = signer
        self.boundary = "=_digest_" + secrets.token_hex(12)
        self._head = b"".join(
            [
                address_header("From", format_address(from_name, from_address)),
                encode_header("Subject", subject),
                address_header("List-Id", list_id),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                b"MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n'.encode(),
            ]
        )
        self._part_head = {
            kind: (
                f"--{self.boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            ).encode()
            for kind in ("plain", "html")
        }
        self._end = f"\r\n--{self.boundary}--\r\n".encode()

    def build(self, recipient: Recipient, date: str | None = None) -> bytes:
        """The complete message for one recipient, as bytes with CRLF line ends."""
        unsubscribe = recipient.links["unsubscribe"]
        mailto = f"mailto:{self.unsubscribe_mailto}?subject={quote('unsubscribe ' + unsubscribe)}"
        head = b"".join(
            [
                address_header("To", format_address(recipient.name, recipient.email)),
                f"Date: {date or formatdate(usegmt=True)}\r\n".encode(),
                f"Message-ID: <{recipient.message_id}>\r\n".encode(),
                # Two URIs, folded onto a continuation line: https first, as
                # Gmail's one-click button wants it.
                f"List-Unsubscribe: <{unsubscribe}>,\r\n <{mailto}>\r\n".encode(),
                self._head,
            ]
        )
        body = b"".join(
            [
                b"\r\nThis is a multi-part message in MIME format.\r\n\r\n",
                self._part_head["plain"],
                self._encoded["plain"].fill(recipient.links),
                b"\r\n",
                self._part_head["html"],
                self._encoded["html"].fill(recipient.links),
                self._end,
            ]
        )
        message = head + body
        return self.signer(message) if self.signer else message


def simple_message(
    *,
    from_name: str,
    from_address: str,
    to_name: str,
    to_address: str,
    subject: str,
    text: str,
    domain: str,
) -> bytes:
    """A one-off plain-text message (a confirmation request), with the same header hygiene."""
    return b"".join(
        [
            address_header("From", format_address(from_name, from_address)),
            address_header("To", format_address(to_name, to_address)),
            encode_header("Subject", subject),
            f"Date: {formatdate(usegmt=True)}\r\n".encode(),
            f"Message-ID: <{random_message_id(domain)}>\r\n".encode(),
            b"MIME-Version: 1.0\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            _qp(text),
        ]
    )


def message_id(edition_id: int, delivery_id: int, domain: str) -> str:
    """The same Message-ID for the same ledger row, so a resend after a crash is recognisably
    the same message; unique across recipients, as Gmail requires."""
    return f"digest.e{edition_id}.d{delivery_id}@{domain}"


def random_message_id(domain: str) -> str:
    """A fresh Message-ID for a one-off message outside the ledger (a test copy)."""
    return f"digest.test.{secrets.token_hex(8)}@{domain}"
