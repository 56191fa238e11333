"""Parsing feed bytes (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed 1.x) into plain, inert items.

XML goes to feedparser as bytes: it drops DOCTYPE entity declarations, so
neither billion laughs nor external entities can expand (the corpus tests
pin that). JSON Feed is read with the json module; its size was capped by
the fetch.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import feedparser

from digest.errors import FeedError
from digest.ingest.identity import canonical_url, http_url
from digest.ingest.text import one_line, plain_text, teaser

# A date further ahead than this is a broken clock or a trick to pin a story on top.
FUTURE_TOLERANCE = dt.timedelta(hours=1)
MAX_CATEGORIES = 20

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


def parse_feed(body: bytes, feed_url: str, now: dt.datetime) -> list[FeedItem]:
    """The usable items of a feed; items without a headline or an http(s) link are dropped.

    Raises FeedError when the bytes are not a feed at all.
    """
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_json_feed(body, feed_url, now)
    # No base URL for feedparser: it would resolve a bare guid such as "42"
    # into "https://site/feeds/42", the same for every feed in that folder.
    # Links and images are resolved against feed_url here instead.
    parsed = feedparser.parse(_utf8_if_misdeclared(body))
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
    return items


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
    guid = (entry.get("id") or "").strip()[:900] or None
    return FeedItem(
        guid=guid,
        url=url,
        headline=headline,
        teaser=teaser(entry.get("summary"), content_html),
        published_at=_published(entry, now),
        image_url=_image(entry, feed_url, content_html or entry.get("summary") or ""),
        categories=_categories(
            tag.get("term") or tag.get("label") for tag in entry.get("tags") or []
        ),
    )


def _text_value(entry: Any, key: str) -> str:
    # feedparser hands titles over as HTML when the feed says so: reduce to text first.
    return plain_text(entry.get(key, ""))


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


def _image(entry: Any, feed_url: str, content_html: str) -> str | None:
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
    candidates.append(first_img_src(content_html))
    for candidate in candidates:
        url = http_url(candidate, feed_url)
        if url:
            return url
    return None


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
    headline = one_line(plain_text(text("title")), 300)
    if not url or not headline:
        return None
    raw_id = entry.get("id")
    # 1.0 feeds in the wild use numbers; the spec says strings.
    guid = str(raw_id).strip()[:900] if isinstance(raw_id, str | int) else ""
    content_html = text("content_html")
    tags = entry.get("tags")
    return FeedItem(
        guid=guid or None,
        url=url,
        headline=headline,
        teaser=teaser(text("summary"), content_html or text("content_text")),
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
