"""Storing fetched items: one article per story, across runs and sources; failures stay local."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from digest.config import Settings
from digest.ingest.run import SourceReport, ingest_all, ingest_source
from digest.service.catalog import add_section, add_source
from digest.store.db import Database
from digest.store.models import Article, Section, Source
from tests.builders import rss


def _item(
    title: str, link: str, guid: str | None = None, date: str = "Mon, 06 Jan 2025 10:00:00 GMT"
) -> str:
    """One RSS item; guid, if given, is not a permalink so it is stored as written."""
    guid_xml = f'<guid isPermaLink="false">{guid}</guid>' if guid else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_xml}"
        f"<pubDate>{date}</pubDate><description>About {title}</description></item>"
    )


def _feed_file(directory: Path, name: str, body: bytes) -> Path:
    path = directory / name
    path.write_bytes(body)
    return path


def _source(db: Database, path: Path, section_slug: str) -> int:
    """Register ``path`` as a source of the section (created if need be); returns its id."""
    with db.session() as session:
        add_section(session, section_slug, section_slug.title())
        source, created = add_source(session, str(path), section_slug)
        assert created
        return source.id


def _articles(db: Database) -> list[tuple[str, str, str, int | None, dt.datetime]]:
    """(url, headline, section slug, source id, published_at) of every article, by url."""
    with db.session() as session:
        rows = session.execute(
            select(
                Article.url, Article.headline, Section.slug, Article.source_id, Article.published_at
            )
            .join(Section, Section.id == Article.section_id)
            .order_by(Article.url)
        )
        return [(url, headline, slug, source_id, at) for url, headline, slug, source_id, at in rows]


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Article)) or 0


def test_ingesting_the_same_feed_twice_adds_nothing_the_second_time(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A second ingest of an unchanged feed finds the items again but stores no new article."""
    path = _feed_file(
        tmp_path,
        "local.xml",
        rss(
            _item("First story", "https://news.example/1", "urn:story:1"),
            _item("Second story", "https://news.example/2", "urn:story:2"),
            _item("No guid story", "https://news.example/3"),
        ),
    )
    source_id = _source(db, path, "local")

    first = ingest_source(db, settings, source_id)
    assert (first.found, first.new, first.error) == (3, 3, None)
    before = _articles(db)

    second = ingest_source(db, settings, source_id)
    assert (second.found, second.new, second.updated, second.error) == (3, 0, 0, None)
    assert _articles(db) == before
    assert _count(db) == 3
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert (source.last_found, source.last_new, source.consecutive_errors) == (3, 0, 0)


def test_each_article_keeps_its_place_in_the_feed_where_first_seen(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """An article stores its place in its feed (0 = top) when first stored; a later ingest
    with a new item on top places the newcomer and leaves the others' first places alone."""
    path = _feed_file(
        tmp_path,
        "local.xml",
        rss(
            _item("Lead story", "https://news.example/lead"),
            _item("Second story", "https://news.example/second"),
        ),
    )
    source_id = _source(db, path, "local")
    assert ingest_source(db, settings, source_id).new == 2
    path.write_bytes(
        rss(
            _item("Breaking story", "https://news.example/breaking"),
            _item("Lead story", "https://news.example/lead"),
            _item("Second story", "https://news.example/second"),
        )
    )
    assert ingest_source(db, settings, source_id).new == 1
    with db.session() as session:
        places = {
            url: place for url, place in session.execute(select(Article.url, Article.feed_position))
        }
    assert places == {
        "https://news.example/breaking": 0,
        "https://news.example/lead": 0,
        "https://news.example/second": 1,
    }


def test_same_story_in_two_sections_is_stored_once_under_the_first(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """One story (same guid and link) in two sections' feeds is stored once, under the first."""
    story = _item("Shared story", "https://news.example/shared", "urn:story:shared")
    world = _feed_file(
        tmp_path, "world.xml", rss(story, _item("World only", "https://news.example/w"))
    )
    business = _feed_file(
        tmp_path, "business.xml", rss(story, _item("Business only", "https://news.example/b"))
    )
    world_id = _source(db, world, "world")
    business_id = _source(db, business, "business")

    # Business is ingested first, although it was registered second.
    assert ingest_source(db, settings, business_id).new == 2
    report = ingest_source(db, settings, world_id)
    assert (report.found, report.new) == (2, 1)

    when = dt.datetime(2025, 1, 6, 10)
    assert _articles(db) == [
        ("https://news.example/b", "Business only", "business", business_id, when),
        ("https://news.example/shared", "Shared story", "business", business_id, when),
        ("https://news.example/w", "World only", "world", world_id, when),
    ]


def test_same_guid_with_another_link_is_the_same_story(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """An item whose guid is already stored is not stored again, even under a new link."""
    path = _feed_file(
        tmp_path, "a.xml", rss(_item("Original", "https://news.example/orig", "urn:story:g"))
    )
    other = _feed_file(
        tmp_path, "b.xml", rss(_item("Moved", "https://mirror.example/moved", "urn:story:g"))
    )
    first_id = _source(db, path, "first")
    second_id = _source(db, other, "second")
    ingest_source(db, settings, first_id)
    assert ingest_source(db, settings, second_id).new == 0
    assert [(a[0], a[2]) for a in _articles(db)] == [("https://news.example/orig", "first")]


def test_same_link_with_different_utm_parameters_is_one_article(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Links differing only in utm_* parameters (and fragment) are the same article."""
    first = _feed_file(
        tmp_path,
        "rss.xml",
        rss(_item("Story", "https://news.example/s?id=5&amp;utm_source=rss&amp;utm_medium=a")),
    )
    social = _feed_file(
        tmp_path,
        "social.xml",
        rss(_item("Story again", "https://NEWS.example/s?utm_source=twitter&amp;id=5#c")),
    )
    rss_id = _source(db, first, "news")
    social_id = _source(db, social, "social")
    assert ingest_source(db, settings, rss_id).new == 1
    assert ingest_source(db, settings, social_id).new == 0
    assert [(a[0], a[1], a[2]) for a in _articles(db)] == [
        ("https://news.example/s?id=5", "Story", "news")
    ]


def test_missing_feed_file_does_not_stop_other_sources(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """ingest_all reports the broken source's error, records it, and stores the good one's items."""
    good = _feed_file(tmp_path, "good.xml", rss(_item("Good news", "https://news.example/good")))
    broken = _feed_file(tmp_path, "broken.xml", rss(_item("Gone", "https://news.example/gone")))
    broken_id = _source(db, broken, "local")
    good_id = _source(db, good, "local")
    broken.unlink()  # registered while it existed, missing at ingest time

    reports = {r.source_id: r for r in ingest_all(db, settings)}

    assert set(reports) == {broken_id, good_id}
    assert reports[good_id] == SourceReport(good_id, "good", found=1, new=1)
    assert reports[broken_id].error == "no such file"
    assert reports[broken_id].new == 0
    assert [a[1] for a in _articles(db)] == ["Good news"]
    with db.session() as session:
        bad = session.get_one(Source, broken_id)
        assert bad.consecutive_errors == 1
        assert bad.last_error == "no such file"
        assert bad.last_fetched_at is not None
        ok = session.get_one(Source, good_id)
        assert ok.consecutive_errors == 0
        assert ok.last_error is None


def test_errors_count_up_and_reset_on_success(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Consecutive errors accumulate per run and are cleared by the next good fetch."""
    path = _feed_file(tmp_path, "flaky.xml", b"<html>not a feed</html>")
    source_id = _source(db, path, "local")
    assert ingest_source(db, settings, source_id).error is not None
    assert ingest_source(db, settings, source_id).error is not None
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert source.consecutive_errors == 2
        assert source.last_error and "not a readable feed" in source.last_error

    path.write_bytes(rss(_item("Back", "https://news.example/back")))
    assert ingest_source(db, settings, source_id).new == 1
    with db.session() as session:
        source = session.get_one(Source, source_id)
        assert (source.consecutive_errors, source.last_error) == (0, None)


def test_republished_item_keeps_its_first_date(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A feed re-dating an old item does not change the stored published_at or add an article."""
    path = _feed_file(
        tmp_path,
        "redate.xml",
        rss(_item("Old story", "https://news.example/old", "urn:story:old")),
    )
    source_id = _source(db, path, "local")
    ingest_source(db, settings, source_id)
    path.write_bytes(
        rss(
            _item(
                "Old story",
                "https://news.example/old",
                "urn:story:old",
                date="Wed, 08 Jan 2025 18:00:00 GMT",
            )
        )
    )
    report = ingest_source(db, settings, source_id)
    assert (report.found, report.new) == (1, 0)
    assert [(a[0], a[4]) for a in _articles(db)] == [
        ("https://news.example/old", dt.datetime(2025, 1, 6, 10, 0))
    ]


def test_own_source_may_correct_headline_in_place(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The source that stored a story can fix its headline; no new article is made."""
    path = _feed_file(
        tmp_path, "fix.xml", rss(_item("Teh typo", "https://news.example/t", "urn:story:t"))
    )
    source_id = _source(db, path, "local")
    ingest_source(db, settings, source_id)
    path.write_bytes(rss(_item("The typo", "https://news.example/t", "urn:story:t")))
    report = ingest_source(db, settings, source_id)
    assert (report.new, report.updated) == (0, 1)
    assert [a[1] for a in _articles(db)] == ["The typo"]


def test_another_source_cannot_rewrite_a_stored_headline(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A second source carrying the same story leaves the first source's headline alone."""
    first = _feed_file(
        tmp_path, "one.xml", rss(_item("Original headline", "https://news.example/x"))
    )
    second = _feed_file(
        tmp_path, "two.xml", rss(_item("Hijacked headline", "https://news.example/x"))
    )
    first_id = _source(db, first, "one")
    second_id = _source(db, second, "two")
    ingest_source(db, settings, first_id)
    report = ingest_source(db, settings, second_id)
    assert (report.new, report.updated) == (0, 0)
    assert [a[1] for a in _articles(db)] == ["Original headline"]


def test_duplicate_items_within_one_feed_are_stored_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Two items of one feed with the same canonical link make one article."""
    path = _feed_file(
        tmp_path,
        "dupes.xml",
        rss(
            _item("Twice", "https://news.example/twice"),
            _item("Twice", "https://news.example/twice?utm_campaign=again"),
        ),
    )
    source_id = _source(db, path, "local")
    report = ingest_source(db, settings, source_id)
    assert (report.found, report.new) == (2, 1)
    assert _count(db) == 1
