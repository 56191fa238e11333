"""Ingesting sources into articles: fetch concurrently, store each source as its fetch ends.

Fetches run on a pool of threads, at most ``fetch_per_host`` at once to any
one host (a publisher's many section feeds usually share one), many hosts in
parallel. The main thread stores each source's items the moment its fetch
completes, in one transaction with set-based statements, so one slow source
never holds back the others. A failing source is recorded on its row (error,
consecutive count, when to try again) and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import FeedError, InputError
from digest.ingest.fetch import FetchResult, any_address, fetch, local_path, public_only
from digest.ingest.identity import guid_key
from digest.ingest.parse import MAX_ITEMS, FeedItem, parse_feed
from digest.ingest.text import one_line
from digest.store.db import Database
from digest.store.models import Article, Section, Source, utcnow

log = logging.getLogger(__name__)

#: Kept for callers of the old fixed pool; the pool size is now ``Settings.fetch_workers``.
FETCH_WORKERS = 16
#: Rows per INSERT or IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500
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
    """Fetch every due source, storing each one's items as soon as its fetch completes.

    Sources backing off are reported, not fetched, unless ``force``. When two
    feeds carry one story, it goes to the source whose fetch finished first.
    """
    now = utcnow()
    jobs: list[_Job] = []
    reports: dict[int, SourceReport] = {}
    with db.session() as session:
        for s in session.scalars(select(Source).where(Source.enabled).order_by(Source.id)):
            if force or is_due(s, now):
                jobs.append(_Job(s.id, s.url, s.etag, s.last_modified, s.allow_private))
            else:
                reports[s.id] = SourceReport(s.id, s.name, backing_off_until=s.next_fetch_at)
        order = list(session.scalars(select(Source.id).order_by(Source.id)))
    for job, result in fetch_as_completed(jobs, settings):
        with db.session() as session:
            source = session.get_one(Source, job.source_id)
            reports[job.source_id] = store_fetch(
                session, source, result, max_items=settings.ingest_max_items
            )
    return [reports[i] for i in order if i in reports]


def _host_key(url: str) -> str:
    """The politeness key of a fetch: the host name; every local file is its own."""
    if local_path(url) is not None:
        return f"file:{url}"
    try:
        return (urlsplit(url).hostname or url).lower()
    except ValueError:
        return url


def fetch_as_completed(
    jobs: Sequence[_Job], settings: Settings
) -> Iterator[tuple[_Job, FetchResult | FeedError]]:
    """Fetch ``jobs`` concurrently and yield each outcome the moment it is ready.

    At most ``settings.fetch_workers`` fetches run at once, and at most
    ``settings.fetch_per_host`` to one host; hosts take turns, so one host
    with many feeds does not keep the others waiting. The caller's work on a
    yielded outcome overlaps the fetches still running.
    """
    workers = max(1, settings.fetch_workers)
    per_host = max(1, settings.fetch_per_host)
    queues: dict[str, deque[_Job]] = {}
    for job in jobs:
        queues.setdefault(_host_key(job.url), deque()).append(job)
    active: Counter[str] = Counter()
    running: dict[Future[FetchResult | FeedError], tuple[str, _Job]] = {}
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs)) or 1) as pool:

        def fill() -> None:
            progress = True
            while progress and len(running) < workers:
                progress = False
                for host, queue in queues.items():  # one per host per round: round-robin
                    if queue and active[host] < per_host and len(running) < workers:
                        job = queue.popleft()
                        active[host] += 1
                        running[pool.submit(_fetch_quietly, job, settings)] = (host, job)
                        progress = True

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = []
            for future in done:
                host, job = running.pop(future)
                active[host] -= 1
                finished.append((job, future.result()))
            fill()  # the next fetches start before the caller stores these
            yield from finished


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
        result = _fetch_quietly(job, settings)
        return store_fetch(session, source, result, max_items=settings.ingest_max_items)


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


def store_fetch(
    session: Session,
    source: Source,
    result: FetchResult | FeedError,
    *,
    max_items: int = MAX_ITEMS,
) -> SourceReport:
    """Record a fetch's outcome on the source and store its new articles.

    A body identical to the last one stored successfully is not parsed
    again: a server without ETag or Last-Modified costs a hash, not a parse.
    """
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
    digest = hashlib.sha256(result.body).hexdigest()
    if digest == source.body_digest and not source.last_error:
        source.etag, source.last_modified = result.etag, result.last_modified
        _record_success(source)
        source.last_new = 0
        return SourceReport(source.id, source.name, found=source.last_found or 0)
    try:
        items = parse_feed(result.body, result.final_url or source.url, now, max_items=max_items)
    except FeedError as exc:
        return _record_error(source, exc.reason, now)
    except Exception as exc:  # feedparser on input nobody foresaw: this source only
        log.exception("unexpected error parsing %s", source.url)
        return _record_error(source, f"unexpected error: {type(exc).__name__}: {exc}", now)
    new, updated = store_items(session, source, items, now)
    source.etag, source.last_modified = result.etag, result.last_modified
    source.body_digest = digest
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
    source.body_digest = None  # the next body is parsed whatever it is
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


@dataclass
class _Story:
    """An article as the store sees it while deciding: one already stored, or one to insert."""

    id: int | None
    guid: str | None
    url: str
    source_id: int | None
    headline: str
    teaser: str
    image_url: str | None
    updated_at: dt.datetime | None = None
    row: dict[str, Any] | None = None  # the INSERT values of a new one


_STORY_COLUMNS = (
    Article.id,
    Article.guid,
    Article.url,
    Article.source_id,
    Article.headline,
    Article.teaser,
    Article.image_url,
)


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _stored(
    session: Session, guids: set[str], urls: set[str]
) -> tuple[dict[str, _Story], dict[str, _Story]]:
    """The stored articles matching any of ``guids`` or ``urls``, indexed both ways."""
    by_id: dict[int, _Story] = {}
    for column, values in ((Article.guid, sorted(guids)), (Article.url, sorted(urls))):
        for chunk in _chunks(values):
            for row in session.execute(select(*_STORY_COLUMNS).where(column.in_(chunk))):
                if row.id not in by_id:
                    by_id[row.id] = _Story(*row)
    by_guid = {story.guid: story for story in by_id.values() if story.guid}
    by_url = {story.url: story for story in by_id.values()}
    return by_guid, by_url


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

    Set-based: one look-up of every guid and URL, decisions in memory in feed
    order (a later item of the feed sees the earlier ones, as if stored one by
    one), then one UPDATE of the corrections and INSERT ... ON CONFLICT DO
    NOTHING of the new ones: a concurrent ingest that stored the same story
    first costs this one that article, not the whole source.
    """
    identity = source.identity if source.identity in IDENTITIES else "both"
    categories = _category_sections(session, source)
    keyed = [
        (guid_key(item.guid, source.id) if identity != "url" else None, item) for item in items
    ]
    by_guid, by_url = _stored(
        session, {key for key, _ in keyed if key}, {item.url for _, item in keyed}
    )
    updated = 0
    fresh: list[_Story] = []
    corrected: dict[int, _Story] = {}
    for position, (key, item) in enumerate(keyed):
        found_by_guid = by_guid.get(key) if key else None
        found_by_url = by_url.get(item.url)
        existing = found_by_guid or found_by_url
        if existing is not None:
            old_url = existing.url
            if existing.source_id == source.id and _update(
                existing, item, identity, found_by_url, now
            ):
                updated += 1
                if existing.id is not None:
                    corrected[existing.id] = existing
                if existing.url != old_url:
                    by_url.pop(old_url, None)
                    by_url[existing.url] = existing
            continue
        story = _Story(None, key, item.url, source.id, item.headline, item.teaser, item.image_url)
        story.row = {
            "section_id": _section_for(item, categories, source.section_id),
            "published_at": item.published_at,
            "first_seen_at": now,
            "feed_position": position,
        }
        fresh.append(story)
        if key:
            by_guid[key] = story
        by_url[item.url] = story
    corrections = [
        {
            "id": story.id,
            "headline": story.headline,
            "teaser": story.teaser,
            "image_url": story.image_url,
            "url": story.url,
            "updated_at": story.updated_at,
        }
        for story in corrected.values()
    ]
    # Corrections first: a URL a story moved away from is then free for a new one.
    if corrections:
        session.execute(update(Article), corrections)
    new = _insert_new(session, [_values(story, source.id) for story in fresh])
    return new, updated


def _values(story: _Story, source_id: int) -> dict[str, Any]:
    assert story.row is not None
    return {
        "guid": story.guid,
        "url": story.url,
        "source_id": source_id,
        "headline": story.headline,
        "teaser": story.teaser,
        "image_url": story.image_url,
        "updated_at": story.updated_at,
        **story.row,
    }


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """INSERT the rows, skipping any a concurrent ingest stored first; returns how many went in."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return _insert_one_by_one(session, rows)
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, Article.__table__)
    # One statement executed with many parameter sets: SQLAlchemy batches them
    # into multi-row INSERTs itself ("insertmanyvalues") and compiles it once;
    # RETURNING gives a row for each article that went in, none for a skipped one.
    statement = builder(table).on_conflict_do_nothing().returning(table.c.id)
    return len(session.execute(statement, rows).all())


def _insert_one_by_one(session: Session, rows: list[dict[str, Any]]) -> int:
    """Other databases: a savepoint per row, so one conflict costs one article."""
    inserted = 0
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(insert(Article).values(**row))
            inserted += 1
        except IntegrityError:
            continue
    return inserted


def _update(
    article: _Story, item: FeedItem, identity: str, by_url: _Story | None, now: dt.datetime
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
