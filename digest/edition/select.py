"""Choosing and grouping a day's articles into an edition. Pure: no database, no I/O."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from digest.edition.cluster import Cluster, cluster
from digest.edition.rank import rank
from digest.errors import InputError


@dataclass(frozen=True)
class AlsoIn:
    """Another report of a story the edition tells once: a link under the one it shows."""

    id: int
    #: The other report's feed, or its section when the shown report's own feed filed it
    #: twice. Feed text: escaped like a headline, never a link of its own.
    label: str
    url: str


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
    source_id: int | None = None
    source_name: str = ""
    #: Where the article stood in its feed when first stored, 0 = top; None if not known.
    feed_position: int | None = None
    also_in: tuple[AlsoIn, ...] = ()


@dataclass(frozen=True)
class SectionBlock:
    slug: str
    name: str
    articles: list[ArticleView] = field(default_factory=list)
    #: How many more articles the section had that day than the digest shows; the digest
    #: links to the web archive for them instead of growing past the size budget.
    more: int = 0


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or an InputError that says so."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone: {name[:64]!r}") from exc


def local_today(tz_name: str, now: dt.datetime | None = None) -> dt.date:
    """Today's date in ``tz_name``; ``now`` is an aware datetime or naive UTC."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(zone(tz_name)).date()


def local_day(day: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) of the local calendar day ``day`` in ``tz_name`` (naive UTC).

    Computed from local midnights, so a day with a DST change is 23 or 25 hours long.
    """
    tz = zone(tz_name)
    try:
        start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return _naive_utc(start), _naive_utc(end)
    except OverflowError as exc:
        # The first and last days of the calendar: their local day reaches past year 1 or 9999.
        raise InputError(f"date {day} is out of range") from exc


#: How long before its window a story may have been published and still be offered, when no
#: edition of the list has offered it yet. Feeds are read every few minutes, but a story dated
#: 06:50 may reach Digest at 07:10, after the 07:00 build, and a feed that failed for hours
#: brings its stories late: the next edition takes them. Older than this, a story that is new
#: to Digest is a feed's back catalogue (a source just added with a year of items, a date
#: that lies), and is not news to anyone: no edition offers it.
LATE_GRACE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Window:
    """What an edition offers (naive UTC): the stories published in [start, end), and those
    published from ``earliest`` on that no other edition of the list has offered (late
    arrivals). Consecutive editions' windows meet end to start, so that over any run of days
    each story of a list's sections is offered once.

    The instant a story is windowed by is its publication time, with a record of what was
    offered (``Edition.offered_ids``) making it once: a build, holding the list's lock, leaves
    out every story another edition of the list offered. Publication time alone would lose a
    story dated 06:50 that reached Digest at 07:10, after the 07:00 build: the grace takes it
    into the next edition, since nobody offered it. The time Digest stored a story
    (``first_seen_at``) would be exactly-once only if a story were visible the moment it is
    stamped, but an ingest stamps its stories before it commits them: one stamped 06:59:59 and
    committed at 07:00:01, after the build read, would fall before the next window's 07:00
    start, in no edition. It would also flood the first edition after a feed with a year of
    items is added, and leave a past day's edition built late without that day's stories.
    """

    start: dt.datetime
    end: dt.datetime
    earliest: dt.datetime

    @property
    def empty(self) -> bool:
        return self.end <= self.start


def edition_window(
    day: dt.date,
    tz_name: str,
    now: dt.datetime,
    *,
    previous_end: dt.datetime | None = None,
    next_start: dt.datetime | None = None,
    first_start: dt.datetime | None = None,
    kept_start: dt.datetime | None = None,
    since: dt.datetime | None = None,
) -> Window:
    """The window of the list's edition of ``day`` built at ``now`` (naive UTC throughout).

    It ends at the build, or at the end of ``day`` in the list's zone for a past day's edition
    built late (the days after it are their own editions' to hold), and never after the start
    of the list's next edition (``next_start``: an edition of a later date already built).
    It starts where the list's previous edition (the one of the latest earlier date) ended
    (``previous_end``); with none, at ``since`` (the operator's choice for a list's first
    edition), else where this edition started when it was first built (``kept_start``: a
    rebuild, or an empty edition filled), else the same local time a day before its end.
    Late arrivals are taken from ``LATE_GRACE`` before the start, but never from before the
    list's first window (``first_start``) and not by a first edition, which nothing was late for.
    A window squeezed to nothing by its neighbours offers nothing.
    """
    _, day_end = local_day(day, tz_name)
    end = min(now, day_end)
    if next_start is not None:
        end = min(end, next_start)
    if previous_end is not None:
        start = previous_end
    elif since is not None:
        start = since
    elif kept_start is not None:
        start = kept_start
    else:
        start = _day_before(end, tz_name)
    if end <= start:
        return Window(start, start, start)
    earliest = start
    if previous_end is not None:
        floor = start if first_start is None else min(first_start, start)
        earliest = max(start - LATE_GRACE, floor)
    return Window(start, end, earliest)


def _naive_utc(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def _day_before(instant: dt.datetime, tz_name: str) -> dt.datetime:
    """The same local wall-clock time a day before ``instant`` (23 or 25 hours across a DST
    change, so a list's first edition covers what its daily editions will)."""
    local = instant.replace(tzinfo=dt.UTC).astimezone(zone(tz_name))
    try:
        return _naive_utc(local - dt.timedelta(days=1))
    except OverflowError as exc:
        raise InputError(f"{instant:%Y-%m-%d} is out of range") from exc


_SINCE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?")


def parse_since(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``: a wall-clock time (naive), to be read in a
    list's zone; anything else is an InputError naming the value."""
    if not _SINCE.fullmatch(value):
        raise InputError(f"since must be YYYY-MM-DD or YYYY-MM-DDTHH:MM, not {value[:40]!r}")
    try:
        since = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"since {value} is not a real time ({exc})") from exc
    # The years ``--date`` takes: beyond them a time zone's offset would overflow the calendar.
    if not 1900 <= since.year <= 2200:
        raise InputError(f"since {value} is out of range")
    return since


def local_instant(wall: dt.datetime, tz_name: str) -> dt.datetime:
    """``wall`` (naive: a local time in ``tz_name``; aware: that instant) as naive UTC."""
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=zone(tz_name))
    return _naive_utc(wall)


def window_label(window: Window, tz_name: str) -> str:
    """The window as an operator reads it: local times in the list's zone."""
    tz = zone(tz_name)

    def local(instant: dt.datetime) -> str:
        return f"{instant.replace(tzinfo=dt.UTC).astimezone(tz):%Y-%m-%d %H:%M}"

    if window.empty:
        return (
            f"no hours of its own: the editions around it hold the articles up to "
            f"{local(window.start)} ({tz_name})"
        )
    return f"articles published from {local(window.start)} to {local(window.end)} ({tz_name})"


def group_sections(
    articles: Iterable[ArticleView],
    section_order: Sequence[tuple[str, str]],
    per_section: int,
    pins: Sequence[int] = (),
) -> list[SectionBlock]:
    """Sections in the list's order (``(slug, name)`` pairs), each story once, the best
    ``per_section`` stories each, sections without stories left out.

    Articles of sections the list does not carry are ignored. The rest are clustered
    (``digest.edition.cluster``): a story reported by several feeds or filed in several
    sections is shown once, in the list's first section that has it (there its earliest
    report), with the other reports as its ``also_in``. A section's stories are ranked by
    ``digest.edition.rank``: ``pins`` (article ids, the editor's order) first, then feeds
    carrying the story, place in a feed and recency. With no duplicates and no feed places,
    that is the newest first, as it always was.
    """
    names = dict(section_order)
    place = {slug: i for i, (slug, _) in reversed(list(enumerate(section_order)))}
    unique: dict[int, ArticleView] = {}
    for article in articles:
        if article.section_slug in place:
            unique.setdefault(article.id, article)
    if per_section <= 0 or not unique:
        return []
    stories = cluster(
        list(unique.values()), prefer=lambda a: (place[a.section_slug], a.published_at, a.id)
    )
    now = max(a.published_at for a in unique.values())
    by_section: dict[str, list[Cluster[ArticleView]]] = {slug: [] for slug in names}
    for story in stories:
        by_section[story.representative.section_slug].append(story)
    blocks = []
    for slug, name in section_order:
        if slug not in by_section:
            continue  # a slug listed twice: shown once, where it first appears
        ranked = rank(by_section.pop(slug), now, pins)
        if ranked:
            shown = [
                replace(s.representative, also_in=also_in(s.representative, s.others, names))
                for s in ranked[:per_section]
            ]
            blocks.append(SectionBlock(slug, name, shown, more=max(0, len(ranked) - per_section)))
    return blocks


def also_in(
    shown: ArticleView, others: Iterable[ArticleView], section_names: Mapping[str, str]
) -> tuple[AlsoIn, ...]:
    """Where else the story ran, one link per place: the other feed's name, or the section's
    when the same site filed it under another section, or the other site's host when its
    feed has no name (a deleted source). A report from the shown article's own feed and
    section adds nothing."""
    links: dict[str, AlsoIn] = {}
    home = _host(shown.url)
    for other in others:
        host = _host(other.url)
        if host and host == home and other.section_slug != shown.section_slug:
            label = section_names.get(other.section_slug, other.section_slug)
        elif other.source_name and other.source_name != shown.source_name:
            label = other.source_name
        elif host and host != home:
            label = host
        else:
            continue
        links.setdefault(label, AlsoIn(other.id, label, other.url))
    return tuple(links.values())


def content_article_ids(block: Mapping[str, Any]) -> list[int]:
    """Every article a stored edition's section block names: those it shows, then the other
    reports of its stories ("also in"), which readers can follow as well."""
    ids = [int(i) for i in block.get("article_ids", [])]
    for others in (block.get("also_in") or {}).values():
        ids.extend(int(i) for i in others)
    return ids


def _host(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host.removeprefix("www.")


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


#: What a reader whose chosen sections have nothing in an edition gets: no mail that day
#: (``skip``, the default), or the whole edition (``all``).
WHEN_EMPTY_SKIP = "skip"
WHEN_EMPTY_ALL = "all"
WHEN_EMPTY = (WHEN_EMPTY_SKIP, WHEN_EMPTY_ALL)
#: Why a reader got no mail: the sections they chose have nothing in the edition, and the
#: list's ``when_empty`` is ``skip``. Their ledger row is skipped: final, not tried again.
NOTHING_IN_SECTIONS = "nothing in their sections today"


def variant_sections(
    sections: list[SectionBlock],
    wanted: Iterable[str] | None,
    list_sections: Iterable[str],
    when_empty: str = WHEN_EMPTY_SKIP,
) -> list[SectionBlock]:
    """The sections one reader gets of an edition's ``sections``; empty: no mail today.

    No choice gets everything. A choice naming none of the list's sections (``list_sections``:
    every section the list carries, with or without articles today) is stale, not a choice of
    nothing: it gets everything too. A real choice whose sections have nothing in this edition
    gets nothing under ``skip`` and the whole edition under ``all``."""
    if wanted is None:
        return sections
    chosen = set(wanted) & set(list_sections)
    if not chosen:
        return sections
    picked = [s for s in sections if s.slug in chosen]
    if picked or when_empty == WHEN_EMPTY_ALL:
        return picked or sections
    return []


def headlines(sections: Sequence[SectionBlock]) -> tuple[str, str]:
    """A variant's top headline (for its subject) and its preview line, from the sections that
    reader gets: the first section's first story, then the next sections' tops."""
    top = sections[0].articles[0].headline if sections and sections[0].articles else ""
    return top, preheader(sections, skip=top)


#: The placeholders a subject template may use.
SUBJECT_FIELDS = ("{site}", "{date}", "{top headline}", "{list}")
_SUBJECT_FIELD = re.compile("|".join(re.escape(f) for f in SUBJECT_FIELDS))


def format_subject(
    template: str, *, site: str, date_label: str, top_headline: str, list_name: str
) -> str:
    """The subject from a ``{site} — {date}: {top headline}``-style template.

    Plain replacement rather than ``str.format``: a headline or an operator's
    template holding braces must not raise or reach into attributes. A
    separator left dangling by an empty field (no headline) is trimmed.
    """
    values = {
        "{site}": site,
        "{date}": date_label,
        "{top headline}": top_headline,
        "{list}": list_name,
    }
    # One pass, so a headline that itself contains "{list}" is left as written.
    subject = _SUBJECT_FIELD.sub(lambda m: values[m.group(0)], template)
    subject = " ".join(subject.split())
    return subject if top_headline else subject.strip(" :—–-·|")


def date_label(day: dt.date, language: str = "en") -> str:
    """The edition's date in the list's language (Babel, CLDR data).

    English keeps ``Tuesday, 24 November 2026``, unambiguous in every
    English-speaking country (CLDR's ``en`` would put the month first); every
    other language gets its own CLDR full date.
    """
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    if locale.language == "en":
        return format_date(day, "EEEE, d MMMM y", locale=locale)
    return format_date(day, "full", locale=locale)


def preheader(
    sections: Sequence[SectionBlock], limit: int = 3, skip: str = "", max_chars: int = 200
) -> str:
    """The hidden preview line: the top headline of the first few sections.

    ``skip`` is the headline the subject already shows, so the preview line
    adds news instead of repeating it (unless it is the only one). Inbox
    previews show well under 200 characters; the rest is cut at a word.
    """
    tops = [s.articles[0].headline for s in sections if s.articles]
    rest = [h for h in tops if h != skip] or tops
    text = " · ".join(rest[:limit])
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + "…"
    return text
