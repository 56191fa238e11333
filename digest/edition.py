"""Choosing and grouping a day's articles into an edition. Pure: no database, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import InputError


@dataclass(frozen=True)
class ArticleView:
    """What a template needs of one article."""

    id: int
    section_slug: str
    headline: str
    teaser: str
    url: str
    published_at: dt.datetime  # naive UTC
    image_url: str | None = None


@dataclass(frozen=True)
class SectionBlock:
    slug: str
    name: str
    articles: list[ArticleView] = field(default_factory=list)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or an InputError that says so."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone: {name}") from exc


def local_today(tz_name: str, now: dt.datetime | None = None) -> dt.date:
    """Today's date in ``tz_name``; ``now`` is an aware datetime or naive UTC."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(zone(tz_name)).date()


def edition_window(day: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) of the local calendar day ``day`` in ``tz_name`` (naive UTC).

    Computed from local midnights, so a day with a DST change is 23 or 25 hours long.
    """
    tz = zone(tz_name)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return (
        start.astimezone(dt.UTC).replace(tzinfo=None),
        end.astimezone(dt.UTC).replace(tzinfo=None),
    )


def group_sections(
    articles: Iterable[ArticleView],
    section_order: Sequence[tuple[str, str]],
    per_section: int,
) -> list[SectionBlock]:
    """Sections in the list's order (``(slug, name)`` pairs), newest ``per_section`` articles
    each, sections without articles left out, and no article twice."""
    by_section: dict[str, list[ArticleView]] = {slug: [] for slug, _ in section_order}
    seen: set[int] = set()
    for article in sorted(articles, key=lambda a: (a.published_at, a.id), reverse=True):
        bucket = by_section.get(article.section_slug)
        if bucket is None or article.id in seen:
            continue
        seen.add(article.id)
        bucket.append(article)
    return [
        SectionBlock(slug, name, by_section[slug][:per_section])
        for slug, name in section_order
        if by_section[slug] and per_section > 0
    ]


def for_preferences(
    sections: list[SectionBlock], wanted: Iterable[str] | None
) -> list[SectionBlock]:
    """The sections a subscriber chose (None: all). A choice that matches nothing gets all,
    so a stale preference never produces an empty digest."""
    if wanted is None:
        return sections
    chosen = set(wanted)
    picked = [s for s in sections if s.slug in chosen]
    return picked or sections


def format_subject(
    template: str, *, site: str, date_label: str, top_headline: str, list_name: str
) -> str:
    """The subject from a ``{site} — {date}: {top headline}``-style template."""
    return (
        template.replace("{site}", site)
        .replace("{date}", date_label)
        .replace("{top headline}", top_headline)
        .replace("{list}", list_name)
    )


def date_label(day: dt.date) -> str:
    """``Tuesday, 24 November 2026``: unambiguous in every English-speaking country."""
    return f"{day:%A}, {day.day} {day:%B %Y}"


def preheader(sections: Sequence[SectionBlock], limit: int = 3) -> str:
    """The hidden preview line: the first headline of the first few sections."""
    return " · ".join(s.articles[0].headline for s in sections[:limit] if s.articles)
