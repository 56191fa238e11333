"""Feed sources: adding one (checked by fetching it once), switching it off, removing it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import FeedError, InputError, NotFoundError
from digest.ingest.discover import feed_links, feed_title, looks_like_html
from digest.ingest.fetch import any_address, fetch, is_http_url, local_path, public_only
from digest.ingest.parse import parse_feed
from digest.ingest.run import IDENTITIES
from digest.ingest.text import one_line
from digest.service.catalog.lists import get_section
from digest.service.catalog.validation import check_location, check_text
from digest.store.models import Article, Source, utcnow

__all__ = [
    "IDENTITIES",
    "FeedCheck",
    "add_source",
    "check_feed",
    "find_source",
    "get_source",
    "private_address",
    "remove_source",
    "set_source_enabled",
]


def add_source(
    session: Session,
    location: str,
    section_slug: str,
    name: str | None = None,
    *,
    category_map: dict[str, str] | None = None,
    identity: str | None = None,
    allow_private: bool | None = None,
) -> tuple[Source, bool]:
    """Register a feed by URL (http, https, file) or local path; returns (source, created).

    Options left as None keep an existing source's setting (or the default).
    """
    location, path = check_location(location)
    if name is not None:
        check_text(name, "the source's name", 200)
    section = get_section(session, section_slug)
    if category_map:
        for category in category_map:
            check_text(category, "a category in the category map", 100)
        for slug in set(category_map.values()):
            get_section(session, slug)  # a typo in the map is caught now, not at ingest
    if identity is not None and identity not in IDENTITIES:
        raise InputError(f"identity must be one of {', '.join(IDENTITIES)}, not {identity!r}")
    source = session.scalars(select(Source).where(Source.url == location)).first()
    created = source is None
    if source is None:
        source = Source(
            url=location,
            # The fallback is cut too: a 2,000-character URL does not fit the name's column.
            name=one_line(name or (path.stem if path else location), 200),
            section_id=section.id,
        )
        session.add(source)
    else:
        source.section_id = section.id
        if name:
            source.name = one_line(name, 200)
    if category_map is not None:
        source.category_map = category_map
    if identity is not None:
        source.identity = identity
    if allow_private is not None:
        source.allow_private = allow_private
    session.flush()
    return source, created


def find_source(session: Session, location: str) -> Source | None:
    """The source stored for ``location`` (a path is compared in its absolute form)."""
    path = local_path(location.strip())
    if path is not None and "://" not in location:
        location = str(path.resolve())
    return session.scalars(select(Source).where(Source.url == location.strip())).first()


def get_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFoundError("source", source_id)
    return source


def set_source_enabled(session: Session, source_id: int, enabled: bool) -> Source:
    """Stop or restart fetching a source; its articles and their editions stay as they are."""
    source = get_source(session, source_id)
    source.enabled = enabled
    if enabled:
        # A source switched back on is fetched at the next run, not after an old backoff.
        source.next_fetch_at = None
    session.flush()
    return source


def remove_source(session: Session, source_id: int) -> tuple[Source, int]:
    """Delete a source; returns (the source as it was, articles kept).

    Its articles stay (editions and the archive point at them), detached from any source,
    so a story already sent is never lost, and re-adding the feed does not send it again.
    """
    source = get_source(session, source_id)
    kept = _count(session, Article, Article.source_id == source.id)
    session.execute(update(Article).where(Article.source_id == source.id).values(source_id=None))
    session.delete(source)
    session.flush()
    return source, kept


def private_address(location: str) -> str | None:
    """The loopback, private or link-local address an http(s) source's host names or resolves
    to, or None (a public host, a file, or a name that does not resolve now)."""
    if not is_http_url(location):
        return None
    host = urlsplit(location).hostname or ""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in sorted(addresses, key=str):
        if not public_only(address):
            return str(address)
    return None


@dataclass(frozen=True)
class FeedCheck:
    """What one fetch and parse of a feed found, without storing anything."""

    items: int = 0
    newest_at: dt.datetime | None = None
    newest_headline: str = ""
    error: str | None = None
    #: The feed's own title, as plain text ("" if none): a source added without a name is
    #: named by it.
    title: str = ""
    #: The feed found on the HTML page the operator gave (its ``<link rel="alternate">``), or
    #: None when the location was the feed itself.
    found_url: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"could not read the feed: {self.error}"
        if not self.items:
            return "0 items: the feed is readable but empty (or truncated)"
        when = self.newest_at.strftime("%Y-%m-%d %H:%M") if self.newest_at else "?"
        return f"{self.items} items, newest {when} UTC: {self.newest_headline}"


def check_feed(settings: Settings, location: str, *, allow_private: bool = False) -> FeedCheck:
    """Fetch and parse ``location`` once, as ingest would, and say what it holds. An HTML page
    that announces feeds (``<link rel="alternate" type="application/rss+xml" ...>``) is
    followed to the first one that reads, fetched within the same limits."""
    allowed = any_address if allow_private else public_only

    def get(url: str) -> tuple[bytes | None, str, int | None]:
        result = fetch(
            url,
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            allowed=allowed,
        )
        return result.body, result.final_url or url, result.status

    try:
        body, final_url, status = get(location)
        if body is None:
            return FeedCheck(error=f"HTTP {status} without a body")
        try:
            return _read(body, location)
        except FeedError as exc:
            if not (is_http_url(location) and looks_like_html(body)):
                raise
            links = feed_links(body, final_url)
            if not links:
                raise FeedError(
                    location, 'an HTML page that announces no feed (<link rel="alternate">)'
                ) from exc
    except FeedError as exc:
        return FeedCheck(error=exc.reason)
    # The page named feeds: the first that reads is the one (each fetch with the same limits).
    reasons = []
    for url in links[:MAX_TRIED_LINKS]:
        try:
            body, _, status = get(url)
            if body is None:
                reasons.append(f"{url}: HTTP {status} without a body")
                continue
            return replace(_read(body, url), found_url=url)
        except FeedError as exc:
            reasons.append(f"{url}: {exc.reason}")
    return FeedCheck(error="the page's feeds could not be read: " + "; ".join(reasons))


#: Feeds named by one page that are tried, at most.
MAX_TRIED_LINKS = 3


def _read(body: bytes, location: str) -> FeedCheck:
    items = parse_feed(body, location, utcnow())
    title = feed_title(body)
    if not items:
        return FeedCheck(title=title)
    newest = max(items, key=lambda item: item.published_at)
    return FeedCheck(len(items), newest.published_at, newest.headline, title=title)


def _count(session: Session, model: type[Any], *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
