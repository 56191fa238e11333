"""Finding a feed from a web page's address, and naming a source by its feed's title."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from digest.ingest.discover import TITLE_LENGTH, feed_links, feed_title, looks_like_html
from tests.builders import atom, rss
from tests.ingest.feedserver import feed_server
from tests.ingest.test_cli_sources import run  # noqa: F401 - the fixture

Run = Callable[..., Result]


@pytest.mark.unit
def test_feed_links_resolved_ranked_and_only_web_addresses() -> None:
    """RSS before Atom before JSON Feed, relative links resolved against the page, other rels,
    types and schemes ignored, none twice."""
    page = b"""<!doctype html><html><head>
      <link rel="alternate" type="application/atom+xml" href="/atom">
      <link rel="stylesheet" type="application/rss+xml" href="/not-alternate">
      <link rel="alternate" type="text/html" href="/fr/">
      <link rel="Alternate" type="application/rss+xml; charset=utf-8" href="feed/">
      <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
      <link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">
      <link rel="alternate" type="application/rss+xml" href="feed/">
    </head></html>"""
    assert feed_links(page, "https://news.example/world/index.html") == [
        "https://news.example/world/feed/",
        "https://news.example/atom",
        "https://cdn.example/f.json",
    ]
    assert feed_links(b"<html><p>no head", "https://news.example/") == []
    assert looks_like_html(page) and not looks_like_html(rss())


@pytest.mark.unit
def test_feed_title_is_plain_text_and_capped() -> None:
    """Markup and entities in a feed's title come out as plain text on one line, cut to the
    length a name may have; JSON Feed titles too."""
    assert feed_title(rss(title="Dawn &amp;amp; Co &lt;b&gt;News&lt;/b&gt;")) == "Dawn & Co News"
    assert feed_title(atom(title="World\nNews")) == "World News"
    long = feed_title(rss(title="word " * 100))
    assert 0 < len(long) <= TITLE_LENGTH
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "JSON\u202e Site", "items": []}
    assert feed_title(json.dumps(doc).encode()) == "JSON Site"
    assert feed_title(rss(title="")) == ""


def test_sources_add_on_a_page_finds_its_feed_and_its_title(run: Run) -> None:  # noqa: F811
    """`sources add PAGE` says which feed the page announces, stores that feed, and names the
    source by the feed's title."""
    with feed_server() as base:
        result = run(
            "sources", "add", f"{base}/news/page.html", "--section", "national", "--allow-private"
        )
    assert f"found the feed {base}/feed.xml on {base}/news/page.html" in result.output
    assert "(Loopback) -> national" in result.output
    listing = run("sources", "list").output
    assert "Loopback" in listing
    # An own name wins over the title.
    with feed_server() as base:
        named = run("sources", "add", f"{base}/feed.xml", "--section", "national",
                    "--allow-private", "--name", "Mine")  # fmt: skip
    assert "(Mine)" in named.output


def test_a_page_announcing_no_feed_or_on_a_private_address_is_said(run: Run) -> None:  # noqa: F811
    """A page with no feed link is a warning (refused with --strict); without --allow-private
    the loopback page is not fetched at all."""
    with feed_server() as base:
        bare = run("sources", "add", f"{base}/news/bare.html", "--section", "national",
                   "--strict", "--allow-private", status=1)  # fmt: skip
        assert "announces no feed" in bare.output
        refused = run("sources", "add", f"{base}/news/page.html", "--section", "national")
    assert "found the feed" not in refused.output
    assert "refused" in refused.output
