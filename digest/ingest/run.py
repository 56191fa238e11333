"""Ingesting sources into articles: fetch concurrently, store one source at a time.

A failing source is recorded on its row (error, consecutive count) and never
stops the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.db import Database
from digest.errors import FeedError
from digest.ingest.fetch import FetchResult, fetch
from digest.ingest.parse import FeedItem, parse_feed
from digest.models import Article, Source, utcnow

FETCH_WORKERS = 8


@dataclass(frozen=True)
class SourceReport:
    """What one ingest did to one source."""

    source_id: int
    name: str
    found: int = 0
    new: int = 0
    updated: int = 0
    not_modified: bool = False
    error: str | None = None


def ingest_all(db: Database, settings: Settings) -> list[SourceReport]:
    """Fetch every source (a bounded pool of threads), then store their items."""
    with db.session() as session:
        # In id order: when two feeds carry one story, it goes to the source added first.
        sources = [
            (s.id, s.url, s.etag, s.last_modified)
            for s in session.scalars(select(Source).order_by(Source.id))
        ]
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        fetched = list(
            pool.map(lambda src: _fetch_quietly(src[1], src[2], src[3], settings), sources)
        )
    reports = []
    for (source_id, *_), result in zip(sources, fetched, strict=True):
        with db.session() as session:
            source = session.get_one(Source, source_id)
            reports.append(store_fetch(session, source, result))
    return reports


def ingest_source(db: Database, settings: Settings, source_id: int) -> SourceReport:
    """Fetch and store one source (the unit of work of a Celery ingest task)."""
    with db.session() as session:
        source = session.get_one(Source, source_id)
        result = _fetch_quietly(source.url, source.etag, source.last_modified, settings)
        return store_fetch(session, source, result)


def _fetch_quietly(
    url: str, etag: str | None, last_modified: str | None, settings: Settings
) -> FetchResult | FeedError:
    try:
        return fetch(
            url,
            etag=etag,
            last_modified=last_modified,
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
        )
    except FeedError as exc:
        return exc


def store_fetch(session: Session, source: Source, result: FetchResult | FeedError) -> SourceReport:
    """Record a fetch's outcome on the source and store its new articles."""
    now = utcnow()
    source.last_fetched_at = now
    if isinstance(result, FeedError):
        return _record_error(source, result.reason)
    source.last_status = result.status
    if result.body is None:  # 304: nothing changed, and nothing else changes either
        source.consecutive_errors = 0
        source.last_error = None
        return SourceReport(source.id, source.name, not_modified=True)
    try:
        items = parse_feed(result.body, result.final_url or source.url, now)
    except FeedError as exc:
        return _record_error(source, exc.reason)
    new, updated = store_items(session, source, items, now)
    source.etag, source.last_modified = result.etag, result.last_modified
    source.consecutive_errors = 0
    source.last_error = None
    source.last_found, source.last_new = len(items), new
    return SourceReport(source.id, source.name, found=len(items), new=new, updated=updated)


def _record_error(source: Source, reason: str) -> SourceReport:
    source.consecutive_errors += 1
    source.last_error = reason
    return SourceReport(source.id, source.name, error=reason)


def store_items(
    session: Session, source: Source, items: Iterable[FeedItem], now: dt.datetime
) -> tuple[int, int]:
    """Insert items not seen before (by guid or canonical URL); returns (new, updated).

    A story already stored keeps its first section and date, so a feed that
    republishes old items with new dates cannot make them look new. Its own
    source may correct the headline or teaser in place.
    """
    new = updated = 0
    for item in items:
        conditions = [Article.url == item.url]
        if item.guid:
            conditions.append(Article.guid == item.guid)
        existing = session.scalars(select(Article).where(or_(*conditions)).limit(1)).first()
        if existing is not None:
            if existing.source_id == source.id and (
                existing.headline != item.headline or existing.teaser != item.teaser
            ):
                existing.headline, existing.teaser = item.headline, item.teaser
                updated += 1
            continue
        article = Article(
            guid=item.guid,
            url=item.url,
            section_id=source.section_id,
            source_id=source.id,
            headline=item.headline,
            teaser=item.teaser,
            image_url=item.image_url,
            published_at=item.published_at,
            first_seen_at=now,
        )
        try:
            # A savepoint: a concurrent ingest that stored the same story first
            # costs this one article, not the whole source.
            with session.begin_nested():
                session.add(article)
            new += 1
        except IntegrityError:
            continue
    return new, updated
