"""The feed corpus in tests/data/feeds: each feed parses to its golden items, and all stay inert.

Set DIGEST_REGEN_GOLDEN=1 to rewrite the ``<feed>.expected.json`` files, then
review them as a diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from digest.errors import FeedError
from digest.ingest.parse import FeedItem, parse_feed

CORPUS = Path(__file__).resolve().parents[1] / "data" / "feeds"
FEEDS = sorted(p for p in CORPUS.iterdir() if not p.name.endswith(".expected.json"))
NOW = dt.datetime(2025, 1, 10, 12, 0, 0)
REGEN = os.environ.get("DIGEST_REGEN_GOLDEN") == "1"
# What no headline may carry into a Subject line.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _feed_url(path: Path) -> str:
    return f"https://corpus.example/feeds/{path.name}"


def _outcome(path: Path) -> dict[str, Any]:
    """The parse of one corpus file as the JSON the golden file holds."""
    try:
        items = parse_feed(path.read_bytes(), _feed_url(path), NOW)
    except FeedError as exc:
        return {"error": exc.reason}
    return {"items": [_as_json(item) for item in items]}


def _as_json(item: FeedItem) -> dict[str, Any]:
    published = "now" if item.published_at == NOW else item.published_at.isoformat()
    return {
        "headline": item.headline,
        "url": item.url,
        "teaser": item.teaser,
        "published_at": published,
        "image_url": item.image_url,
        "guid": item.guid,
        "categories": list(item.categories),
    }


def test_corpus_has_at_least_forty_feeds_each_with_a_golden_file() -> None:
    """The corpus holds 40+ feeds and every one has its expectation beside it."""
    assert len(FEEDS) >= 40
    missing = [p.name for p in FEEDS if not Path(f"{p}.expected.json").exists() and not REGEN]
    assert missing == []


@pytest.mark.parametrize("path", FEEDS, ids=[p.name for p in FEEDS])
def test_corpus_feed_parses_to_its_golden_items(path: Path) -> None:
    """Each corpus feed gives exactly the items (or the error) its golden file records."""
    golden = Path(f"{path}.expected.json")
    outcome = _outcome(path)
    if REGEN:
        golden.write_text(json.dumps(outcome, indent=1, ensure_ascii=False) + "\n")
    assert outcome == json.loads(golden.read_text())


def test_every_corpus_item_is_inert() -> None:
    """No corpus item has a header-breaking headline, markup in text, or a non-http(s) link."""
    checked = 0
    for path in FEEDS:
        try:
            items = parse_feed(path.read_bytes(), _feed_url(path), NOW)
        except FeedError:
            continue
        for item in items:
            checked += 1
            assert item.headline and not _UNSAFE_IN_HEADER.search(item.headline), path.name
            assert len(item.headline) <= 300
            assert not _UNSAFE_IN_HEADER.search(item.teaser)
            assert not re.search(r"<\s*(script|iframe|img|style|a|form)\b", item.teaser, re.I)
            assert len(item.teaser) <= 200
            assert item.url.startswith(("https://", "http://")), path.name
            assert item.image_url is None or item.image_url.startswith(("https://", "http://"))
            assert item.published_at <= NOW + dt.timedelta(hours=1)
            for value in (item.headline, item.teaser, item.guid or ""):
                assert "root:" not in value and "/bin/" not in value, path.name
    assert checked > 80


def test_xxe_feed_reads_no_file() -> None:
    """An external entity naming /etc/passwd puts nothing of that file into any field."""
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    for name in ("xxe-file.xml", "xxe-parameter-entity.xml"):
        items = parse_feed((CORPUS / name).read_bytes(), "https://x.example/", NOW)
        assert items, name
        for item in items:
            assert passwd not in repr(item)
            assert "root:" not in repr(item)


@pytest.mark.parametrize("name", ["billion-laughs.xml", "quadratic-blowup.xml"])
def test_entity_expansion_is_fast_and_small(name: str) -> None:
    """Nested or repeated entities are not expanded: under a second and a few MB at most."""
    body = (CORPUS / name).read_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        items = parse_feed(body, "https://x.example/", NOW)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert items
    assert elapsed < 1.0
    assert peak < 16 * 1024 * 1024
    assert all("lollollol" not in item.headline + item.teaser for item in items)


def test_huge_feed_parses_in_bounded_time() -> None:
    """A 5,000-item feed of about 3 MB parses completely (cap raised) in a few seconds."""
    items = "".join(
        f"<item><title>Story {n}</title><link>https://huge.example/{n}</link>"
        f"<guid>https://huge.example/{n}</guid><pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate>"
        f"<description>{'Paragraph text. ' * 30}</description></item>"
        for n in range(5000)
    )
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>'
        f"<link>https://huge.example/</link>{items}</channel></rss>"
    ).encode()
    assert len(body) > 2_500_000
    started = time.perf_counter()
    parsed = parse_feed(body, "https://huge.example/feed", NOW, max_items=5000)
    assert time.perf_counter() - started < 15
    assert len(parsed) == 5000
    assert parsed[-1].url == "https://huge.example/4999"
