"""Choosing a day's articles: the window in the list's zone, grouping, limits."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.edition.select import (
    ArticleView,
    edition_window,
    for_preferences,
    group_sections,
    local_today,
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


def test_window_is_the_local_calendar_day_in_utc() -> None:
    """A list's day runs from its local midnight to the next, expressed in naive UTC."""
    day = dt.date(2026, 11, 24)
    assert edition_window(day, "Asia/Karachi") == (
        dt.datetime(2026, 11, 23, 19, 0),
        dt.datetime(2026, 11, 24, 19, 0),
    )
    assert edition_window(day, "America/New_York") == (
        dt.datetime(2026, 11, 24, 5, 0),
        dt.datetime(2026, 11, 25, 5, 0),
    )


def test_article_belongs_to_different_editions_by_zone() -> None:
    """An article published 2026-11-24 20:00 UTC is in Karachi's 25th and New York's 24th."""
    published = dt.datetime(2026, 11, 24, 20, 0)
    k_start, k_end = edition_window(dt.date(2026, 11, 25), "Asia/Karachi")
    n_start, n_end = edition_window(dt.date(2026, 11, 24), "America/New_York")
    assert k_start <= published < k_end
    assert n_start <= published < n_end
    k24 = edition_window(dt.date(2026, 11, 24), "Asia/Karachi")
    assert not (k24[0] <= published < k24[1])


def test_dst_day_is_23_hours_long() -> None:
    """The day clocks spring forward in New York is 23 hours, not 24."""
    start, end = edition_window(dt.date(2026, 3, 8), "America/New_York")
    assert end - start == dt.timedelta(hours=23)


def test_unknown_zone_is_a_clear_error() -> None:
    """A misspelt time zone is reported, not silently taken as UTC."""
    with pytest.raises(InputError, match="unknown time zone"):
        edition_window(dt.date(2026, 1, 1), "Asia/Karachy")


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
