"""parse_feed: RSS and Atom bytes into plain, inert FeedItems."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.errors import FeedError
from digest.ingest.parse import FeedItem, parse_feed
from tests.builders import atom, rss

NOW = dt.datetime(2025, 1, 10, 12, 0, 0)
FEED_URL = "https://news.example/feeds/main.xml"


def _only(items: list[FeedItem]) -> FeedItem:
    assert len(items) == 1, items
    return items[0]


def test_rss_item_parses_into_feed_item() -> None:
    """An RSS 2.0 item gives headline, teaser, canonical url, guid and naive UTC date."""
    body = rss(
        "<item><title>Council approves budget</title>"
        "<link>https://news.example/budget?utm_source=rss#top</link>"
        "<guid isPermaLink='false'>story-1</guid>"
        "<pubDate>Mon, 06 Jan 2025 10:00:00 +0500</pubDate>"
        "<description>&lt;p&gt;The council &amp;amp; the mayor agreed.&lt;/p&gt;</description>"
        "</item>"
    )
    item = _only(parse_feed(body, FEED_URL, NOW))
    assert item == FeedItem(
        guid="story-1",
        url="https://news.example/budget",
        headline="Council approves budget",
        teaser="The council & the mayor agreed.",
        published_at=dt.datetime(2025, 1, 6, 5, 0, 0),
        image_url=None,
    )
    assert item.published_at.tzinfo is None


def test_atom_entry_parses_into_feed_item() -> None:
    """An Atom 1.0 entry gives headline, teaser, url, id and naive UTC date from +05:00."""
    body = atom(
        "<entry><title>Bridge reopens</title><id>urn:story:bridge</id>"
        '<link rel="alternate" href="https://news.example/bridge"/>'
        "<published>2025-01-06T10:00:00+05:00</published>"
        "<updated>2025-01-08T00:00:00Z</updated>"
        "<summary>Traffic flows again.</summary></entry>"
    )
    item = _only(parse_feed(body, FEED_URL, NOW))
    assert item.headline == "Bridge reopens"
    assert item.teaser == "Traffic flows again."
    assert item.url == "https://news.example/bridge"
    assert item.guid == "urn:story:bridge"
    assert item.published_at == dt.datetime(2025, 1, 6, 5, 0, 0)
    assert item.published_at.tzinfo is None


def test_atom_updated_is_used_without_published() -> None:
    """An Atom entry with only <updated> is dated by it, converted to UTC."""
    body = atom(
        "<entry><title>T</title><id>urn:e</id><link href='https://news.example/e'/>"
        "<updated>2025-01-06T23:30:00-02:00</updated></entry>"
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).published_at == dt.datetime(2025, 1, 7, 1, 30)


def test_atom_teaser_falls_back_to_content() -> None:
    """An Atom entry without a summary takes its teaser from the HTML content, scripts dropped."""
    body = atom(
        "<entry><title>T</title><id>urn:e</id><link href='https://news.example/e'/>"
        "<updated>2025-01-06T10:00:00Z</updated>"
        '<content type="html">&lt;p&gt;Only the content&lt;/p&gt;'
        "&lt;script&gt;steal()&lt;/script&gt;</content></entry>"
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).teaser == "Only the content"


def test_items_without_link_or_title_are_dropped() -> None:
    """Items lacking a link, an http(s) link or a title are left out; the good one stays."""
    body = rss(
        "<item><title>No link here</title><guid>urn:a</guid></item>",
        "<item><link>https://news.example/untitled</link></item>",
        "<item><title>   </title><link>https://news.example/blank-title</link></item>",
        "<item><title>Script link</title><link>javascript:alert(1)</link></item>",
        "<item><title>Mail link</title><link>mailto:a@news.example</link></item>",
        "<item><title>Good</title><link>https://news.example/good</link></item>",
    )
    items = parse_feed(body, FEED_URL, NOW)
    assert [i.headline for i in items] == ["Good"]


def test_relative_link_resolves_against_feed_url() -> None:
    """A relative item link is resolved against the feed's own URL."""
    body = rss("<item><title>Rel</title><link>../stories/9</link></item>")
    assert _only(parse_feed(body, FEED_URL, NOW)).url == "https://news.example/stories/9"


def test_missing_date_is_now() -> None:
    """An item without any date is dated ``now``."""
    body = rss("<item><title>Undated</title><link>https://news.example/u</link></item>")
    assert _only(parse_feed(body, FEED_URL, NOW)).published_at == NOW


def test_unparseable_date_is_now() -> None:
    """A date feedparser cannot read counts as missing."""
    body = rss(
        "<item><title>T</title><link>https://news.example/u</link>"
        "<pubDate>sometime next week</pubDate></item>"
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).published_at == NOW


def test_far_future_date_is_clamped_to_now() -> None:
    """A date years ahead cannot pin a story on top: it becomes ``now``."""
    body = rss(
        "<item><title>From the future</title><link>https://news.example/f</link>"
        "<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>"
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).published_at == NOW


def test_slightly_future_date_within_tolerance_is_kept() -> None:
    """A clock a few minutes fast is tolerated: the date is kept as given."""
    body = rss(
        "<item><title>Fast clock</title><link>https://news.example/f</link>"
        "<pubDate>Fri, 10 Jan 2025 12:30:00 GMT</pubDate></item>"
    )
    published = _only(parse_feed(body, FEED_URL, NOW)).published_at
    assert published == dt.datetime(2025, 1, 10, 12, 30)


def test_title_with_markup_and_line_breaks_becomes_one_plain_line() -> None:
    """A title with <b> markup, CR/LF and a would-be header is one line of plain text."""
    body = rss(
        "<item><title>&lt;b&gt;Big&lt;/b&gt; news&#13;&#10;Bcc: victim@example.com</title>"
        "<link>https://news.example/big</link></item>"
    )
    headline = _only(parse_feed(body, FEED_URL, NOW)).headline
    assert headline == "Big news Bcc: victim@example.com"
    assert "\r" not in headline
    assert "\n" not in headline
    assert "<" not in headline


def test_atom_html_title_is_plain_text() -> None:
    """An Atom title of type html loses its tags and has entities decoded."""
    body = atom(
        '<entry><title type="html">&lt;i&gt;Rock&lt;/i&gt; &amp;amp; roll</title><id>urn:e</id>'
        "<link href='https://news.example/r'/><updated>2025-01-06T10:00:00Z</updated></entry>"
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).headline == "Rock & roll"


def test_very_long_title_is_bounded() -> None:
    """A headline is cut to at most 300 characters."""
    body = rss(f"<item><title>{'word ' * 200}</title><link>https://news.example/l</link></item>")
    assert len(_only(parse_feed(body, FEED_URL, NOW)).headline) <= 300


def test_media_content_image_is_picked_up() -> None:
    """A media:content URL becomes the item's image, its query kept as written (signed URLs)."""
    body = rss(
        "<item><title>Pictured</title><link>https://news.example/p</link>"
        '<media:content url="https://img.example/p.jpg?w=300&amp;sig=a%2Fb" medium="image" '
        'type="image/jpeg"/></item>'
    )
    assert (
        _only(parse_feed(body, FEED_URL, NOW)).image_url
        == "https://img.example/p.jpg?w=300&sig=a%2Fb"
    )


def test_image_enclosure_is_picked_up() -> None:
    """An image enclosure is used when there is no media:content."""
    body = rss(
        "<item><title>Enclosed</title><link>https://news.example/e</link>"
        '<enclosure url="https://img.example/e.png" type="image/png" length="100"/></item>'
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).image_url == "https://img.example/e.png"


def test_non_http_image_is_ignored() -> None:
    """An image URL that is not http(s) is not used."""
    body = rss(
        "<item><title>Sneaky</title><link>https://news.example/s</link>"
        '<media:content url="javascript:alert(1)" medium="image"/></item>'
    )
    assert _only(parse_feed(body, FEED_URL, NOW)).image_url is None


def test_malformed_item_link_does_not_break_the_feed() -> None:
    """An item whose link has an impossible port is dropped; the rest of the feed is kept."""
    body = rss(
        "<item><title>Bad port</title><link>http://news.example:99999/x</link></item>",
        "<item><title>Fine</title><link>https://news.example/fine</link></item>",
    )
    assert [i.headline for i in parse_feed(body, FEED_URL, NOW)] == ["Fine"]


@pytest.mark.parametrize(
    "body",
    [
        b"this is not a feed at all",
        b"\x00\x01\x02\xff\xfe binary",
        b'{"version": "not a feed"}',
        b"<html><body><p>Welcome to my homepage</p></body></html>",
        b'<?xml version="1.0"?><note><to>Tove</to></note>',
        b"",
        b'<rss version="2.0"><channel><title>cut off',
    ],
)
def test_bytes_that_are_not_a_feed_raise_feed_error(body: bytes) -> None:
    """Bytes that are not an RSS or Atom feed raise FeedError naming the feed URL."""
    with pytest.raises(FeedError) as info:
        parse_feed(body, FEED_URL, NOW)
    assert info.value.url == FEED_URL
    assert "not a readable feed" in info.value.reason


def test_well_formed_feed_without_items_is_empty_not_an_error() -> None:
    """A valid RSS or Atom feed that has no items yet parses to an empty list."""
    assert parse_feed(rss(), FEED_URL, NOW) == []
    assert parse_feed(atom(), FEED_URL, NOW) == []
