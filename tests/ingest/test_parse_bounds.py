"""Parsing hostile or broken feeds: item caps, oversized fields, lenient bound, truncation."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import feedparser
import pytest

from digest.errors import FeedError
from digest.ingest.parse import FIELD_MAX_BYTES, LENIENT_MAX_TAGS, FeedItem, parse_feed

NOW = dt.datetime(2025, 2, 1, 12, 0)
FEED_URL = "https://news.example/feed.xml"


def _rss(items: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (
        f'{declaration}<rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example/</link>{items}</channel></rss>"
    ).encode()


def _item(n: int, day: int = 6, description: str = "Lead.") -> str:
    return (
        f"<item><title>Story {n}</title><link>https://news.example/{n}</link>"
        f"<pubDate>{day:02d} Jan 2025 10:00:00 GMT</pubDate>"
        f"<description>{description}</description></item>"
    )


def _peak(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and the peak of memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_only_the_newest_items_are_kept_in_feed_order() -> None:
    """A feed listing more than max_items keeps the newest by date, in the feed's order."""
    days = [10, 3, 25, 7, 18, 1, 22, 14]
    body = _rss("".join(_item(n, day) for n, day in enumerate(days)))
    items = parse_feed(body, FEED_URL, NOW, max_items=3)
    assert [item.url.rsplit("/", 1)[1] for item in items] == ["2", "4", "6"]


def test_json_feed_items_are_capped_too() -> None:
    """A JSON Feed with more items than max_items keeps the newest."""
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": str(n),
                "url": f"https://news.example/{n}",
                "title": f"Story {n}",
                "date_published": f"2025-01-{n + 1:02d}T10:00:00Z",
            }
            for n in range(20)
        ],
    }
    items = parse_feed(json.dumps(doc).encode(), FEED_URL, NOW, max_items=4)
    assert [item.headline for item in items] == [f"Story {n}" for n in (16, 17, 18, 19)]


def test_huge_escaped_markup_field_is_cut_with_bounded_memory() -> None:
    """3 MB of escaped '<a ' in one description parses to a teaser without buffering it all."""
    body = _rss(_item(1, description="Real lead. " + "&lt;a " * 1_000_000) + _item(2))
    items, peak = _peak(lambda: parse_feed(body, FEED_URL, NOW))
    assert [item.headline for item in items] == ["Story 1", "Story 2"]
    assert items[0].teaser.startswith("Real lead.")
    assert peak < 24 * 1024 * 1024


def test_huge_field_keeps_non_ascii_text_and_a_cdata_end() -> None:
    """A field cut for size keeps its text exactly, accents and a literal ']]>' included."""
    lead = "Café ]]&gt; naïve — done."
    body = _rss(_item(1, description=lead + " " + "x" * (FIELD_MAX_BYTES + 10)))
    [item] = parse_feed(body, FEED_URL, NOW)
    assert item.teaser.startswith("Café ]]> naïve — done. ")


def test_field_of_escaped_markup_reaches_feedparser_as_one_cdata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 5 KB field of entity references is handed on as CDATA, its text unchanged."""
    seen: list[bytes] = []
    real = feedparser.parse
    monkeypatch.setattr(
        feedparser, "parse", lambda body, **kw: seen.append(body) or real(body, **kw)
    )
    escaped = "&lt;b&gt;Bold&lt;/b&gt; lead " + "&lt;i&gt;x&lt;/i&gt; " * 300
    [item] = parse_feed(_rss(_item(1, description=escaped)), FEED_URL, NOW)
    assert item.teaser.startswith("Bold lead x x")
    assert b"<![CDATA[<b>Bold</b> lead <i>x</i> " in seen[0]
    assert b"&lt;" not in seen[0]


def test_not_well_formed_feed_with_too_many_tags_is_refused() -> None:
    """Broken XML with more tags than the lenient parser is given is a clear FeedError."""
    body = _rss(_item(1, description="<a " * (LENIENT_MAX_TAGS + 10)))
    with pytest.raises(FeedError, match=r"not well-formed XML .* more than the lenient parser"):
        parse_feed(body, FEED_URL, NOW)


def test_entity_declaring_feed_with_too_many_tags_is_refused() -> None:
    """A DOCTYPE declaring an entity does not let broken XML past the lenient-parser bound."""
    body = _rss(
        _item(1, description="<a " * (LENIENT_MAX_TAGS + 10)),
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e "x">]>',
    )
    with pytest.raises(FeedError, match=r"XML declaring entities with \d+ tags"):
        parse_feed(body, FEED_URL, NOW)


def test_small_not_well_formed_feed_still_parses_leniently() -> None:
    """An undefined entity in an otherwise complete feed is read by the lenient parser."""
    body = _rss(_item(1, description="Caf&eacute; &nbsp;open") + _item(2))
    items = parse_feed(body, FEED_URL, NOW)
    assert [item.headline for item in items] == ["Story 1", "Story 2"]


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_feed_is_an_error_not_fewer_items(cut: float) -> None:
    """A download that stops part-way through the XML is a FeedError saying so."""
    body = _rss("".join(_item(n) for n in range(10)))
    with pytest.raises(FeedError, match=r"truncated, the XML ends before </rss>"):
        parse_feed(body[: int(len(body) * cut)], FEED_URL, NOW)


def test_truncated_atom_feed_is_an_error() -> None:
    """An Atom document missing its closing </feed> is truncated too."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>A</title><entry><title>One</title><link href='https://a.example/1'/>"
        b"<id>urn:a:1</id></entry><entry><title>Two</title>"
    )
    with pytest.raises(FeedError, match=r"truncated, the XML ends before </feed>"):
        parse_feed(body, FEED_URL, NOW)


def test_wrongly_declared_encoding_is_harmless_when_entries_parse() -> None:
    """A complete feed declaring UTF-8 but holding Latin-1 bytes still yields its items."""
    body = _rss(_item(1, description="Caf\u00e9"), '<?xml version="1.0" encoding="utf-8"?>')
    body = body.replace("Café".encode(), "Café".encode("latin-1"))
    items: list[FeedItem] = parse_feed(body, FEED_URL, NOW)
    assert [item.headline for item in items] == ["Story 1"]
