"""Ranking a section's stories: pins, feeds carrying a story, place in a feed, recency."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.edition.cluster import Cluster
from digest.edition.rank import feeds, rank, score
from digest.edition.select import ArticleView

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 24, 12)


def _article(
    i: int,
    *,
    source: int | None = None,
    hours_old: float = 0,
    position: int | None = None,
    url: str | None = None,
) -> ArticleView:
    return ArticleView(
        i,
        "national",
        f"Headline {i}",
        "",
        url or f"https://site.example/{i}",
        NOW - dt.timedelta(hours=hours_old),
        source_id=source if source is not None else i,
        feed_position=position,
    )


def _story(*members: ArticleView) -> Cluster[ArticleView]:
    return Cluster(members[0], members[1:])


def _ids(clusters: list[Cluster[ArticleView]]) -> list[int]:
    return [c.representative.id for c in clusters]


def test_three_feeds_outrank_one_equally_recent() -> None:
    """A story three feeds carried comes before one a single feed carried at the same time,
    even when the single feed put it at the top."""
    wide = _story(_article(1), _article(2, source=20), _article(3, source=30))
    single = _story(_article(4, position=0))
    assert _ids(rank([single, wide], NOW)) == [1, 4]
    assert score(wide, NOW) > score(single, NOW)


def test_a_second_feed_is_worth_half_a_day() -> None:
    """Two feeds beat a single report up to twelve hours newer, not one much newer still."""
    two = _story(_article(1, hours_old=10), _article(2, source=20, hours_old=10))
    newer = _story(_article(3))
    assert _ids(rank([newer, two], NOW)) == [1, 3]
    older = _story(_article(4, hours_old=14), _article(5, source=50, hours_old=14))
    assert _ids(rank([older, newer], NOW)) == [3, 4]


def test_top_of_feed_outranks_lower_in_feed() -> None:
    """Of two single reports filed at once, the one higher in its feed comes first; an
    unknown place counts as low in the feed."""
    top, third, unknown = (
        _story(_article(1, position=0)),
        _story(_article(2, position=2)),
        _story(_article(3)),
    )
    assert _ids(rank([unknown, third, top], NOW)) == [1, 2, 3]


def test_a_pin_beats_everything_in_pin_order() -> None:
    """Pinned stories come first, in the editor's order, whatever their score; a pin on any
    report of a story pins the story."""
    wide = _story(_article(1), _article(2, source=20), _article(3, source=30))
    old = _story(_article(4, hours_old=20), _article(5, source=50, hours_old=20))
    stale = _story(_article(6, hours_old=23))
    assert _ids(rank([wide, old, stale], NOW, pins=[6, 5])) == [6, 4, 1]
    assert _ids(rank([wide, old, stale], NOW, pins=[99])) == [1, 4, 6]


def test_ties_go_to_the_newer_then_the_higher_id() -> None:
    """Equal scores are broken by recency, then by id (higher first, as the edition always
    ordered articles filed at the same instant)."""
    a, b, c = _story(_article(1)), _story(_article(2)), _story(_article(3, hours_old=1))
    assert _ids(rank([a, c, b], NOW)) == [2, 1, 3]


def test_feeds_counts_sources_and_hosts_of_deleted_ones() -> None:
    """One source twice is one feed; articles whose source is gone count by their site."""
    story = _story(
        _article(1, source=7),
        _article(2, source=7),
        ArticleView(3, "national", "H", "", "https://other.example/3", NOW),
        ArticleView(4, "national", "H", "", "https://other.example/4", NOW),
        ArticleView(5, "national", "H", "", "https://third.example/5", NOW),
    )
    assert feeds(story) == 3


def test_nothing_to_rank() -> None:
    """No stories rank to no stories."""
    assert rank([], NOW) == []


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 23), st.none() | st.integers(0, 30)),
        min_size=1,
        max_size=12,
    )
)
def test_without_pins_more_feeds_at_equal_age_and_place_never_ranks_lower(
    rows: list[tuple[int, int, int | None]],
) -> None:
    """Among any stories, one carried by more feeds than another of the same age and feed
    place is ranked before it."""
    stories = []
    next_id = 1
    for count, hours, position in rows:
        members = []
        for k in range(count):
            members.append(
                _article(next_id, source=next_id * 10 + k, hours_old=hours, position=position)
            )
            next_id += 1
        stories.append(_story(*members))
    order = {c.representative.id: i for i, c in enumerate(rank(stories, NOW))}
    for a in stories:
        for b in stories:
            same = (
                a.representative.published_at == b.representative.published_at
                and a.representative.feed_position == b.representative.feed_position
            )
            if same and len(a.members) > len(b.members):
                assert order[a.representative.id] < order[b.representative.id]
