"""The editor's changes to a held edition's stored content, as pure functions."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.edition import review
from digest.errors import InputError

pytestmark = pytest.mark.unit


def _content() -> list[dict[str, object]]:
    return [
        {"slug": "national", "article_ids": [1, 2, 3], "more": 0, "also_in": {"2": [9]}},
        {"slug": "sport", "article_ids": [4, 5], "more": 2},
    ]


def test_drop_takes_the_story_and_what_hangs_on_it_and_leaves_the_original() -> None:
    """A dropped story goes with its "also in" reports, pin and teaser; the input is unchanged."""
    original = review.set_teaser(review.pin(_content(), 2), 2, "Mine")
    dropped = review.drop(original, 2)
    assert dropped[0]["article_ids"] == [1, 3]
    assert "also_in" not in dropped[0] and "pinned" not in dropped[0]
    assert "teasers" not in dropped[0]
    assert original[0]["article_ids"] == [2, 1, 3]


def test_pin_puts_the_story_on_top_above_earlier_pins() -> None:
    """Pinning moves a story to the top of its own section; the newest pin is first."""
    pinned = review.pin(review.pin(_content(), 2), 3)
    assert pinned[0]["article_ids"] == [3, 2, 1]
    assert pinned[0]["pinned"] == [3, 2]
    assert pinned[1] == _content()[1]


def test_move_places_the_story_and_unpins_it() -> None:
    """A moved story lands at its place (1 = top) and loses its pin."""
    moved = review.move(review.pin(_content(), 1), 1, 3)
    assert moved[0]["article_ids"] == [2, 3, 1]
    assert "pinned" not in moved[0]
    assert review.move(_content(), 5, 1)[1]["article_ids"] == [5, 4]


@pytest.mark.parametrize("position", [0, 4, -1])
def test_move_out_of_the_section_is_refused(position: int) -> None:
    """A place outside the section is refused with the range."""
    with pytest.raises(InputError, match="position must be 1 to 3"):
        review.move(_content(), 1, position)


def test_unknown_story_is_refused() -> None:
    """A story the edition does not show cannot be changed."""
    for change in (review.drop, review.pin):
        with pytest.raises(InputError, match="story 77 is not in this edition"):
            change(_content(), 77)


def test_teaser_set_and_restored() -> None:
    """An editor's teaser is kept per story; an empty one gives the feed's back."""
    edited = review.set_teaser(_content(), 4, "Short and sharp")
    assert edited[1]["teasers"] == {"4": "Short and sharp"}
    assert "teasers" not in review.set_teaser(edited, 4, "")[1]


def test_teaser_and_note_are_plain_text_and_capped() -> None:
    """Controls and line breaks become spaces; too long or a lone surrogate is refused."""
    assert review.check_teaser("  a\nb\x00c\u202e ") == "a b c"
    assert review.check_note("<b>bold</b>") == "<b>bold</b>"  # escaped when rendered
    with pytest.raises(InputError, match="at most 300"):
        review.check_teaser("x" * 301)
    with pytest.raises(InputError, match="at most 600"):
        review.check_note("x" * 601)
    with pytest.raises(InputError, match="lone surrogate"):
        review.check_note("\ud800")


@pytest.mark.parametrize(
    ("send_at", "hours", "now", "opened"),
    [
        ("07:00", 2, "04:59", False),
        ("07:00", 2, "05:00", True),
        ("01:00", 3, "00:00", True),
        ("07:00", 0, "06:59", False),
    ],
)
def test_review_window(send_at: str, hours: int, now: str, opened: bool) -> None:
    """The review window opens the hours before the send time, never on the day before."""
    local = dt.datetime.combine(dt.date(2024, 3, 10), dt.time.fromisoformat(now))
    assert review.review_opens(send_at, hours, local) is opened
