"""Reading untrusted inbound mail within fixed bounds, before any structured parsing.

The stdlib ``email`` package is not safe on hostile input: with ``policy.default``
its header parser is quadratic in time and memory on folded encoded words and
parameter lists (a 432 KB Subject took 6.3 GB), its feed parser slows down
quadratically with the number of MIME parts (2 MB of empty parts: 100 s) and
recurses once per nesting level. So nothing here hands a message to it.
``read_message`` splits raw bytes into header blocks and MIME parts itself, in
one pass per nesting level, and refuses (``MessageRefused``, with the reason) a
message with a header, a header block, a part count or a nesting depth over its
``Limits`` before reading further. What comes out is raw: header values are
unfolded text, bodies still transfer-encoded; ``decoded_body``, ``decode_words``
and ``content_type`` read them further, each on a bounded slice.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from digest.errors import InputError

#: Parameters read from one header; a Content-Type has a handful, the rest are ignored.
MAX_PARAMETERS = 32
#: RFC 2046 5.1.1: a boundary is 1 to 70 characters; longer is not a boundary.
_BOUNDARY_MAX = 70
_HEADER_NAME = re.compile(rb"^[!-9;-~]{1,76}$")
# A line break that starts a new field (the next line does not begin with white space).
_FIELD_BREAK = re.compile(rb"\r?\n(?![ \t])")
_LINE_BREAK = re.compile(rb"\r?\n")
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,64}$")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(?==\?)")
# A parameter at a position: name, "=", and a quoted string (its closing quote optional, so a
# missing one cannot make the engine backtrack) or a token.
_PARAMETER = re.compile(
    r'[ \t]*([^=;\s]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"?|([^;\s"]*))', re.DOTALL
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
#: Codec names (as ``codecs.lookup`` gives them) of the charsets mail uses.
_TEXT_CODEC = re.compile(
    r"^(utf-8|utf-16(-[bl]e)?|utf-32(-[bl]e)?|ascii|latin-1|iso8859-\d+|cp\d+|koi8-[a-z]|"
    r"mac-[a-z]+|shift_jis(2004|x0213)?|euc_[a-z0-9_]+|gb2312|gbk|gb18030|big5(hkscs)?|"
    r"iso2022_[a-z0-9_]+|johab|tis-620)$"
)


class MessageRefused(InputError):
    """A message over one of the limits: nothing of it is read further. ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """What one inbound message may hold. Real reports are far inside these: a DSN quoting a
    whole digest has 7 parts, 3 levels and no header over 2 KB."""

    #: The whole message (DIGEST_INBOUND_MAX_BYTES).
    message_bytes: int = 2 * 1024 * 1024
    #: One header's value, unfolded.
    header_bytes: int = 8 * 1024
    #: One entity's header block (or one block of a delivery-status part).
    header_block_bytes: int = 64 * 1024
    #: Header fields in one block.
    headers: int = 256
    #: MIME entities in the whole message, enclosed messages included.
    parts: int = 64
    #: Levels of multipart and enclosed messages below the top.
    depth: int = 6
    #: Bytes of one body that are ever decoded (a delivery-status part, a text body).
    decoded_bytes: int = 64 * 1024


class Headers:
    """One header block: (name, raw unfolded value) pairs in their order."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.items if key.lower() == wanted]

    def get(self, name: str) -> str:
        """The first value of ``name`` with its runs of white space made one space; "" if
        absent."""
        for value in self.get_all(name):
            return " ".join(value.split())
        return ""


@dataclass(frozen=True)
class Part:
    """One MIME entity: its headers, its type, and either its raw body or what it holds (the
    parts of a multipart, the message enclosed by a message/rfc822)."""

    headers: Headers
    content_type: str
    params: dict[str, str]
    body: bytes
    children: tuple[Part, ...] = field(default=())

    def walk(self) -> Iterator[Part]:
        """This entity, then every entity below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def read_message(data: bytes, limits: Limits) -> Part:
    """The structure of ``data``, read within ``limits``; MessageRefused if over any."""
    if len(data) > limits.message_bytes:
        raise MessageRefused(f"message of {len(data)} bytes, over {limits.message_bytes}")
    budget = [limits.parts]
    return _entity(data, limits, 0, budget)


def _entity(data: bytes, limits: Limits, depth: int, budget: list[int]) -> Part:
    if depth > limits.depth:
        raise MessageRefused(f"MIME nesting deeper than {limits.depth} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise MessageRefused(f"more than {limits.parts} MIME parts")
    block, body_start = split_header_block(data, limits)
    headers = parse_header_block(block, limits)
    ctype, params = content_type(headers.get("Content-Type"))
    body = data[body_start:]
    children: tuple[Part, ...] = ()
    boundary = params.get("boundary", "")
    if ctype.startswith("multipart/") and 0 < len(boundary) <= _BOUNDARY_MAX:
        children = tuple(
            _entity(chunk, limits, depth + 1, budget)
            for chunk in _split_multipart(body, boundary.encode("utf-8", "replace"), limits)
        )
        body = b""
    elif ctype == "message/rfc822":
        children = (_entity(body, limits, depth + 1, budget),)
        body = b""
    return Part(headers, ctype, params, body, children)


def split_header_block(data: bytes, limits: Limits) -> tuple[bytes, int]:
    """(the header block, where the body starts): the block ends at the first empty line."""
    if data.startswith((b"\r\n", b"\n")):
        return b"", 2 if data.startswith(b"\r\n") else 1
    window = limits.header_block_bytes + 4
    ends = [(i, len(sep)) for sep in (b"\n\r\n", b"\n\n") if (i := data.find(sep, 0, window)) != -1]
    if ends:
        at, size = min(ends)
        if at + 1 > limits.header_block_bytes:
            raise MessageRefused(f"header block over {limits.header_block_bytes} bytes")
        return data[: at + 1], at + size
    if len(data) > limits.header_block_bytes:
        raise MessageRefused(f"header block over {limits.header_block_bytes} bytes")
    return data, len(data)


def parse_header_block(block: bytes, limits: Limits) -> Headers:
    """The fields of one header block, unfolded; a line that is not a field is skipped but
    counts towards the limit. The block is split and unfolded by regular expressions, so the
    Python work is per field (at most ``limits.headers``), not per line."""
    if len(block) > limits.header_block_bytes:
        raise MessageRefused(f"header block over {limits.header_block_bytes} bytes")
    fields = [raw for raw in _FIELD_BREAK.split(block) if raw.strip()]
    if len(fields) > limits.headers:
        raise MessageRefused(f"more than {limits.headers} header fields in one block")
    items: list[tuple[str, str]] = []
    for raw in fields:
        name, colon, value = raw.partition(b":")
        name = name.rstrip(b" \t")
        if not colon or not _HEADER_NAME.match(name):
            continue
        unfolded = _LINE_BREAK.sub(b"", value)
        if len(unfolded) > limits.header_bytes:
            raise MessageRefused(
                f"header {name[:40].decode('ascii')!r} over {limits.header_bytes} bytes"
            )
        items.append((name.decode("ascii"), unfolded.decode("utf-8", "replace").strip()))
    return Headers(items)


def _split_multipart(body: bytes, boundary: bytes, limits: Limits) -> list[bytes]:
    """The bodies between the delimiter lines of a multipart body (preamble and epilogue
    dropped). One regular-expression scan finds the delimiter lines: a body of near-misses
    (``--b`` in mid-line, ``--bb``) costs no Python per candidate."""
    delimiter = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    chunks: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            end = max(start, match.start() - 1)  # the line break before "--" is the delimiter's
            if end > start and body[end - 1 : end] == b"\r":
                end -= 1
            chunks.append(body[start:end])
            if len(chunks) > limits.parts:
                raise MessageRefused(f"more than {limits.parts} MIME parts")
        if match.group(1):
            return chunks
        start = match.end() + 1
    if start is not None and start < len(body):  # no closing delimiter: the last part runs on
        chunks.append(body[start:])
    return chunks


def content_type(value: str) -> tuple[str, dict[str, str]]:
    """(``type/subtype`` in lower case, parameters with lower-case names) of a Content-Type
    value; ``text/plain`` when absent or malformed, as RFC 2045 5.2 says."""
    main, _, rest = value.partition(";")
    ctype = "".join(main.split()).lower()
    if not _CONTENT_TYPE.match(ctype):
        ctype = "text/plain"
    return ctype, parameters(rest)


def parameters(text: str) -> dict[str, str]:
    """``name=value`` pairs after a header's first ``;`` (values quoted or not), the first of
    each name kept. Only the first MAX_PARAMETERS ``;``-separated items are read; the rest
    are ignored. Linear whatever the input: one anchored match per item, a search for the
    next ``;``, and no copies of the rest of the string."""
    params: dict[str, str] = {}
    pos, size = 0, len(text)
    for _ in range(MAX_PARAMETERS):
        if pos >= size:
            break
        match = _PARAMETER.match(text, pos)
        if match:
            quoted = match.group(2)
            value = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else match.group(3)
            params.setdefault(match.group(1).lower(), value)
            pos = match.end()
        semicolon = text.find(";", pos)
        if semicolon == -1:
            break
        pos = semicolon + 1
    return params


def decode_words(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded (white space between two words
    dropped, as the RFC says); a word that does not decode is kept as it is."""
    return _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub(r"\1", value))


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.group(1), match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        else:
            raw = binascii.a2b_qp(text.replace("_", " ").encode("ascii"), header=False)
    except ValueError:
        return match.group(0)
    return _text(raw, charset.partition("*")[0])


def _text(raw: bytes, charset: str) -> str:
    """``raw`` decoded from ``charset`` if that is a plain text encoding, else from UTF-8; bad
    bytes replaced. Codecs like punycode or unicode_escape are refused: they are no mail
    charsets, and some are slow or strict on crafted input."""
    return raw.decode(_codec(charset), "replace")


@functools.lru_cache(maxsize=64)
def _codec(charset: str) -> str:
    # Cached: a failed lookup searches the encodings package again each time, and a header
    # can hold hundreds of encoded words naming the same unknown charset.
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):
        return "utf-8"
    return name if _TEXT_CODEC.match(name) else "utf-8"


def decoded_body(part: Part, limit: int) -> bytes:
    """At most ``limit`` bytes' worth of ``part``'s body with its transfer encoding undone
    (only the first ``limit`` encoded bytes are ever read)."""
    raw = part.body[:limit]
    encoding = part.headers.get("Content-Transfer-Encoding").lower()
    if encoding == "base64":
        compact = raw.translate(None, b" \t\r\n")
        compact = compact[: len(compact) - len(compact) % 4]
        try:
            return binascii.a2b_base64(compact)
        except binascii.Error:
            return b""
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


def body_text(part: Part, limit: int) -> str:
    """``decoded_body`` as text, in the part's charset (UTF-8 when unknown)."""
    return _text(decoded_body(part, limit), part.params.get("charset", "utf-8"))
