"""Ingesting sources into articles: fetch concurrently, store one source at a time.

A failing source is recorded on its row (error, consecutive count, when to
try again) and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import FeedError, InputError
from digest.ingest.fetch import FetchResult, any_address, fetch, public_only
from digest.ingest.identity import guid_key
from digest.ingest.parse import FeedItem, parse_feed
from digest.ingest.text import one_line
from digest.store.db import Database
from digest.store.models import Article, Section, Source, utcnow

log = logging.getLogger(__name__)

FETCH_WORKERS = 8
#: A failing source waits 5 minutes, then 10, 20, ... never more than a day.
BACKOFF_BASE = dt.timedelta(minutes=5)
BACKOFF_MAX = dt.timedelta(hours=24)
IDENTITIES = ("both", "guid", "url")


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
    #: Set when the source was not fetched because it is backing off.
    backing_off_until: dt.datetime | None = None

    @property
    def failed(self) -> bool:
        """Failed now, or still backing off from failing before."""
        return self.error is not None or self.backing_off_until is not None


def backoff(errors: int) -> dt.timedelta:
    """How long a source that failed ``errors`` times in a row waits before the next try."""
    if errors <= 0:
        return dt.timedelta(0)
    return min(BACKOFF_BASE * 2 ** min(errors - 1, 20), BACKOFF_MAX)


def is_due(source: Source, now: dt.datetime) -> bool:
    return source.next_fetch_at is None or source.next_fetch_at <= now


def due_source_ids(session: Session, now: dt.datetime) -> list[int]:
    """Ids of the sources not backing off, in id order (what a scheduled ingest fetches)."""
    return list(
        session.scalars(
            select(Source.id)
            .where(Source.enabled, or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now))
            .order_by(Source.id)
        )
    )


@dataclass(frozen=True)
class _Job:
    source_id: int
    url: str
    etag: str | None
    last_modified: str | None
    allow_private: bool


def ingest_all(db: Database, settings: Settings, *, force: bool = False) -> list[SourceReport]:
    """Fetch every due source (a bounded pool of threads), then store their items.

    Sources backing off are reported, not fetched, unless ``force``.
    """
    now = utcnow()
    jobs: list[_Job] = []
    reports: dict[int, SourceReport] = {}
    with db.session() as session:
        # In id order: when two feeds carry one story, it goes to the source added first.
        for s in session.scalars(select(Source).where(Source.enabled).order_by(Source.id)):
            if force or is_due(s, now):
                jobs.append(_Job(s.id, s.url, s.etag, s.last_modified, s.allow_private))
            else:
                reports[s.id] = SourceReport(s.id, s.name, backing_off_until=s.next_fetch_at)
        order = list(session.scalars(select(Source.id).order_by(Source.id)))
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        fetched = list(pool.map(lambda job: _fetch_quietly(job, settings), jobs))
    for job, result in zip(jobs, fetched, strict=True):
        with db.session() as session:
            source = session.get_one(Source, job.source_id)
            reports[job.source_id] = store_fetch(session, source, result)
    return [reports[i] for i in order if i in reports]


def ingest_source(
    db: Database, settings: Settings, source_id: int, *, force: bool = True
) -> SourceReport:
    """Fetch and store one source (the unit of work of a Celery ingest task).

    Called by hand it fetches at once; the scheduled task passes
    ``force=False`` so a source that started backing off meanwhile waits.
    """
    with db.session() as session:
        source = session.get_one(Source, source_id)
        if not force and not is_due(source, utcnow()):
            return SourceReport(source.id, source.name, backing_off_until=source.next_fetch_at)
        job = _Job(source.id, source.url, source.etag, source.last_modified, source.allow_private)
        return store_fetch(session, source, _fetch_quietly(job, settings))


def _fetch_quietly(job: _Job, settings: Settings) -> FetchResult | FeedError:
    try:
        return fetch(
            job.url,
            etag=job.etag,
            last_modified=job.last_modified,
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            allowed=any_address if job.allow_private else public_only,
        )
    except FeedError as exc:
        return exc
    except Exception as exc:  # a bug on one feed's path must not stop the others
        log.exception("unexpected error fetching %s", job.url)
        return FeedError(job.url, f"unexpected error: {type(exc).__name__}: {exc}")


def store_fetch(session: Session, source: Source, result: FetchResult | FeedError) -> SourceReport:
    """Record a fetch's outcome on the source and store its new articles."""
    now = utcnow()
    source.last_fetched_at = now
    if isinstance(result, FeedError):
        # The status of a refused answer ("HTTP 503") is health worth showing;
        # any other failure got no status, and a stale 200 would mislead.
        http = re.match(r"HTTP (\d{3})$", result.reason)
        source.last_status = int(http.group(1)) if http else None
        return _record_error(source, result.reason, now)
    source.last_status = result.status
    if result.body is None:  # 304: nothing changed, and nothing else changes either
        _record_success(source)
        return SourceReport(source.id, source.name, not_modified=True)
    try:
        items = parse_feed(result.body, result.final_url or source.url, now)
    except FeedError as exc:
        return _record_error(source, exc.reason, now)
    except Exception as exc:  # feedparser on input nobody foresaw: this source only
        log.exception("unexpected error parsing %s", source.url)
        return _record_error(source, f"unexpected error: {type(exc).__name__}: {exc}", now)
    new, updated = store_items(session, source, items, now)
    source.etag, source.last_modified = result.etag, result.last_modified
    _record_success(source)
    source.last_found, source.last_new = len(items), new
    return SourceReport(source.id, source.name, found=len(items), new=new, updated=updated)


def _record_success(source: Source) -> None:
    source.consecutive_errors = 0
    source.last_error = None
    source.next_fetch_at = None


def _record_error(source: Source, reason: str, now: dt.datetime) -> SourceReport:
    reason = one_line(reason, 500)  # an error is one line in `sources list`, whatever raised it
    source.consecutive_errors = (source.consecutive_errors or 0) + 1
    source.last_error = reason
    source.next_fetch_at = now + backoff(source.consecutive_errors)
    return SourceReport(source.id, source.name, error=reason)


def _category_sections(session: Session, source: Source) -> dict[str, int]:
    """The source's category map as casefolded category -> section id (unknown slugs dropped)."""
    mapping = source.category_map or {}
    if not mapping:
        return {}
    rows = session.execute(
        select(Section.slug, Section.id).where(Section.slug.in_(mapping.values()))
    )
    ids = {slug: section_id for slug, section_id in rows}
    return {category.casefold(): ids[slug] for category, slug in mapping.items() if slug in ids}


def _section_for(item: FeedItem, categories: dict[str, int], default: int) -> int:
    for category in item.categories:
        section_id = categories.get(category.casefold())
        if section_id is not None:
            return section_id
    return default


def _first(session: Session, condition: ColumnElement[bool]) -> Article | None:
    return session.scalars(select(Article).where(condition).limit(1)).first()


def store_items(
    session: Session, source: Source, items: Iterable[FeedItem], now: dt.datetime
) -> tuple[int, int]:
    """Insert items not seen before; returns (new, updated).

    Identity follows the source's choice: "url" trusts only the canonical
    URL, "guid" and "both" match a guid first, then the URL (one URL is one
    article whatever the guids say). A guid that is not a URL, tag: or urn:
    only matches within its own source. A story already stored keeps its
    first section and date, so a feed that republishes old items with new
    dates cannot make them look new; its own source may correct the
    headline, teaser and image in place, and under "guid" move it to a new URL.
    """
    identity = source.identity if source.identity in IDENTITIES else "both"
    categories = _category_sections(session, source)
    new = updated = 0
    for item in items:
        key = guid_key(item.guid, source.id) if identity != "url" else None
        by_guid = _first(session, Article.guid == key) if key else None
        by_url = _first(session, Article.url == item.url)
        existing = by_guid or by_url
        if existing is not None:
            if existing.source_id == source.id and _update(existing, item, identity, by_url, now):
                updated += 1
            continue
        article = Article(
            guid=key,
            url=item.url,
            section_id=_section_for(item, categories, source.section_id),
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


def _update(
    article: Article, item: FeedItem, identity: str, by_url: Article | None, now: dt.datetime
) -> bool:
    """Apply its own source's corrections to a stored article; True if anything changed."""
    changed = False
    if (article.headline, article.teaser) != (item.headline, item.teaser):
        article.headline, article.teaser = item.headline, item.teaser
        changed = True
    if item.image_url and article.image_url != item.image_url:
        article.image_url = item.image_url
        changed = True
    # Under "guid" the URL is the mutable part (a slug fixed after publication),
    # unless another article already holds the new one.
    if identity == "guid" and article.url != item.url and by_url is None:
        article.url = item.url
        changed = True
    if changed:
        article.updated_at = now
    return changed


def parse_category_map(text: str) -> dict[str, str]:
    """``"World=international,Pakistan=national"`` as {category: section slug}."""
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        category, sep, slug = pair.partition("=")
        category, slug = one_line(category, 100), slug.strip()
        if not sep or not category or not slug:
            raise InputError(f"--category-map wants CATEGORY=SECTION pairs, not {pair.strip()!r}")
        mapping[category] = slug
    return mapping
