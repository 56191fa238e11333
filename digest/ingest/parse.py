"""Parsing feed bytes (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed 1.x) into plain, inert items.

XML goes to feedparser as bytes: it drops DOCTYPE entity declarations, so
neither billion laughs nor external entities can expand (the corpus tests
pin that). JSON Feed is read with the json module; its size was capped by
the fetch.

Bounds, because a feed is untrusted and feedparser is pure Python:

- feedparser's own HTML sanitizer and URI resolver are off: every field is
  reduced to plain text by nh3 here anyway, and on a megabyte of ``<a `` the
  sanitizer alone took minutes.
- Before feedparser, expat (C) reads the document once. A document that
  stops before its root element closes is a truncated download, an error.
  Of a well-formed one only the ``max_items`` newest items are handed on,
  and a field over ``FIELD_MAX_BYTES``, or a long one written mostly as
  entity references, is handed on as at most ``FIELD_MAX_CHARS`` of its
  text in CDATA: feedparser's SAX handlers run once per entity reference,
  and a field of escaped markup can have millions.
- A document expat cannot read goes to feedparser's lenient parser, which
  costs ~13 µs per tag: one with more than ``LENIENT_MAX_TAGS`` tags is
  refused instead.
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import json
import re
import time
import xml.parsers.expat
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from digest.errors import FeedError
from digest.ingest.identity import canonical_url, http_url
from digest.ingest.text import one_line, plain_text, teaser

# A date further ahead than this is a broken clock or a trick to pin a story on top.
FUTURE_TOLERANCE = dt.timedelta(hours=1)
MAX_CATEGORIES = 20
#: Items kept from one feed by default (the newest): ``Settings.ingest_max_items``.
MAX_ITEMS = 1000
#: A field (title, summary, content) longer than this in the document is cut to its text.
FIELD_MAX_BYTES = 64 * 1024
#: Characters of a field's text kept: a teaser needs 200, the first image is near the top.
FIELD_MAX_CHARS = 20_000
#: A field at least this long whose text is under half its bytes is handed on as CDATA.
DENSE_MIN_BYTES = 2048
#: Tags a document that is not well-formed XML may have for the lenient parser to try it.
LENIENT_MAX_TAGS = 50_000
_NOT_OURS = frozenset(
    {
        xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_UNKNOWN_ENCODING],
        xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_INCORRECT_ENCODING],
    }
)
_ITEM_NAMES = frozenset({"item", "entry"})
_DATE_NAMES = frozenset({"pubdate", "published", "updated", "date", "issued", "modified"})
# The rest of a start tag after its name: attributes, with ">" allowed inside quotes.
_START_TAG_REST = re.compile(rb"""(?:[^>"']+|"[^"]*"|'[^']*')*>""")

_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
# The encoding an XML declaration names, within the declaration itself.
_XML_DECLARED = re.compile(
    rb"""^(\s*<\?xml[^>]{0,200}?encoding\s*=\s*["'])([A-Za-z0-9._-]{1,40})"""
)
# Single-byte encodings decode any bytes at all, so a feed wrongly declaring
# one is never caught by a decoding error: it silently becomes mojibake.
_SINGLE_BYTE = re.compile(
    rb"^(iso-?8859-\d+|latin-?\d|windows-125\d|cp125\d|us-ascii|ascii)$", re.I
)


@dataclass(frozen=True)
class FeedItem:
    """One story as the feed told it, already reduced to plain text."""

    guid: str | None
    url: str
    headline: str
    teaser: str
    published_at: dt.datetime  # naive UTC
    image_url: str | None = None
    categories: tuple[str, ...] = field(default=())


def parse_feed(
    body: bytes, feed_url: str, now: dt.datetime, *, max_items: int = MAX_ITEMS
) -> list[FeedItem]:
    """The usable items of a feed, at most ``max_items`` (the newest), in feed order.

    Items without a headline or an http(s) link are dropped. Raises FeedError
    when the bytes are not a feed at all, or a truncated one.
    """
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _newest(_parse_json_feed(body, feed_url, now), max_items)
    body = _utf8_if_misdeclared(body)
    scan = _Scan(body)
    if scan.error is not None:
        if scan.truncated():
            raise FeedError(
                feed_url,
                f"not a readable feed: truncated, the XML ends before </{scan.root}> "
                f"({scan.error})",
            )
        _refuse_if_many_tags(body, feed_url, f"not well-formed XML ({scan.error})")
    elif scan.declares_entities:
        # Not read by expat, so not known to be well-formed: the same bound.
        _refuse_if_many_tags(body, feed_url, "XML declaring entities")
    elif scan.complete:
        body = scan.bounded(max_items)
    # No base URL for feedparser: it would resolve a bare guid such as "42"
    # into "https://site/feeds/42", the same for every feed in that folder.
    # Links and images are resolved against feed_url here instead.
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.entries:
        problem = parsed.get("bozo_exception") if parsed.bozo else None
        # We never pass feedparser a Content-Type, so it always complains of
        # that: not a reason to reject a well-formed feed that has no items yet.
        if isinstance(problem, feedparser.NonXMLContentType):
            problem = None
        if problem is not None or not parsed.get("version"):
            reason = getattr(problem, "getMessage", None)
            detail = reason() if callable(reason) else str(problem or "no RSS or Atom feed found")
            raise FeedError(feed_url, f"not a readable feed: {one_line(detail, 200)}")
    items = []
    for entry in parsed.entries:
        item = _item(entry, feed_url, now)
        if item is not None:
            items.append(item)
    return _newest(items, max_items)


def _refuse_if_many_tags(body: bytes, feed_url: str, what: str) -> None:
    tags = body.count(b"<")
    if tags > LENIENT_MAX_TAGS:
        raise FeedError(
            feed_url,
            f"not a readable feed: {what} with {tags} tags, more than the lenient parser is given",
        )


def _newest(items: list[FeedItem], limit: int) -> list[FeedItem]:
    """At most ``limit`` items, the newest by date (ties: earlier in the feed), in feed order."""
    if len(items) <= limit:
        return items
    ranked = sorted(range(len(items)), key=lambda i: (items[i].published_at, -i), reverse=True)
    keep = set(ranked[: max(limit, 0)])
    return [item for i, item in enumerate(items) if i in keep]


class _Refused(Exception):
    """The document declares entities: expat is not let near it (feedparser drops them)."""


@dataclass
class _Span:
    start: int
    end: int = 0
    date: str = ""
    # (content start, content end, text) of fields too long to hand on whole.
    cuts: list[tuple[int, int, str]] = field(default_factory=list)


class _Scan:
    """One pass of expat over the document: where each item is, its date, its oversized fields.

    ``error`` is expat's complaint when the document is not well-formed;
    ``complete`` is False when the pass could not tell (entity declarations,
    an encoding that is not ASCII-compatible): the document is then handed
    to feedparser as it is.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.root: str | None = None
        self.error: str | None = None
        self.complete = False
        self.declares_entities = False
        self.items: list[_Span] = []
        self._depth = 0
        self._item_depth = 0  # depth of the item being read; 0: outside any item
        self._field_start = 0
        self._field_text: list[str] = []
        self._field_size = 0
        self._field_leaf = True
        self._parser = xml.parsers.expat.ParserCreate()
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._parser.EntityDeclHandler = self._refuse
        try:
            self._parser.Parse(body, True)
        except xml.parsers.expat.ExpatError as exc:
            if exc.code not in _NOT_OURS:
                self.error = xml.parsers.expat.ErrorString(exc.code)
        except _Refused:
            self.declares_entities = True
        except (LookupError, ValueError):
            # An encoding expat cannot read (multi-byte, unknown): feedparser
            # converts those to UTF-8 itself and reads them its own way.
            return
        else:
            self.complete = self.root is not None and _ascii_compatible(body)

    def _refuse(self, *_: Any) -> None:
        raise _Refused

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self.root is None:
            self.root = name
        if self._item_depth == 0:
            if name.rsplit(":", 1)[-1].lower() in _ITEM_NAMES and self._depth > 1:
                self._item_depth = self._depth
                self.items.append(_Span(self._parser.CurrentByteIndex))
        elif self._depth == self._item_depth + 1:
            self._field_start = self._parser.CurrentByteIndex
            self._field_text = []
            self._field_size = 0
            self._field_leaf = True
        else:
            self._field_leaf = False  # markup such as Atom's xhtml content: kept as markup

    def _text(self, data: str) -> None:
        inside = self._item_depth and self._depth > self._item_depth
        if inside and self._field_size < FIELD_MAX_CHARS:
            self._field_text.append(data[: FIELD_MAX_CHARS - self._field_size])
            self._field_size += len(data)

    def _end(self, name: str) -> None:
        at = self._parser.CurrentByteIndex
        if self._item_depth and self._depth == self._item_depth + 1:
            span = self.items[-1]
            local = name.rsplit(":", 1)[-1].lower()
            if local in _DATE_NAMES and not span.date:
                span.date = "".join(self._field_text)[:100]
            size = at - self._field_start
            # Text written mostly as references (escaped markup: "&lt;a &lt;a ...")
            # costs feedparser one call per reference; as CDATA it costs one.
            dense = self._field_leaf and size > DENSE_MIN_BYTES and size > 2 * self._field_size
            if size > FIELD_MAX_BYTES or dense:
                tag = _START_TAG_REST.match(self.body, self._field_start + 1 + len(name))
                if tag is not None and tag.end() <= at:
                    span.cuts.append((tag.end(), at, "".join(self._field_text)))
        elif self._item_depth and self._depth == self._item_depth:
            self.items[-1].end = self.body.index(b">", at) + 1
            self._item_depth = 0
        self._depth -= 1

    def truncated(self) -> bool:
        """True when the document stops before its root element's end tag."""
        if self.root is None or not _ascii_compatible(self.body):
            return False  # not XML at all, or bytes this check cannot read: not for us to say
        tail = self.body[-4096:].rstrip()
        closing = re.compile(
            rb"</\s*" + re.escape(self.root.encode()) + rb"\s*>(?:\s*<!--.*?-->|\s*<\?.*?\?>)*$",
            re.S,
        )
        return closing.search(tail) is None and not tail.endswith(b"/>")

    def bounded(self, max_items: int) -> bytes:
        """The document with only the newest ``max_items`` items and oversized fields cut."""
        keep = set(range(len(self.items)))
        if len(self.items) > max_items:
            dated = [(_scan_date(span.date), -i, i) for i, span in enumerate(self.items)]
            keep = {i for *_, i in sorted(dated, reverse=True)[: max(max_items, 0)]}
        edits: list[tuple[int, int, bytes]] = []
        for i, span in enumerate(self.items):
            if i not in keep:
                edits.append((span.start, span.end, b""))
            else:
                edits += [(start, end, _cdata(text)) for start, end, text in span.cuts]
        if not edits:
            return self.body
        out, position = [], 0
        for start, end, replacement in edits:
            out += [self.body[position:start], replacement]
            position = end
        out.append(self.body[position:])
        return b"".join(out)


def _ascii_compatible(body: bytes) -> bool:
    """True unless the bytes look like UTF-16 or UTF-32 (NULs or a BOM at the start)."""
    head = body[:4]
    return b"\x00" not in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _cdata(text: str) -> bytes:
    """Text as a CDATA section of ASCII bytes, valid in any ASCII-compatible document encoding."""
    # Non-ASCII cannot be written as a character reference inside CDATA, and the
    # document's encoding is not known here: such characters end the section,
    # go in as references, and a new section starts.
    safe = text.replace("]]>", "]]]]><![CDATA[>")
    parts = []
    for chunk in re.split(r"([^\x00-\x7f]+)", safe):
        if chunk and chunk.isascii():
            parts.append(b"<![CDATA[" + chunk.encode() + b"]]>")
        elif chunk:
            parts.append(chunk.encode("ascii", "xmlcharrefreplace"))
    return b"".join(parts)


def _scan_date(text: str) -> dt.datetime:
    """An item's date for ranking: RFC 822 or ISO 8601; undated items count as newest."""
    text = text.strip()
    if not text:
        return dt.datetime.max
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return dt.datetime.max
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def _utf8_if_misdeclared(body: bytes) -> bytes:
    """The body with its declaration corrected when it claims a single-byte charset but is UTF-8.

    WordPress sites moved to UTF-8 often keep declaring ISO-8859-1; non-ASCII
    bytes that happen to form valid UTF-8 are practically never Latin text.
    """
    match = _XML_DECLARED.match(body)
    if not match or not _SINGLE_BYTE.match(match.group(2)) or body.isascii():
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    return body[: match.start(2)] + b"utf-8" + body[match.end(2) :]


def _item(entry: Any, feed_url: str, now: dt.datetime) -> FeedItem | None:
    # FeedBurner-style proxies put the story's own address in origLink; the
    # proxy link would make the same story look different in every feed.
    url = canonical_url(entry.get("feedburner_origlink", ""), feed_url) or canonical_url(
        entry.get("link", ""), feed_url
    )
    headline = one_line(_text_value(entry, "title"), 300)
    if not url or not headline:
        return None
    content = entry.get("content") or []
    content_html = " ".join(part.get("value", "") for part in content if isinstance(part, dict))
    # A lenient parse or a JSON Feed can still bring a huge field: text extraction
    # costs in proportion to what it is given, and a teaser needs only its start.
    content_html = content_html[:FIELD_MAX_CHARS]
    summary = str(entry.get("summary") or "")[:FIELD_MAX_CHARS]
    guid = (entry.get("id") or "").strip()[:900] or None
    return FeedItem(
        guid=guid,
        url=url,
        headline=headline,
        teaser=teaser(summary, content_html),
        published_at=_published(entry, now),
        image_url=_image(entry, feed_url, content_html or summary, _markup_base(entry, feed_url)),
        categories=_categories(
            tag.get("term") or tag.get("label") for tag in entry.get("tags") or []
        ),
    )


def _text_value(entry: Any, key: str) -> str:
    # feedparser hands titles over as HTML when the feed says so: reduce to text first.
    return plain_text(str(entry.get(key, ""))[:FIELD_MAX_CHARS])


def _categories(terms: Any) -> tuple[str, ...]:
    names = (one_line(plain_text(str(term)), 100) for term in terms if term)
    return tuple(dict.fromkeys(name for name in names if name))[:MAX_CATEGORIES]


def _published(entry: Any, now: dt.datetime) -> dt.datetime:
    """The item's date in naive UTC; first-seen time when missing, clamped when in the future."""
    # Look the keys up in the dict itself: feedparser's own fallback from
    # published to updated warns on every item that lacks a published date.
    stamp: time.struct_time | None = dict.get(entry, "published_parsed") or dict.get(
        entry, "updated_parsed"
    )
    if not stamp:
        return now
    try:
        when = dt.datetime.fromtimestamp(calendar.timegm(stamp), dt.UTC).replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        return now
    return _clamped(when, now)


def _clamped(when: dt.datetime, now: dt.datetime) -> dt.datetime:
    return now if when > now + FUTURE_TOLERANCE else when


def _markup_base(entry: Any, feed_url: str) -> str:
    """What an <img> in the entry's markup is relative to: its xml:base, else the feed's URL.

    feedparser's own resolving of markup is off (it re-parses every field), so
    the base it tracked is applied here, to the one URL we take from markup.
    """
    parts = entry.get("content") or []
    detail = parts[0] if parts and isinstance(parts[0], dict) else entry.get("summary_detail")
    base = detail.get("base") if isinstance(detail, dict) else None
    return urljoin(feed_url, base) if isinstance(base, str) and base else feed_url


def _image(entry: Any, feed_url: str, content_html: str, markup_base: str) -> str | None:
    """The lead image: media:content, media:thumbnail, an image enclosure, else the first <img>."""
    candidates: list[str] = []
    for media in entry.get("media_content") or []:
        if not isinstance(media, dict):
            continue
        kind = str(media.get("medium") or media.get("type") or "image")
        if kind.startswith("image"):  # a video's media:content is not a picture
            candidates.append(media.get("url", ""))
    candidates += [
        m.get("url", "") for m in entry.get("media_thumbnail") or [] if isinstance(m, dict)
    ]
    candidates += [
        link.get("href", "")
        for link in entry.get("links") or []
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    for candidate in candidates:
        url = http_url(candidate, feed_url)
        if url:
            return url
    return http_url(first_img_src(content_html), markup_base)


class _FirstImage(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.src = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and not self.src:
            self.src = dict(attrs).get("src") or ""


def first_img_src(markup: str) -> str:
    """The src of the first <img> in ``markup``, or ""; nothing is fetched or rendered."""
    if "<img" not in markup.lower():
        return ""
    finder = _FirstImage()
    finder.feed(markup)
    finder.close()
    return finder.src


# -- JSON Feed ------------------------------------------------------------------------


def _parse_json_feed(body: bytes, feed_url: str, now: dt.datetime) -> list[FeedItem]:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1) items as FeedItems."""
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        # RecursionError: "[[[[...]]]]" nested beyond the interpreter's stack.
        raise FeedError(feed_url, f"not a readable feed: bad JSON ({type(exc).__name__})") from exc
    if not (
        isinstance(doc, dict)
        and str(doc.get("version", "")).startswith(_JSON_FEED_VERSION)
        and isinstance(doc.get("items", []), list)
    ):
        raise FeedError(feed_url, "not a readable feed: JSON but not a JSON Feed")
    items = []
    for entry in doc.get("items") or []:
        if isinstance(entry, dict):
            item = _json_item(entry, feed_url, now)
            if item is not None:
                items.append(item)
    return items


def _json_item(entry: dict[str, Any], feed_url: str, now: dt.datetime) -> FeedItem | None:
    def text(key: str) -> str:
        value = entry.get(key)
        return value if isinstance(value, str) else ""

    url = canonical_url(text("url") or text("external_url"), feed_url)
    headline = one_line(plain_text(text("title")[:FIELD_MAX_CHARS]), 300)
    if not url or not headline:
        return None
    raw_id = entry.get("id")
    # 1.0 feeds in the wild use numbers; the spec says strings.
    guid = str(raw_id).strip()[:900] if isinstance(raw_id, str | int) else ""
    content_html = text("content_html")[:FIELD_MAX_CHARS]
    tags = entry.get("tags")
    return FeedItem(
        guid=guid or None,
        url=url,
        headline=headline,
        teaser=teaser(
            text("summary")[:FIELD_MAX_CHARS],
            content_html or text("content_text")[:FIELD_MAX_CHARS],
        ),
        published_at=_json_date(text("date_published") or text("date_modified"), now),
        image_url=next(
            filter(
                None,
                (
                    http_url(text("image"), feed_url),
                    http_url(text("banner_image"), feed_url),
                    http_url(first_img_src(content_html), feed_url),
                ),
            ),
            None,
        ),
        categories=_categories(t for t in tags if isinstance(t, str))
        if isinstance(tags, list)
        else (),
    )


def _json_date(value: str, now: dt.datetime) -> dt.datetime:
    """An RFC 3339 date as naive UTC; first-seen time when missing or unreadable."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return now
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return _clamped(when, now)
