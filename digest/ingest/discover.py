"""Finding a feed from what an operator pasted: the ``<link rel="alternate">`` feeds an HTML
page announces, and a feed's own title (to name a source by). Pure: the fetching is
``fetch``'s, with its limits, done by the caller."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urljoin

import feedparser

from digest.ingest.fetch import is_http_url
from digest.ingest.text import one_line, plain_text

__all__ = ["FEED_TYPES", "TITLE_LENGTH", "feed_links", "feed_title", "looks_like_html"]

#: The types of ``<link rel="alternate" type=...>`` that announce a feed, in order of
#: preference when a page offers several kinds.
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
#: Longest name a feed's title gives a source.
TITLE_LENGTH = 100
#: Most feed links read from one page: a page listing thousands is not asked about them all.
MAX_LINKS = 50


class _FeedLinks(HTMLParser):
    """Collects the feed links of a page's ``<link>`` elements (wherever they stand: a page
    with a broken ``<head>`` still announces its feeds)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link" or len(self.found) >= MAX_LINKS:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        rel = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        href = values.get("href", "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            self.found.append((kind, href))


def looks_like_html(body: bytes) -> bool:
    """Whether ``body`` starts like an HTML page rather than a feed."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def feed_links(page: bytes, page_url: str) -> list[str]:
    """The feeds ``page`` (HTML from ``page_url``, after redirects) announces, as absolute
    http(s) URLs: RSS first, then Atom, then JSON Feed, each in page order, none twice."""
    parser = _FeedLinks()
    try:
        parser.feed(page.decode("utf-8", errors="replace"))
        parser.close()
    except AssertionError:  # html.parser's own complaint about some malformed markup
        pass
    ranked = sorted(
        enumerate(parser.found), key=lambda item: (FEED_TYPES.index(item[1][0]), item[0])
    )
    links: list[str] = []
    for _, (_, href) in ranked:
        try:
            url = urljoin(page_url, href)
        except ValueError:
            continue
        if is_http_url(url) and url not in links and not any(c in url for c in "\r\n\t "):
            links.append(url)
    return links


def feed_title(body: bytes) -> str:
    """A feed's title as plain text on one line, at most ``TITLE_LENGTH`` characters ("" if it
    has none). Call it on a body ``parse_feed`` has accepted: its limits have run."""
    title: object = ""
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        try:
            doc = json.loads(body.decode("utf-8-sig", errors="replace"))
        except (ValueError, RecursionError):
            return ""
        title = doc.get("title", "") if isinstance(doc, dict) else ""
    else:
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
        title = parsed.feed.get("title", "")
    # Feed text: markup dropped, entities decoded, controls and bidi overrides removed.
    return one_line(plain_text(title), TITLE_LENGTH) if isinstance(title, str) else ""
