"""An editor's review before the send: a list with review has its edition built ahead and
held; drops, pins, moves, teasers and a note change what is sent, each recorded with who;
the approval (or the send time, as the list says) releases it."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from digest.config import Settings
from digest.errors import DigestError, InputError, NotFoundError
from digest.service import catalog
from digest.service.core import Digest
from digest.service.dispatch import RecordingDispatcher
from digest.store.db import Database
from digest.store.models import Article, EditionStatus, ReviewEvent
from tests.builders import ledger_counts

DAY = dt.date(2024, 3, 10)
#: The list sends at 07:00 UTC; with two hours of review its edition is built at 05:00.
BEFORE = dt.datetime(2024, 3, 10, 4, 59)
OPENS = dt.datetime(2024, 3, 10, 5, 0)
SEND = dt.datetime(2024, 3, 10, 7, 0)


def _site(db: Database, unreviewed: str = "send") -> list[int]:
    """A reviewed list, two readers and three national stories of DAY; their ids."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(
            session, "daily", "Daily", ["national"], send_at="07:00", review=True,
            review_hours=2, unreviewed=unreviewed,
        )  # fmt: skip
        mailing_list.created_at = dt.datetime(2024, 3, 1)
        for address in ("ann@example.com", "bob@example.com"):
            catalog.subscribe(session, mailing_list, address)
        section = catalog.get_section(session, "national")
        stories = [
            Article(url=f"https://n.example/{i}", section_id=section.id,
                    headline=f"Story {i}", teaser=f"Teaser {i}.",
                    published_at=dt.datetime(2024, 3, 10, 1 + i))
            for i in range(3)
        ]  # fmt: skip
        session.add_all(stories)
        session.commit()
        return [s.id for s in stories]


def _core(settings: Settings, db: Database) -> tuple[Digest, RecordingDispatcher]:
    dispatcher = RecordingDispatcher()
    return Digest(settings, db=db, dispatcher=dispatcher), dispatcher


def _events(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(ReviewEvent)) or 0)


def test_a_reviewed_list_is_built_ahead_and_held(db: Database, settings: Settings) -> None:
    """Before the review window nothing is built; at it the edition is built with its
    ledger, held, not dispatched, and shown as awaiting review."""
    _site(db)
    core, dispatcher = _core(settings, db)
    assert core.send_due(BEFORE) == []
    assert core.overview() == []
    assert core.send_due(OPENS) == []
    (summary,) = core.overview()
    assert summary.status == "held" and summary.label == "awaiting review"
    assert summary.review_words == "awaiting review"
    assert ledger_counts(db, summary.id) == {"pending": 2}
    assert dispatcher.sent == []
    assert core.sweep(OPENS) == {}
    assert core.review.show("daily").held


def test_changes_shape_what_is_sent_and_are_recorded(db: Database, settings: Settings) -> None:
    """Drop, pin, move, teaser and note change the stored edition and its subject, each
    recorded with who; the rendered digest shows them, the note escaped."""
    ids = _site(db)
    core, _ = _core(settings, db)
    core.send_due(OPENS)
    view = core.review.show("daily")
    assert [s.id for s in view.sections[0].stories] == [ids[2], ids[1], ids[0]]
    assert "Story 2" in view.subject
    core.review.drop("daily", ids[2], "ed")
    core.review.pin(str(view.edition_id), ids[0], "ed")
    core.review.teaser("daily", ids[1], "Sharper words", "kim")
    view = core.review.note("daily", "Good <b>morning</b>", "kim")
    assert [s.id for s in view.sections[0].stories] == [ids[0], ids[1]]
    assert view.sections[0].stories[0].pinned and view.sections[0].stories[1].edited
    assert "Story 0" in view.subject  # the top story changed, so did the subject
    assert [(e.who, e.action) for e in view.events] == [
        ("ed", "drop"), ("ed", "pin"), ("kim", "teaser"), ("kim", "note"),
    ]  # fmt: skip
    html = core.preview_html(core.edition_draft(view.edition_id))
    assert "Sharper words" in html and "Teaser 1." not in html
    assert "Good &lt;b&gt;morning&lt;/b&gt;" in html and "Story 2" not in html
    # The note above the stories, which are in the editor's order.
    assert html.index("Good &lt;b&gt;") < html.index(">Story 0</a>") < html.index(">Story 1</a>")
    moved = core.review.move("daily", ids[1], 1, "ed")
    assert [s.id for s in moved.sections[0].stories] == [ids[1], ids[0]]


def test_refused_changes_write_nothing(db: Database, settings: Settings) -> None:
    """An unknown story, a place out of range, an over-long teaser, the last story dropped:
    each refused with words, and neither the edition nor the history changes."""
    ids = _site(db)
    core, _ = _core(settings, db)
    core.send_due(OPENS)
    before = core.review.show("daily")
    with pytest.raises(InputError, match="not in this edition"):
        core.review.drop("daily", 999_999, "ed")
    with pytest.raises(InputError, match="position must be 1 to 3"):
        core.review.move("daily", ids[0], 9, "ed")
    with pytest.raises(InputError, match="at most 300"):
        core.review.teaser("daily", ids[0], "x" * 400, "ed")
    core.review.drop("daily", ids[0], "ed")
    core.review.drop("daily", ids[1], "ed")
    with pytest.raises(InputError, match="no story"):
        core.review.drop("daily", ids[2], "ed")
    after = core.review.show("daily")
    assert [s.id for s in after.sections[0].stories] == [ids[2]]
    assert len(after.events) == 2 and before.events == ()
    with pytest.raises(DigestError, match=r"no such list|unknown list|not found|No list"):
        core.review.show("nosuchlist")
    # An id past the 32-bit columns is no edition (not a database error on PostgreSQL).
    with pytest.raises(NotFoundError, match="unknown edition: 2147483648"):
        core.review.approve("2147483648", "ed")


def test_approved_edition_goes_at_the_send_time(db: Database, settings: Settings) -> None:
    """Approved before the send time it waits for it; then it is released and dispatched,
    with those who joined meanwhile; the summary says who approved it."""
    _site(db)
    core, dispatcher = _core(settings, db)
    core.send_due(OPENS)
    view = core.review.approve("daily", "kim", now=OPENS)
    assert view.held and view.approved_by == "kim"
    with pytest.raises(InputError, match="already approved"):
        core.review.approve("daily", "ed", now=OPENS)
    with db.session() as session:
        catalog.subscribe(session, catalog.get_list(session, "daily"), "cy@example.com")
    assert dispatcher.sent == []
    assert core.send_due(SEND) == [view.edition_id]
    summary = core.summary(view.edition_id)
    assert summary.status == EditionStatus.READY.value
    assert summary.review_words == "approved by kim"
    assert ledger_counts(db, view.edition_id) == {"pending": 3}
    released = core.review.show(str(view.edition_id))
    assert [e.action for e in released.events] == ["approve", "release"]
    with pytest.raises(DigestError, match="not held for review"):
        core.review.drop(str(view.edition_id), 1, "ed")
    assert core.send_due(SEND + dt.timedelta(minutes=1)) == []


@pytest.mark.parametrize("unreviewed", ["send", "hold"])
def test_unapproved_edition_at_the_send_time(
    db: Database, settings: Settings, unreviewed: str
) -> None:
    """At the send time an unapproved edition goes as built ("send") or waits ("hold") until
    an approval, which then releases it at once."""
    _site(db, unreviewed)
    core, dispatcher = _core(settings, db)
    core.send_due(OPENS)
    edition_id = core.review.show("daily").edition_id
    started = core.send_due(SEND)
    if unreviewed == "send":
        assert started == [edition_id]
        assert core.summary(edition_id).status == "ready"
        return
    assert started == [] and dispatcher.sent == []
    assert core.summary(edition_id).label == "awaiting review"
    view = core.review.approve("daily", "kim", now=SEND + dt.timedelta(hours=1))
    assert not view.held and [e.action for e in view.events] == ["approve", "release"]
    assert dispatcher.sent == [(edition_id, None)]


def test_a_held_list_not_built_ahead_is_held_at_the_send_time(
    db: Database, settings: Settings
) -> None:
    """A "hold" list whose review window passed unseen (nothing ran) is built held at the
    send time, not sent."""
    _site(db, "hold")
    core, dispatcher = _core(settings, db)
    assert core.send_due(SEND) == []
    assert core.review.show("daily").held and dispatcher.sent == []


def test_list_review_settings(db: Database, settings: Settings) -> None:
    """The review settings are checked, changed alone, and shown on the list."""
    _site(db)
    core, _ = _core(settings, db)
    view = core.catalog.set_list_review("daily", review_hours=5, unreviewed="hold")
    assert (view.review, view.review_hours, view.unreviewed) == (True, 5, "hold")
    with pytest.raises(InputError, match="--review-hours must be 0 to 23"):
        core.catalog.set_list_review("daily", review_hours=30)
    with pytest.raises(InputError, match="--unreviewed must be send or hold"):
        core.catalog.set_list_review("daily", unreviewed="maybe")
    assert core.catalog.set_list_review("daily", review=False).review is False


def test_the_cli_reviews_an_edition(db: Database, settings: Settings) -> None:
    """`digest review` shows, changes and approves, and refuses with one clear line."""
    from digest.cli import cli

    ids = _site(db)
    core, _ = _core(settings, db)
    core.send_due(OPENS)
    env = {"DIGEST_DATABASE_URL": settings.database_url, "DIGEST_SECRET_KEY": "test-secret-key",
           "DIGEST_OUTBOX_DIR": settings.outbox_dir}  # fmt: skip
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["review", *args], env=env, catch_exceptions=False)
        return result.exit_code, result.output

    code, out = run("show", "daily")
    assert code == 0 and "awaiting review" in out and f"[{ids[0]}] Story 0" in out
    code, out = run("drop", "daily", str(ids[2]))
    assert code == 0 and "Story 2" not in out.split("history:")[0] and "dropped story" in out
    assert run("pin", "daily", str(ids[0]))[0] == 0
    assert run("teaser", "daily", str(ids[1]), "Sharper")[0] == 0
    assert run("note", "daily", "Hello readers")[0] == 0
    code, out = run("move", "daily", str(ids[1]), "9")
    assert code == 1 and "position must be 1 to 2" in out and "Traceback" not in out
    code, out = run("approve", "daily")
    assert code == 0 and "approved by" in out
    code, out = run("note", "daily", "late")
    assert code == 1 and "is not changed any more" in out
