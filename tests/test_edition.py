"""Choosing an edition's articles: its window (from the previous edition to the build, in the
list's zone), grouping, limits."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.edition.select import (
    LATE_GRACE,
    ArticleView,
    edition_window,
    for_preferences,
    group_sections,
    local_day,
    local_instant,
    local_today,
    parse_since,
    window_label,
)
from digest.errors import InputError

ORDER = [("national", "National"), ("sports", "Sports"), ("business", "Business")]


def _article(i: int, section: str, when: dt.datetime) -> ArticleView:
    return ArticleView(i, section, f"Headline {i}", "teaser", f"https://x.example/{i}", when)


def test_same_instant_is_a_different_day_in_karachi_and_new_york() -> None:
    """At 02:00 UTC it is already tomorrow in Karachi (UTC+5) but still yesterday in New York."""
    instant = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    assert local_today("Asia/Karachi", instant) == dt.date(2026, 11, 24)
    assert local_today("America/New_York", instant) == dt.date(2026, 11, 23)


def test_local_day_is_the_calendar_day_in_utc() -> None:
    """A list's day runs from its local midnight to the next, expressed in naive UTC."""
    day = dt.date(2026, 11, 24)
    assert local_day(day, "Asia/Karachi") == (
        dt.datetime(2026, 11, 23, 19, 0),
        dt.datetime(2026, 11, 24, 19, 0),
    )
    assert local_day(day, "America/New_York") == (
        dt.datetime(2026, 11, 24, 5, 0),
        dt.datetime(2026, 11, 25, 5, 0),
    )


def test_dst_day_is_23_hours_long() -> None:
    """The day clocks spring forward in New York is 23 hours, not 24."""
    start, end = local_day(dt.date(2026, 3, 8), "America/New_York")
    assert end - start == dt.timedelta(hours=23)


def test_unknown_zone_is_a_clear_error() -> None:
    """A misspelt time zone is reported, not silently taken as UTC."""
    with pytest.raises(InputError, match="unknown time zone"):
        local_day(dt.date(2026, 1, 1), "Asia/Karachy")


# 07:00 in Karachi (UTC+5) on 24 and 25 November.
PK_0700_24 = dt.datetime(2026, 11, 24, 2, 0)
PK_0700_25 = dt.datetime(2026, 11, 25, 2, 0)
DAY = dt.date(2026, 11, 25)


def test_window_runs_from_the_previous_editions_end_to_the_build() -> None:
    """Built at 07:00, an edition starts where the one before ended (07:00 the day before),
    ends at its build, and takes late arrivals from a day before its start."""
    window = edition_window(
        DAY,
        "Asia/Karachi",
        PK_0700_25,
        previous_end=PK_0700_24,
        first_start=PK_0700_24 - dt.timedelta(days=9),
    )
    assert (window.start, window.end) == (PK_0700_24, PK_0700_25)
    assert window.earliest == PK_0700_24 - LATE_GRACE
    later = edition_window(DAY, "Asia/Karachi", PK_0700_25 + dt.timedelta(hours=8),
                           previous_end=PK_0700_24)  # fmt: skip
    assert later.end == PK_0700_25 + dt.timedelta(hours=8)


def test_late_arrivals_are_never_taken_from_before_the_lists_first_window() -> None:
    """The grace for late stories does not reach back past where the list's first edition
    started (an operator's --since stands)."""
    first_start = PK_0700_24 - dt.timedelta(hours=3)
    window = edition_window(DAY, "Asia/Karachi", PK_0700_25, previous_end=PK_0700_24,
                            first_start=first_start)  # fmt: skip
    assert window.earliest == first_start


def test_a_first_edition_covers_the_last_day_or_since() -> None:
    """With no edition before it, an edition covers the same local time a day back (nothing
    late: there was no edition to be late for), or from the operator's --since, or from
    where it started before a rebuild."""
    window = edition_window(DAY, "Asia/Karachi", PK_0700_25)
    assert (window.start, window.end, window.earliest) == (PK_0700_24, PK_0700_25, PK_0700_24)
    since = dt.datetime(2026, 11, 20, 0, 0)
    assert edition_window(DAY, "Asia/Karachi", PK_0700_25, since=since).start == since
    kept = dt.datetime(2026, 11, 24, 1, 0)
    assert edition_window(DAY, "Asia/Karachi", PK_0700_25, kept_start=kept).start == kept
    # A previous edition's end wins: windows meet end to start.
    assert edition_window(DAY, "Asia/Karachi", PK_0700_25, previous_end=PK_0700_24,
                          kept_start=kept).start == PK_0700_24  # fmt: skip


def test_a_first_edition_across_a_dst_change_covers_the_local_day() -> None:
    """Built at 07:00 on the day New York falls back, a first edition starts at 07:00 the
    day before: 25 hours, the span its daily successors cover."""
    build = dt.datetime(2026, 11, 1, 12, 0)  # 07:00 EST
    window = edition_window(dt.date(2026, 11, 1), "America/New_York", build)
    assert window.start == dt.datetime(2026, 10, 31, 11, 0)  # 07:00 EDT
    assert window.end - window.start == dt.timedelta(hours=25)


def test_a_past_days_edition_ends_with_its_day_and_before_the_next_edition() -> None:
    """Built late, a past day's edition ends at that day's end in the list's zone, or where
    the list's next edition already starts, whichever is first."""
    long_after = dt.datetime(2026, 12, 3, 12, 0)
    _, day_end = local_day(DAY, "Asia/Karachi")
    window = edition_window(DAY, "Asia/Karachi", long_after, previous_end=PK_0700_24)
    assert (window.start, window.end) == (PK_0700_24, day_end)
    clipped = edition_window(DAY, "Asia/Karachi", long_after, previous_end=PK_0700_24,
                             next_start=PK_0700_25)  # fmt: skip
    assert clipped.end == PK_0700_25


def test_a_window_squeezed_by_its_neighbours_offers_nothing() -> None:
    """A day whose hours the editions around it already cover gets an empty window, with no
    late arrivals either."""
    window = edition_window(DAY, "Asia/Karachi", dt.datetime(2026, 12, 3),
                            previous_end=PK_0700_25, next_start=PK_0700_25)  # fmt: skip
    assert window.empty and window.earliest == window.start == window.end == PK_0700_25


def test_since_is_a_local_date_or_time() -> None:
    """--since takes YYYY-MM-DD or YYYY-MM-DDTHH:MM, read in the list's zone; anything else
    is one clear error."""
    assert parse_since("2026-11-20") == dt.datetime(2026, 11, 20)
    assert parse_since("2026-11-20T06:30") == dt.datetime(2026, 11, 20, 6, 30)
    assert local_instant(parse_since("2026-11-20T06:30"), "Asia/Karachi") == dt.datetime(
        2026, 11, 20, 1, 30
    )
    for bad in ("20-11-2026", "2026-11-20 06:30", "2026-02-30", "yesterday", "9999-12-31"):
        with pytest.raises(InputError, match="since"):
            parse_since(bad)


def test_window_label_is_in_the_lists_zone() -> None:
    """Dry runs show the window in the list's local time."""
    window = edition_window(DAY, "Asia/Karachi", PK_0700_25, previous_end=PK_0700_24)
    assert window_label(window, "Asia/Karachi") == (
        "articles published from 2026-11-24 07:00 to 2026-11-25 07:00 (Asia/Karachi)"
    )
    squeezed = edition_window(DAY, "Asia/Karachi", PK_0700_25, previous_end=PK_0700_25)
    assert "no hours of its own" in window_label(squeezed, "Asia/Karachi")


def test_sections_follow_list_order_with_limit_and_no_empties() -> None:
    """Sections come in the list's order, newest N each, and an empty section is dropped."""
    base = dt.datetime(2026, 11, 24, 8, 0)
    articles = [_article(i, "business", base + dt.timedelta(minutes=i)) for i in range(5)]
    articles.append(_article(10, "national", base))
    articles.append(_article(11, "weather", base))  # not carried by this list
    blocks = group_sections(articles, ORDER, per_section=3)
    assert [b.slug for b in blocks] == ["national", "business"]
    assert [a.id for a in blocks[1].articles] == [4, 3, 2]


def test_preferences_pick_sections_and_never_empty() -> None:
    """A subscriber's section choice filters the edition; a choice matching nothing gets all."""
    when = dt.datetime(2026, 11, 24, 8, 0)
    blocks = group_sections([_article(1, "national", when), _article(2, "sports", when)], ORDER, 5)
    assert [b.slug for b in for_preferences(blocks, ["sports"])] == ["sports"]
    assert [b.slug for b in for_preferences(blocks, ["weather"])] == ["national", "sports"]
    assert for_preferences(blocks, None) == blocks


def _report(
    i: int,
    section: str,
    headline: str,
    *,
    url: str,
    source: int,
    source_name: str,
    minutes: int = 0,
    position: int | None = None,
) -> ArticleView:
    return ArticleView(
        i,
        section,
        headline,
        "ISLAMABAD: The court's deputy registrar issued the notification on Tuesday.",
        url,
        dt.datetime(2026, 11, 24, 8) + dt.timedelta(minutes=minutes),
        source_id=source,
        source_name=source_name,
        feed_position=position,
    )


IHC = "IHC announces winter vacation from December 23 to January 1"


def test_a_story_in_two_sections_and_two_feeds_is_shown_once() -> None:
    """The same story filed by one site under two sections and reported by a wire is shown
    once, in the list's first section that has it, with the others as "also in": the other
    section by name (same site), the wire by its feed's name. A section left with no story of
    its own is dropped, and "more" counts stories, not reports."""
    order = [("national", "National"), ("health-education", "Health & Education")]
    reports = [
        _report(
            1,
            "health-education",
            IHC,
            url="https://paper.example/health-education/ihc-winter-vacation",
            source=2,
            source_name="Paper Education",
        ),
        _report(
            2,
            "national",
            IHC,
            url="https://paper.example/national/ihc-winter-vacation",
            source=1,
            source_name="Paper National",
            minutes=5,
        ),
        _report(
            3,
            "national",
            "Islamabad High Court to observe winter vacation from Dec 23",
            url="https://wire.example/story/481233",
            source=3,
            source_name="Capital Wire",
            minutes=30,
        ),
    ]
    (block,) = group_sections(reports, order, per_section=5)
    assert block.slug == "national" and block.more == 0
    (shown,) = block.articles
    assert shown.id == 2
    assert [(o.id, o.label, o.url) for o in shown.also_in] == [
        (3, "Capital Wire", "https://wire.example/story/481233"),
        (1, "Health & Education", "https://paper.example/health-education/ihc-winter-vacation"),
    ]


def test_a_section_ranks_by_feeds_and_place_then_recency() -> None:
    """A story two feeds carried comes before a newer single report, and of two single
    reports filed at once the one at the top of its feed comes first; "more" counts the
    stories left out."""
    order = [("national", "National")]
    reports = [
        _report(
            1, "national", IHC, url="https://a.example/1", source=1, source_name="A", minutes=0
        ),
        _report(
            2, "national", IHC, url="https://b.example/2", source=2, source_name="B", minutes=10
        ),
        _article(3, "national", dt.datetime(2026, 11, 24, 11)),
        _report(
            4,
            "national",
            "Rupee closes higher against the dollar in interbank trade",
            url="https://a.example/4",
            source=1,
            source_name="A",
            minutes=180,
            position=0,
        ),
    ]
    (block,) = group_sections(reports, order, per_section=2)
    assert [a.id for a in block.articles] == [1, 4]
    assert block.more == 1


def test_pinned_stories_come_first_in_pin_order() -> None:
    """An editor's pins put their stories first in the order pinned, whatever their rank."""
    base = dt.datetime(2026, 11, 24, 8, 0)
    articles = [_article(i, "business", base + dt.timedelta(minutes=i)) for i in range(5)]
    (block,) = group_sections(articles, ORDER, per_section=3, pins=[1, 0])
    assert [a.id for a in block.articles] == [1, 0, 4]
