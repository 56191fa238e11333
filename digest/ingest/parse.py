"""Parsing feed bytes (RSS, Atom) into plain, inert items with feedparser."""

from __future__ import annotations

import calendar
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import feedparser

from digest.errors import FeedError
from digest.ingest.identity import canonical_url
from digest.ingest.text import one_line, plain_text, teaser

# A date further ahead than this is a broken clock or a trick to pin a story on top.
FUTURE_TOLERANCE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class FeedItem:
    """One story as the feed told it, already reduced to plain text."""

    guid: str | None
    url: str
    headline: str
    teaser: str
    published_at: dt.datetime  # naive UTC
    image_url: str | None = None


def parse_feed(body: bytes, feed_url: str, now: dt.datetime) -> list[FeedItem]:
    """The usable items of a feed; items without a headline or an http(s) link are dropped.

    Raises FeedError when the bytes are not a feed at all.
    """
    parsed = feedparser.parse(body, response_headers={"content-location": feed_url})
    if not parsed.entries:
        problem = parsed.get("bozo_exception") if parsed.bozo else None
        # We never pass feedparser a Content-Type, so it always complains of
        # that: not a reason to reject a well-formed feed that has no items yet.
        if isinstance(problem, feedparser.NonXMLContentType):
            problem = None
        if problem is not None or not parsed.get("version"):
            reason = getattr(problem, "getMessage", None)
            detail = reason() if callable(reason) else str(problem or "no RSS or Atom feed found")
            raise FeedError(feed_url, f"not a readable feed: {detail}")
    items = []
    for entry in parsed.entries:
        item = _item(entry, feed_url, now)
        if item is not None:
            items.append(item)
    return items


def _item(entry: Any, feed_url: str, now: dt.datetime) -> FeedItem | None:
    url = canonical_url(entry.get("link", ""), feed_url)
    headline = one_line(_text_value(entry, "title"), 300)
    if not url or not headline:
        return None
    content = entry.get("content") or []
    content_html = " ".join(part.get("value", "") for part in content if isinstance(part, dict))
    guid = (entry.get("id") or "").strip()[:1000] or None
    return FeedItem(
        guid=guid,
        url=url,
        headline=headline,
        teaser=teaser(entry.get("summary"), content_html),
        published_at=_published(entry, now),
        image_url=_image(entry, feed_url),
    )


def _text_value(entry: Any, key: str) -> str:
    # feedparser hands titles over as HTML when the feed says so: reduce to text first.
    return plain_text(entry.get(key, ""))


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
    return now if when > now + FUTURE_TOLERANCE else when


def _image(entry: Any, feed_url: str) -> str | None:
    candidates: list[str] = []
    for key in ("media_content", "media_thumbnail"):
        candidates += [m.get("url", "") for m in entry.get(key) or [] if isinstance(m, dict)]
    candidates += [
        link.get("href", "")
        for link in entry.get("links") or []
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    for candidate in candidates:
        url = canonical_url(candidate, feed_url)
        if url:
            return url
    return None
