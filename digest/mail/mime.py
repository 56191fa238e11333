"""Assembling the MIME message for each recipient from parts built once per edition.

The message is ``multipart/alternative`` (text, then HTML), UTF-8,
quoted-printable, with CRLF line ends throughout (what SMTP wants on the wire).
Headers are written here rather than by ``email.message.EmailMessage``: that
costs milliseconds per message, and CPython 3.11.7's header parser can be
tricked into emitting a header line from an encoded word (gh-121650). Every
value that reaches a header went through ``header_safe`` first.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from digest.ingest.text import inert
from digest.render.placeholders import PIXEL, PersonalTemplate, article_of, missing_link
from digest.render.renderer import RenderedDigest

CRLF = b"\r\n"
#: RFC 5322 2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
FOLD_AT = 78
#: RFC 2047 2: an encoded word is at most 75 characters.
WORD_MAX = 75
# The first encoded word of a display name shares its line with a header name that
# format_address does not know; this leaves room for one of up to 12 characters.
_ADDRESS_FIRST_WORD = FOLD_AT - len("Reply-To: ") - 2
_NOT_IN_ADDRESS = re.compile(r"[\s<>\"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
# RFC 2047 5(3): the characters a "Q" encoded word may carry as themselves in any
# position, a display name included; everything else is written =XX.
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = [chr(b) if b in _Q_LITERAL else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]


def header_safe(value: str) -> str:
    """A header value on one line: control characters and line breaks become spaces, bidi
    overrides and isolates go, runs of space become one."""
    return inert(value)


def _plain_words(value: str, longest: int) -> list[str] | None:
    """The words of ``value`` if it can be written as it is: printable ASCII, nothing a
    receiver would decode as an encoded word, no word longer than ``longest``."""
    if not _PRINTABLE_ASCII.match(value) or "=?" in value:
        return None
    words = value.split(" ")
    return words if all(len(w) <= longest for w in words) else None


def _encoded_words(text: str, first: int = WORD_MAX) -> list[str]:
    """``text`` as RFC 2047 UTF-8 encoded words of at most 75 characters (the first at most
    ``first``), split between characters, never inside one.

    "Q" or "B", whichever is shorter for the whole text. Receivers decode the words
    and join them, dropping the folding between them, so the text comes back whole;
    its spaces travel inside the words. Only characters RFC 2047 allows in a display
    name are written literally, so the same words serve in a phrase and in a Subject.
    """
    data = text.encode("utf-8")
    use_b = _b_length(len(data)) < sum(len(_Q_BYTE[b]) for b in data)
    prefix = "=?utf-8?b?" if use_b else "=?utf-8?q?"
    overhead = len(prefix) + 2
    words: list[str] = []
    chunk = bytearray()
    q_length = 0
    room = first - overhead
    for char in text:
        raw = char.encode("utf-8")
        step = 0 if use_b else sum(len(_Q_BYTE[b]) for b in raw)
        grown = _b_length(len(chunk) + len(raw)) if use_b else q_length + step
        if chunk and grown > room:
            words.append(_encoded_word(prefix, bytes(chunk), use_b))
            chunk.clear()
            q_length = 0
            room = WORD_MAX - overhead
        chunk += raw
        q_length += step
    if chunk:
        words.append(_encoded_word(prefix, bytes(chunk), use_b))
    return words


def _b_length(size: int) -> int:
    return -(-size // 3) * 4


def _encoded_word(prefix: str, data: bytes, use_b: bool) -> str:
    payload = base64.b64encode(data).decode("ascii") if use_b else "".join(_Q_BYTE[b] for b in data)
    return f"{prefix}{payload}?="


def _fold(name: str, words: list[str]) -> bytes:
    """``Name: w1 w2 ...`` with a fold (CRLF and a space) before any word that would take
    its line past 78 characters. Unfolding removes only the CRLF, so the value is the
    words joined by single spaces, exactly."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > FOLD_AT and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines).encode("ascii") + CRLF


def encode_header(name: str, value: str) -> bytes:
    """``Name: value`` for an unstructured header (Subject): folded to 78 columns, RFC 2047
    encoded words for anything but printable ASCII.

    Text that merely looks like an encoded word (``=?utf-8?q?...?=``) is itself
    encoded, so a receiver shows it literally instead of decoding it, and a word
    too long for a line is encoded so it can be split.
    """
    value = header_safe(value)
    first = FOLD_AT - len(name) - 2
    words = _plain_words(value, min(first, FOLD_AT - 1))
    if words is None:
        words = _encoded_words(value, max(min(WORD_MAX, first), 16))
    return _fold(name, words)


def address_header(name: str, value: str) -> bytes:
    """A header whose value ``format_address`` made (or a list-id): folded between its words
    to 78 columns.

    Written as it is, save that what could never be written there is made harmless:
    line breaks and controls become spaces, and any run of words that is neither short
    printable ASCII, nor an ``<...>``, nor an encoded word of ours decoding to clean
    text, is encoded.
    """
    words: list[str] = []
    run: list[str] = []
    for word in header_safe(value).split(" "):
        if _writable(word):
            if run:
                words += _encoded_words(" ".join(run))
                run = []
            words.append(word)
        else:
            run.append(word)
    if run:
        words += _encoded_words(" ".join(run))
    return _fold(name, words)


_OUR_ENCODED_WORD = re.compile(r"=\?utf-8\?(?:q\?([A-Za-z0-9!*+/_=-]*)|b\?([A-Za-z0-9+/]*=*))\?=")
_ANGLE_ADDR = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}>")


def _writable(word: str) -> bool:
    """Whether ``word`` may stand in an address header as it is."""
    if _plain_words(word, FOLD_AT - 1) is not None or _ANGLE_ADDR.fullmatch(word):
        return True
    found = _OUR_ENCODED_WORD.fullmatch(word)
    if found is None or len(word) > WORD_MAX:
        return False
    q, b = found.groups()
    try:
        if q is not None:
            data = binascii.a2b_qp(q, header=True)
        else:
            data = base64.b64decode(b, validate=True)
        decoded = data.decode("utf-8")
    except (ValueError, binascii.Error):
        return False
    # Encoded words of ours never hold what header_safe removes (a line break above all);
    # fenced with letters, so none can hide at either end in what header_safe strips.
    return header_safe(f"x{decoded}x") == f"x{decoded}x"


def _address_words(name: str, address: str) -> list[str]:
    """The words of ``Name <address>``: the name as an atom phrase, a quoted string or
    encoded words; each word short enough for a folded line."""
    name = header_safe(name)
    if _NOT_IN_ADDRESS.search(address):  # validated on the way in; this is a last guard
        address = _NOT_IN_ADDRESS.sub("", header_safe(address))
    if not name:
        return [address]
    words = _plain_words(name, _ADDRESS_FIRST_WORD)
    if words is not None:
        if _ATEXT_PHRASE.match(name):
            return [*words, f"<{address}>"]
        # A fold inside a quoted string unfolds to the same space; a backslash could
        # be left escaping the line break, so names with one are encoded instead.
        if "\\" not in name:
            quoted = ('"' + name.replace('"', '\\"') + '"').split(" ")
            if all(len(w) <= _ADDRESS_FIRST_WORD for w in quoted):
                return [*quoted, f"<{address}>"]
    return [*_encoded_words(name, _ADDRESS_FIRST_WORD), f"<{address}>"]


def format_address(name: str, address: str) -> str:
    """``Name <address>`` for a header; the name quoted or encoded as needed, never trusted.

    Printable ASCII whose words each fit on a folded line, so ``address_header`` can
    fold between them. Text that looks like an encoded word is encoded itself, and so
    shown literally.
    """
    return " ".join(_address_words(name, address))


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
        self.template = template
        self.static = [_qp(text) + b"=\r\n" for text in segments[0::2]]
        self.names = list(segments[1::2])

    def fill(self, links: Mapping[str, str], encoded: dict[str, bytes] | None = None) -> bytes:
        """The encoded part with ``links`` in place (a tracked link not given: its stand-in);
        TemplateError if one is missing. ``encoded`` keeps each link's encoding for the
        other uses of it (an article's link is in its image, headline and "Read more", and
        in the text part)."""
        parts = [self.static[0]]
        value = self.template.value
        done = {} if encoded is None else encoded
        for name, static in zip(self.names, self.static[1:], strict=True):
            link = done.get(name)
            if link is None:
                link = done[name] = _qp(value(name, links)) + b"=\r\n"
            parts.append(link)
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
        names = rendered.html.names | rendered.text.names
        #: (article id, link name) of each tracked article link: one token each per recipient.
        self.tracked_links: tuple[tuple[int, str], ...] = tuple(
            sorted((i, n) for n in names if (i := article_of(n)) is not None)
        )
        #: Whether the message carries the open pixel.
        self.has_pixel = PIXEL in names
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
        unsubscribe = recipient.links.get("unsubscribe")
        if unsubscribe is None:
            raise missing_link("unsubscribe")
        mailto = f"mailto:{self.unsubscribe_mailto}?subject={quote('unsubscribe ' + unsubscribe)}"
        head = b"".join(
            [
                # Made here, not checked by address_header: this runs per recipient.
                _fold("To", _address_words(recipient.name, recipient.email)),
                f"Date: {date or formatdate(usegmt=True)}\r\n".encode(),
                f"Message-ID: <{recipient.message_id}>\r\n".encode(),
                # Two URIs, folded onto a continuation line: https first, as
                # Gmail's one-click button wants it.
                f"List-Unsubscribe: <{unsubscribe}>,\r\n <{mailto}>\r\n".encode(),
                self._head,
            ]
        )
        encoded: dict[str, bytes] = {}
        body = b"".join(
            [
                b"\r\nThis is a multi-part message in MIME format.\r\n\r\n",
                self._part_head["plain"],
                self._encoded["plain"].fill(recipient.links, encoded),
                b"\r\n",
                self._part_head["html"],
                self._encoded["html"].fill(recipient.links, encoded),
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
            _fold("To", _address_words(to_name, to_address)),
            encode_header("Subject", subject),
            f"Date: {formatdate(usegmt=True)}\r\n".encode(),
            f"Message-ID: <{random_message_id(domain)}>\r\n".encode(),
            b"MIME-Version: 1.0\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            _qp(text),
        ]
    )


def random_message_id(domain: str) -> str:
    """A fresh Message-ID for a one-off message outside the ledger (a test copy)."""
    return f"digest.test.{secrets.token_hex(8)}@{domain}"
