"""Gathering many sources: per-host concurrency, storing as fetches end, set-based storing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from digest.config import Settings
from digest.ingest import run
from digest.ingest.run import ingest_all, ingest_source
from digest.service.catalog import add_section, add_source
from digest.store.db import Database
from digest.store.models import Article, Source
from tests.ingest.feedserver import Handler, feed_server


def _rss(count: int, prefix: str = "s", teaser: str = "About it") -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://gather.example/{prefix}/{n}</link>"
        f'<guid isPermaLink="false">{prefix}-{n}</guid>'
        f"<pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate>"
        f"<description>{teaser} {n}</description></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>'
        f"<link>https://gather.example/</link>{items}</channel></rss>"
    ).encode()


def _source(db: Database, location: str, **options: Any) -> int:
    with db.session() as session:
        add_section(session, "local", "Local")
        source, _ = add_source(session, location, "local", **options)
        return source.id


@pytest.fixture
def server() -> Iterator[str]:
    with feed_server() as url:
        yield url


def test_slow_source_times_out_while_the_others_are_stored(
    db: Database, settings: Settings, server: str, tmp_path: Path
) -> None:
    """A source dripping headers fails at the deadline; a quick one was stored long before."""
    slow_id = _source(db, f"{server}/drip-headers?every=0.3", allow_private=True)
    quick = tmp_path / "quick.xml"
    quick.write_bytes(_rss(3))
    quick_id = _source(db, str(quick))
    started = time.monotonic()
    reports = {r.source_id: r for r in ingest_all(db, settings.replace(fetch_timeout=2.0))}
    assert time.monotonic() - started < 2.0 + 1.5
    assert reports[slow_id].error == "timed out after 2 s"
    assert (reports[quick_id].new, reports[quick_id].error) == (3, None)
    with db.session() as session:
        stored_at = session.scalar(select(func.max(Article.first_seen_at)))
        failed_at = session.get_one(Source, slow_id).last_fetched_at
    assert stored_at is not None and failed_at is not None
    # Stored as its fetch ended, not after the slow one gave up.
    assert failed_at - stored_at > dt.timedelta(seconds=1.5)


def test_fetches_are_bounded_per_host_and_hosts_run_in_parallel(
    db: Database, settings: Settings
) -> None:
    """With fetch_per_host=2, no host sees more than 2 requests at once; two hosts overlap."""
    Handler.in_flight.clear()
    Handler.most.clear()
    with feed_server("127.0.0.1") as one, feed_server("127.0.0.2") as two:
        for base in (one, two):
            for n in range(6):
                _source(db, f"{base}/concurrent?delay=0.3&n={n}", allow_private=True)
        started = time.monotonic()
        reports = ingest_all(db, settings.replace(fetch_per_host=2, fetch_workers=16))
        elapsed = time.monotonic() - started
    assert [r.error for r in reports] == [None] * 12
    # Two at a time per host, and both hosts at once: four requests in flight together.
    assert Handler.most == {"127.0.0.1": 2, "127.0.0.2": 2, "all": 4}
    # 6 feeds per host, 2 at a time, 0.3 s each: three rounds; one feed after another would
    # take 3.6 s (a loose bound: the overlap itself is counted above).
    assert elapsed < 12 * 0.3


def test_one_source_is_stored_with_a_handful_of_statements(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """200 new items cost a few SQL statements, not one or two per item."""
    path = tmp_path / "many.xml"
    path.write_bytes(_rss(200))
    source_id = _source(db, str(path))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        report = ingest_source(db, settings, source_id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (report.found, report.new) == (200, 200)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    assert len(statements) < 20


def test_edits_and_new_items_in_one_run_are_both_stored(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A run with corrected teasers and new items updates the old rows and inserts the new."""
    path = tmp_path / "edit.xml"
    path.write_bytes(_rss(3, teaser="Draft"))
    source_id = _source(db, str(path))
    ingest_source(db, settings, source_id)
    path.write_bytes(_rss(5, teaser="Final"))
    report = ingest_source(db, settings, source_id)
    assert (report.found, report.new, report.updated) == (5, 2, 3)
    with db.session() as session:
        rows = session.execute(select(Article.teaser, Article.updated_at).order_by(Article.url))
        assert [(teaser, at is not None) for teaser, at in rows] == [
            ("Final 0", True),
            ("Final 1", True),
            ("Final 2", True),
            ("Final 3", False),
            ("Final 4", False),
        ]


def test_unchanged_body_without_etag_is_not_parsed_again(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes again skip parsing and report the items found before; new bytes parse."""
    path = tmp_path / "same.xml"
    path.write_bytes(_rss(4))
    source_id = _source(db, str(path))
    assert ingest_source(db, settings, source_id).new == 4
    parsed: list[bytes] = []
    real = run.parse_feed
    monkeypatch.setattr(
        run, "parse_feed", lambda body, *a, **k: parsed.append(body) or real(body, *a, **k)
    )
    report = ingest_source(db, settings, source_id)
    assert (report.found, report.new, report.error, parsed) == (4, 0, None, [])
    path.write_bytes(_rss(5))
    assert ingest_source(db, settings, source_id).new == 1
    assert len(parsed) == 1


def test_newest_items_are_kept_when_a_feed_lists_too_many(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """ingest_max_items caps what one feed stores."""
    path = tmp_path / "long.xml"
    path.write_bytes(_rss(30))
    source_id = _source(db, str(path))
    report = ingest_source(db, settings.replace(ingest_max_items=10), source_id)
    assert (report.found, report.new) == (10, 10)
