"""Ingest runs: backoff of failing sources, identity choices, category maps, private addresses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.errors import InputError, NotFoundError
from digest.ingest.run import backoff, ingest_all, ingest_source, parse_category_map
from digest.service.catalog import add_section, add_source
from digest.store.db import Database
from digest.store.models import Article, Section, Source
from tests.builders import rss
from tests.ingest.feedserver import feed_server

CORPUS = Path(__file__).resolve().parents[1] / "data" / "feeds"


def _item(title: str, link: str, guid: str = "", teaser: str = "") -> str:
    guid_xml = f'<guid isPermaLink="false">{guid}</guid>' if guid else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_xml}"
        f"<description>{teaser}</description>"
        "<pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate></item>"
    )


def _source(db: Database, location: str, section: str, **options: object) -> int:
    with db.session() as session:
        add_section(session, section, section.title())
        source, _ = add_source(session, location, section, **options)  # type: ignore[arg-type]
        return source.id


def _rows(db: Database) -> list[tuple[str, str, str | None]]:
    """(url, section slug, guid) of every article, by url."""
    with db.session() as session:
        rows = session.execute(
            select(Article.url, Section.slug, Article.guid)
            .join(Section, Section.id == Article.section_id)
            .order_by(Article.url)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def server() -> Iterator[str]:
    with feed_server() as url:
        yield url


def test_backoff_doubles_from_five_minutes_and_stops_at_a_day() -> None:
    """1, 2, 3 errors wait 5, 10, 20 minutes; many errors never wait more than 24 hours."""
    assert [backoff(n) for n in (1, 2, 3)] == [dt.timedelta(minutes=m) for m in (5, 10, 20)]
    assert backoff(10) == dt.timedelta(hours=24)
    assert backoff(10_000) == dt.timedelta(hours=24)


def test_failing_source_backs_off_and_force_fetches_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A failed source is skipped until next_fetch_at, reported as backing off; force fetches it."""
    path = tmp_path / "flaky.xml"
    path.write_bytes(b"<html>not a feed</html>")
    source_id = _source(db, str(path), "local")
    [first] = ingest_all(db, settings)
    assert first.error is not None and "not a readable feed" in first.error
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert source.next_fetch_at is not None and source.last_fetched_at is not None
        wait = source.next_fetch_at - source.last_fetched_at
        assert wait == dt.timedelta(minutes=5)

    path.write_bytes(rss(_item("Back", "https://news.example/back")))
    [skipped] = ingest_all(db, settings)
    assert skipped.backing_off_until is not None and skipped.failed
    assert _rows(db) == []

    [forced] = ingest_all(db, settings, force=True)
    assert (forced.new, forced.error, forced.backing_off_until) == (1, None, None)
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert (source.consecutive_errors, source.next_fetch_at) == (0, None)


def test_scheduled_ingest_of_one_source_respects_backoff(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """ingest_source(force=False), as the Celery task calls it, skips a backing-off source."""
    path = tmp_path / "bad.xml"
    path.write_bytes(b"")
    source_id = _source(db, str(path), "local")
    assert ingest_source(db, settings, source_id).error is not None
    report = ingest_source(db, settings, source_id, force=False)
    assert report.backing_off_until is not None
    with db.session() as session:
        assert session.get_one(Source, source_id).consecutive_errors == 1


def test_bare_guids_of_two_sources_are_two_stories(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Two feeds both using guid "42" for different stories store both stories."""
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes(rss(_item("Story A", "https://a.example/story", guid="42")))
    b.write_bytes(rss(_item("Story B", "https://b.example/story", guid="42")))
    a_id, b_id = _source(db, str(a), "one"), _source(db, str(b), "two")
    assert ingest_source(db, settings, a_id).new == 1
    assert ingest_source(db, settings, b_id).new == 1
    assert [row[0] for row in _rows(db)] == ["https://a.example/story", "https://b.example/story"]
    # Within its own source the bare guid still identifies the story.
    b.write_bytes(rss(_item("Story B, moved", "https://b.example/moved", guid="42")))
    report = ingest_source(db, settings, b_id)
    assert (report.new, report.updated) == (0, 1)


def test_url_identity_ignores_guids(db: Database, settings: Settings, tmp_path: Path) -> None:
    """With identity "url", a feed reusing one guid for every item still stores every story."""
    path = tmp_path / "same-guid.xml"
    path.write_bytes(
        rss(
            _item("One", "https://u.example/1", guid="https://u.example/feed"),
            _item("Two", "https://u.example/2", guid="https://u.example/feed"),
        )
    )
    source_id = _source(db, str(path), "local", identity="url")
    assert ingest_source(db, settings, source_id).new == 2
    assert [row[2] for row in _rows(db)] == [None, None]


def test_both_identity_merges_items_sharing_a_global_guid(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """With the default identity, items sharing a URL-like guid are one story."""
    path = tmp_path / "same-guid.xml"
    path.write_bytes(
        rss(
            _item("One", "https://u.example/1", guid="https://u.example/feed"),
            _item("Two", "https://u.example/2", guid="https://u.example/feed"),
        )
    )
    assert ingest_source(db, settings, _source(db, str(path), "local")).new == 1


def test_guid_identity_moves_a_story_to_its_new_url(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """With identity "guid", a corrected slug updates the stored URL and sets updated_at."""
    path = tmp_path / "slug.xml"
    path.write_bytes(rss(_item("Story", "https://g.example/old-slug", guid="p-9")))
    source_id = _source(db, str(path), "local", identity="guid")
    ingest_source(db, settings, source_id)
    path.write_bytes(rss(_item("Story", "https://g.example/new-slug", guid="p-9")))
    report = ingest_source(db, settings, source_id)
    assert (report.new, report.updated) == (0, 1)
    with db.session() as session:
        article = session.scalars(select(Article)).one()
        assert article.url == "https://g.example/new-slug"
        assert article.updated_at is not None


def test_updated_teaser_changes_in_place_and_sets_updated_at(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Same identity with a new teaser updates the article and stamps updated_at; no new row."""
    path = tmp_path / "t.xml"
    path.write_bytes(rss(_item("Story", "https://t.example/1", teaser="First draft.")))
    source_id = _source(db, str(path), "local")
    ingest_source(db, settings, source_id)
    with db.session() as session:
        assert session.scalars(select(Article.updated_at)).one() is None
    path.write_bytes(rss(_item("Story", "https://t.example/1", teaser="Corrected.")))
    assert ingest_source(db, settings, source_id).updated == 1
    with db.session() as session:
        article = session.scalars(select(Article)).one()
        assert (article.teaser, article.updated_at is not None) == ("Corrected.", True)


def test_category_map_sends_items_to_mapped_sections(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Items whose category is mapped (any case) go to that section; the rest to the source's."""
    with db.session() as session:
        add_section(session, "international", "International")
        add_section(session, "national", "National")
    source_id = _source(
        db,
        str(CORPUS / "wordpress-world-mapped.xml"),
        "opinion",
        category_map=parse_category_map("World=international, Pakistan=national"),
    )
    assert ingest_source(db, settings, source_id).new == 4
    assert {url.rsplit("/", 2)[1]: slug for url, slug, _ in _rows(db)} == {
        "summit-ends": "international",
        "provinces-bill": "national",
        "long-road": "opinion",
        "border-trade": "national",  # "pakistan" comes before "WORLD" in the item
    }


def test_category_map_with_unknown_section_is_refused(db: Database) -> None:
    """A map naming a section that does not exist is refused when the source is added."""
    with db.session() as session:
        add_section(session, "local", "Local")
        with pytest.raises(NotFoundError, match="unknown section: nowhere"):
            add_source(
                session, str(CORPUS / "rss20-basic.xml"), "local", category_map={"X": "nowhere"}
            )


@pytest.mark.parametrize("text", ["World", "=national", "World=", "a=b,,c"])
def test_bad_category_map_text_is_an_input_error(text: str) -> None:
    """A --category-map that is not CATEGORY=SECTION pairs is refused, naming the bad pair."""
    with pytest.raises(InputError, match="CATEGORY=SECTION"):
        parse_category_map(text)


def test_non_http_source_url_is_refused(db: Database) -> None:
    """Only http(s) URLs, file:// URLs and paths can be added as sources."""
    with db.session() as session:
        add_section(session, "local", "Local")
        with pytest.raises(InputError, match="http"):
            add_source(session, "gopher://news.example/feed", "local")


def test_http_source_on_loopback_is_refused_unless_allowed(
    db: Database, settings: Settings, server: str
) -> None:
    """A source on a private address fails with the reason; allow_private lets it through."""
    url = f"{server}/feed.xml"
    source_id = _source(db, url, "local")
    report = ingest_source(db, settings, source_id)
    assert report.error is not None and "internal address 127.0.0.1" in report.error
    _source(db, url, "local", allow_private=True)
    report = ingest_source(db, settings, source_id)
    assert (report.error, report.new) == (None, 1)
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert (source.last_status, source.etag) == (200, '"feed-v1"')
    assert ingest_source(db, settings, source_id).not_modified


def test_http_error_status_is_recorded_on_the_source(
    db: Database, settings: Settings, server: str
) -> None:
    """A 500 answer is the source's last status and its one-line last error."""
    source_id = _source(db, f"{server}/error", "local", allow_private=True)
    assert ingest_source(db, settings, source_id).error == "HTTP 500"
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert (source.last_status, source.last_error, source.consecutive_errors) == (
            500,
            "HTTP 500",
            1,
        )
