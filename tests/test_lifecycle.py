"""An operator's first week: the traps of the edition lifecycle, each reproduced, each closed.

Tomorrow's empty edition, a list that sends the minute it is made, subscribers who join after
the build, states that say "ready" while sending, plurals, impossible dates, typos.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.config import Settings
from digest.edition.state import LABELS, edition_state
from digest.errors import DigestError, InputError, NotFoundError
from digest.service import catalog
from digest.service.core import Digest, NotYetError
from digest.service.dispatch import RecordingDispatcher
from digest.store.db import Database
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    MailingList,
    StopReason,
    utcnow,
)
from tests.conftest import SmtpSink
from tests.test_cli import Operator

NOW = utcnow()
#: Stories of "today" are dated half an hour ago, so a run just after midnight UTC still has
#: them on the day the list (in UTC) calls today.
TODAY = (NOW - dt.timedelta(minutes=30)).date()
#: The day after today in UTC (the lists' zone): not TODAY + 1, which just after midnight is
#: today.
TOMORROW = NOW.date() + dt.timedelta(days=1)


def _list(db: Database, slug: str = "daily", **options: str) -> None:
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(MailingList)) == 0:
            catalog.add_section(session, "national", "National")
        catalog.add_list(session, slug, slug.title(), ["national"], **options)


def _story(db: Database, n: int, when: dt.datetime | None = None) -> None:
    with db.session() as session:
        section = catalog.get_section(session, "national")
        session.add(
            Article(url=f"https://n.example/{n}", section_id=section.id, headline=f"Story {n}",
                    teaser="What happened.", published_at=when or NOW - dt.timedelta(minutes=30))
        )  # fmt: skip


def _subscribe(db: Database, *addresses: str, slug: str = "daily") -> None:
    with db.session() as session:
        mailing_list = catalog.get_list(session, slug)
        for address in addresses:
            catalog.subscribe(session, mailing_list, address)


def _sending_core(settings: Settings, db: Database, smtp: SmtpSink) -> Digest:
    return Digest(settings.replace(smtp_url=smtp.url), db=db)


def _editions(db: Database) -> list[tuple[int, dt.date, EditionStatus]]:
    with db.session() as session:
        return [
            (e.id, e.edition_date, e.status)
            for e in session.scalars(select(Edition).order_by(Edition.id))
        ]


def _received(smtp: SmtpSink) -> list[str]:
    return sorted(r.recipients[0] for r in smtp.received)


# -- 1. tomorrow's edition, empty editions, drop and rebuild ----------------------------------


def test_a_day_that_has_not_started_is_refused_and_nothing_stored(
    db: Database, settings: Settings
) -> None:
    """start() for tomorrow (in the list's zone) stores nothing and says the day has not
    started; with send_early and no articles yet it still stores no empty edition."""
    _list(db)
    _subscribe(db, "ann@example.com")
    core = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    with pytest.raises(NotYetError, match="has not started yet"):
        core.start("daily", TOMORROW)
    with pytest.raises(InputError, match=r"no articles for daily on .* yet: nothing stored"):
        core.start("daily", TOMORROW, send_early=True)
    assert _editions(db) == []


def test_sending_early_on_purpose_builds_what_there_is(db: Database, settings: Settings) -> None:
    """With send_early, tomorrow's edition is built and sent now, with the stories there are
    now: its window ends at the build, so a story dated later waits for the next edition."""
    _list(db)
    _subscribe(db, "ann@example.com")
    _story(db, 1)
    _story(db, 2, NOW + dt.timedelta(minutes=30))  # dated ahead, as a feed may
    dispatcher = RecordingDispatcher()
    core = Digest(settings, db=db, dispatcher=dispatcher)
    start = core.start("daily", TOMORROW, send_early=True)
    assert start.status == EditionStatus.READY and dispatcher.sent == [(start.edition_id, None)]
    headlines = [a.headline for s in core.edition_draft(start.edition_id).sections
                 for a in s.articles]  # fmt: skip
    assert headlines == ["Story 1"]


def test_an_empty_edition_is_built_again_once_its_day_has_articles(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """A send before the day's stories arrive records an empty edition; the send after they
    arrive fills that edition and mails it, once per subscriber."""
    _list(db)
    _subscribe(db, "ann@example.com", "bob@example.com")
    core = _sending_core(settings, db, smtp_server)
    first = core.start("daily", TODAY)
    assert first.status == EditionStatus.EMPTY and not smtp_server.received
    _story(db, 1)
    second = core.start("daily", TODAY)
    assert second.created and second.edition_id == first.edition_id
    assert second.status == EditionStatus.READY
    assert _received(smtp_server) == ["ann@example.com", "bob@example.com"]
    assert core.start("daily", TODAY).status == EditionStatus.DONE
    assert len(smtp_server.received) == 2
    assert _editions(db) == [(first.edition_id, TODAY, EditionStatus.DONE)]


def test_the_scheduled_send_fills_an_empty_edition_when_articles_arrive(
    db: Database, settings: Settings
) -> None:
    """Beat's check that found no articles at the send time builds and queues the edition on a
    later minute, once the day's stories are in, and only once."""
    _list(db, send_at="00:00")
    _subscribe(db, "ann@example.com")
    with db.session() as session:
        catalog.get_list(session, "daily").created_at = NOW - dt.timedelta(days=2)
    dispatcher = RecordingDispatcher()
    core = Digest(settings, db=db, dispatcher=dispatcher)
    assert core.send_due(NOW) == []
    assert [status for _, _, status in _editions(db)] == [EditionStatus.EMPTY]
    _story(db, 1, NOW)  # on the day send_due's NOW is in
    started = core.send_due(NOW + dt.timedelta(minutes=1))
    assert len(started) == 1 and dispatcher.sent == [(started[0], None)]
    assert core.send_due(NOW + dt.timedelta(minutes=2)) == []


def test_drop_and_rebuild_only_while_nobody_has_the_edition(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """An edition built but not yet sent can be rebuilt (with the stories there are now) or
    dropped with its rows; once anyone was sent it, both are refused and nothing changes."""
    _list(db)
    _subscribe(db, "ann@example.com", "bob@example.com")
    _story(db, 1)
    queued = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    first = queued.start("daily", TODAY)
    _story(db, 2)
    rebuilt = queued.rebuild_edition(first.edition_id)
    assert rebuilt.status == EditionStatus.READY
    headlines = [a.headline for s in queued.edition_draft(rebuilt.edition_id).sections
                 for a in s.articles]  # fmt: skip
    assert sorted(headlines) == ["Story 1", "Story 2"]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2

    assert queued.drop_edition(rebuilt.edition_id) == ("daily", TODAY, 2)
    assert _editions(db) == []
    # A batch task queued for the dropped edition finds nothing, rather than crashing.
    assert queued.send_batch(rebuilt.edition_id).claimed == 0
    assert not queued.is_sending(rebuilt.edition_id)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0

    sent = _sending_core(settings, db, smtp_server).start("daily", TODAY)
    assert len(smtp_server.received) == 2
    for action in (queued.drop_edition, queued.rebuild_edition):
        with pytest.raises(DigestError, match="cannot be dropped or rebuilt"):
            action(sent.edition_id)
    assert _editions(db) == [(sent.edition_id, TODAY, EditionStatus.DONE)]
    with pytest.raises(NotFoundError, match="unknown edition: 999"):
        queued.drop_edition(999)


def test_a_claimed_row_blocks_a_drop(db: Database, settings: Settings) -> None:
    """A row a worker has leased (the message may be on its way) keeps the edition."""
    _list(db)
    _subscribe(db, "ann@example.com", "bob@example.com")
    _story(db, 1)
    core = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    edition_id = core.start("daily", TODAY).edition_id
    with db.session() as session:
        row = session.scalars(select(Delivery)).first()
        assert row is not None
        row.status = DeliveryStatus.LEASED
    with pytest.raises(DigestError, match="cannot be dropped"):
        core.drop_edition(edition_id)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2


# -- 2. a new list starts at its next send time -----------------------------------------------


def test_a_list_made_after_its_send_time_starts_the_next_day(
    db: Database, settings: Settings
) -> None:
    """Beat does not send a list the minute it is made because 07:00 has passed: its first
    edition is the next day's; a list made before the send time is due that same day."""
    _list(db, "late", send_at="07:00", timezone="Asia/Karachi")
    _list(db, "early", send_at="07:00", timezone="Asia/Karachi")
    day = dt.date(2026, 11, 24)
    with db.session() as session:
        # 10:00 and 06:00 in Karachi (UTC+5).
        catalog.get_list(session, "late").created_at = dt.datetime(2026, 11, 24, 5, 0)
        catalog.get_list(session, "early").created_at = dt.datetime(2026, 11, 24, 1, 0)
    _story(db, 1, dt.datetime(2026, 11, 24, 4))
    _story(db, 2, dt.datetime(2026, 11, 25, 1))
    dispatcher = RecordingDispatcher()
    core = Digest(settings, db=db, dispatcher=dispatcher)
    core.send_due(dt.datetime(2026, 11, 24, 5, 1))
    with db.session() as session:
        built = {(e.mailing_list.slug, e.edition_date) for e in session.scalars(select(Edition))}
    assert built == {("early", day)}
    core.send_due(dt.datetime(2026, 11, 25, 2, 0))  # 07:00 the next day
    with db.session() as session:
        built = {(e.mailing_list.slug, e.edition_date) for e in session.scalars(select(Edition))}
    assert ("late", day + dt.timedelta(days=1)) in built and ("late", day) not in built


# -- 3. subscribers who join after the build ---------------------------------------------------


def test_late_subscribers_are_counted_and_included_once(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """Someone confirmed after today's edition was sent is counted as joined since the build;
    include_late gives them a row and the send reaches them, and only them, once."""
    _list(db)
    _subscribe(db, "ann@example.com")
    _story(db, 1)
    core = _sending_core(settings, db, smtp_server)
    first = core.start("daily", TODAY)
    assert _received(smtp_server) == ["ann@example.com"] and first.late == 0
    _subscribe(db, "bob@example.com", "cid@example.com")
    again = core.start("daily", TODAY)
    assert again.late == 2 and again.dispatched is None and len(smtp_server.received) == 1
    assert core.late_count(first.edition_id) == 2

    included = core.start("daily", TODAY, include_late=True)
    assert included.included == 2 and included.late == 0
    assert _received(smtp_server) == ["ann@example.com", "bob@example.com", "cid@example.com"]
    assert core.include_late(first.edition_id) == 0
    assert core.start("daily", TODAY, include_late=True).included == 0
    assert len(smtp_server.received) == 3
    assert core.overview(first.edition_id)[0].label == "done"


def test_late_subscribers_of_a_paused_edition_wait_for_resume(
    db: Database, settings: Settings
) -> None:
    """Rows added to a paused edition are pending, not sent, and the edition stays paused."""
    _list(db)
    _subscribe(db, "ann@example.com")
    _story(db, 1)
    core = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    edition_id = core.start("daily", TODAY).edition_id
    core.pause(edition_id)
    _subscribe(db, "bob@example.com")
    assert core.include_late(edition_id) == 1
    summary = core.overview(edition_id)[0]
    assert summary.label == "paused" and summary.counts["pending"] == 2


# -- 4. states as an operator names them ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "counts", "stop", "held", "label"),
    [
        ("ready", {"pending": 5}, None, 0, "scheduled"),
        ("ready", {"pending": 2, "sent": 3}, None, 2, "scheduled"),
        ("ready", {"pending": 2, "sent": 3}, None, 0, "sending"),
        ("ready", {"leased": 1, "pending": 4}, None, 0, "sending"),
        ("ready", {"deferred": 1, "sent": 4}, None, 0, "sending"),
        ("ready", {}, None, 0, "scheduled"),
        ("ready", {"pending": 4, "sent": 1}, StopReason.TRANSPORT_ERROR, 0, "failed"),
        ("paused", {"pending": 4}, StopReason.OPERATOR_PAUSE, 0, "paused"),
        ("paused", {"pending": 4}, StopReason.TRANSPORT_ERRORS, 0, "failed"),
        ("paused", {"pending": 4}, StopReason.REFUSALS, 0, "failed"),
        ("done", {"sent": 5}, None, 0, "done"),
        ("done", {"sent": 4, "failed": 1}, None, 0, "failed"),
        ("cancelled", {"skipped": 5}, StopReason.CANCELLED, 0, "cancelled"),
        ("empty", {}, None, 0, "empty"),
    ],
)
def test_state_labels(
    status: str, counts: dict[str, int], stop: StopReason | None, held: int, label: str
) -> None:
    """Stored status, ledger counts and stop reason map to the name an operator would use."""
    assert edition_state(status, counts, stop, held) == label
    assert label in LABELS


def test_a_transport_failure_shows_as_failed_with_its_reason(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """A batch that cannot reach the server leaves the edition failed with the error as its
    reason; the next message that goes through clears it."""
    _list(db)
    _subscribe(db, "ann@example.com")
    _story(db, 1)
    queued = Digest(settings, db=db, dispatcher=RecordingDispatcher())
    edition_id = queued.start("daily", TODAY).edition_id
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    down = Digest(settings.replace(smtp_url=f"smtp://127.0.0.1:{dead}"), db=db)
    assert down.send_batch(edition_id).error
    summary = down.overview(edition_id)[0]
    assert summary.label == "failed" and summary.status == EditionStatus.READY
    assert summary.reason and summary.reason.startswith("transport error: ")
    up = _sending_core(settings, db, smtp_server)
    up.send_batch(edition_id)
    summary = up.overview(edition_id)[0]
    assert summary.label == "done" and summary.reason is None


# -- the same, from the command line ----------------------------------------------------------


@pytest.fixture
def op(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpSink
) -> Operator:
    monkeypatch.chdir(tmp_path)
    operator = Operator(
        {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SMTP_URL": smtp_server.url,
            "DIGEST_SECRET_KEY": "lifecycle-secret",
            "DIGEST_BASE_URL": "https://town.example",
            "DIGEST_FROM_ADDRESS": "news@town.example",
        }
    )
    (tmp_path / "local.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
    )
    operator("init")
    operator("sections", "add", "local", "--name", "Local")
    operator("sources", "add", str(tmp_path / "local.xml"), "--section", "local")
    operator("lists", "add", "town", "--name", "Town", "--sections", "local")
    operator("subscribers", "add", "ann@example.com", "--list", "town")
    return operator


def _stories(tmp_path: Path, *titles: str) -> None:
    when = (NOW - dt.timedelta(minutes=30)).replace(tzinfo=dt.UTC)
    from email.utils import format_datetime

    items = "".join(
        f"<item><title>{t}</title><link>https://town.example/{i}</link>"
        f"<guid>https://town.example/{i}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
        for i, t in enumerate(titles)
    )
    (tmp_path / "local.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    )


def test_cli_refuses_tomorrow_and_rebuilds_todays_empty_edition(
    op: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """`send --date TOMORROW` is one line naming --send-early and stores nothing; today's send
    before the stories records an empty edition that the send after them fills and mails."""
    refused = op("send", "--list", "town", "--date", TOMORROW.isoformat(), ok=False)
    assert refused.exit_code == 1 and "--send-early" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert "no editions yet" in op("status").output

    ahead = op("send", "--list", "town", "--date", TOMORROW.isoformat(), "--dry-run").output
    assert "has not started yet" in ahead and "no editions yet" in op("status").output

    empty = op("send", "--list", "town", "--date", TODAY.isoformat()).output
    assert "recorded as empty" in empty
    _stories(tmp_path, "Fair opens")
    op("ingest")
    dry = op("send", "--list", "town", "--date", TODAY.isoformat(), "--dry-run").output
    assert "Local: 1 article" in dry and "would send to 1 subscriber " in dry
    sent = op("send", "--list", "town", "--date", TODAY.isoformat()).output
    assert "1 sent" in sent and _received(smtp_server) == ["ann@example.com"]


def test_cli_since_starts_a_first_edition_and_dry_run_shows_the_window(
    op: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """`send --dry-run` names the hours a build now would take; `--since` moves where a list's
    first edition starts; a bad value, or --since once the list has an earlier edition, is
    one line and stores nothing."""
    assert "For a list's first edition only" in " ".join(op("send", "--help").output.split())
    _stories(tmp_path, "Fair opens")
    op("ingest")
    bad = op("send", "--list", "town", "--since", "last week", ok=False)
    assert bad.exit_code == 1 and "--since must be YYYY-MM-DD" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    since = (NOW - dt.timedelta(days=3)).replace(second=0, microsecond=0)
    flag = since.strftime("%Y-%m-%dT%H:%M")
    dry = op("send", "--list", "town", "--dry-run", "--since", flag).output
    assert f"articles published from {since:%Y-%m-%d %H:%M} to " in dry and "(UTC)" in dry
    assert "no editions yet" in op("status").output
    sent = op("send", "--list", "town", "--since", flag).output
    assert "1 sent" in sent and _received(smtp_server) == ["ann@example.com"]
    db = Database(op.env["DIGEST_DATABASE_URL"])
    with db.session() as session:
        assert session.scalars(select(Edition.window_start)).one() == since
    db.dispose()
    tomorrow = ("send", "--list", "town", "--date", TOMORROW.isoformat(), "--send-early")
    refused = op(*tomorrow, "--since", flag, ok=False)
    assert refused.exit_code == 1 and "--since is for a list's first edition" in refused.output
    assert len(refused.output.strip().splitlines()) == 1


def test_cli_edition_rebuild_and_drop(op: Operator, tmp_path: Path, smtp_server: SmtpSink) -> None:
    """An edition whose rows are all held for a reader's time zone is "scheduled"; `digest
    edition rebuild` and `drop` replace or remove it; a sent one is refused in one line."""
    _stories(tmp_path, "Fair opens")
    op("ingest")
    op("send", "--list", "town", "--date", TODAY.isoformat())
    # 23:59 in Honolulu is always still to come for today's UTC date: the row is held.
    op("lists", "add", "late", "--name", "Late", "--sections", "local", "--send-at", "23:59")
    op("subscribers", "add", "bob@example.com", "--list", "late", "--timezone", "Pacific/Honolulu")
    op("send", "--list", "late", "--date", TODAY.isoformat())
    status = op("status").output
    assert "scheduled" in status and "1 recipient held" in status

    rebuilt = op("edition", "rebuild", "2").output
    assert "edition 2 rebuilt" in rebuilt and "1 recipient held" in rebuilt
    new_id = max(int(line.split()[0]) for line in op("status").output.splitlines()[1:3])
    dropped = op("edition", "drop", str(new_id)).output
    assert "(late, " in dropped and "dropped with 1 unsent recipient;" in dropped
    assert "late" not in op("status").output
    refused = op("edition", "rebuild", "1", ok=False)
    assert refused.exit_code == 1 and "cannot be dropped or rebuilt" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    missing = op("edition", "drop", "7", ok=False)
    assert missing.exit_code == 1 and "unknown edition: 7" in missing.output
    assert _received(smtp_server) == ["ann@example.com"]


def test_cli_says_who_joined_since_the_build_and_includes_them(
    op: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """After a send, a new subscriber is named in `send` and `status` ("1 subscriber has
    joined"), and `send --include-late` mails that subscriber alone."""
    _stories(tmp_path, "Fair opens")
    op("ingest")
    op("send", "--list", "town", "--date", TODAY.isoformat())
    op("subscribers", "add", "bob@example.com", "--list", "town")
    again = op("send", "--list", "town", "--date", TODAY.isoformat()).output
    assert "1 subscriber has joined since this edition was built" in again
    dry = op("send", "--list", "town", "--date", TODAY.isoformat(), "--dry-run").output
    assert "already built (edition 1, done)" in dry and "1 subscriber has joined" in dry
    assert "--include-late" in op("status").output
    late = op("send", "--list", "town", "--date", TODAY.isoformat(), "--include-late").output
    assert "added 1 subscriber who joined" in late and "1 sent" in late
    assert _received(smtp_server) == ["ann@example.com", "bob@example.com"]


def test_cli_status_has_a_header_labels_and_the_reason(op: Operator, tmp_path: Path) -> None:
    """`digest status` starts with a header row whose columns the counts line up under, names
    a finished edition "done" and a paused one "paused" with its reason on the next line."""
    _stories(tmp_path, "Fair opens")
    op("ingest")
    op("send", "--list", "town", "--date", TODAY.isoformat())
    op("lists", "add", "late", "--name", "Late", "--sections", "local", "--send-at", "23:59")
    op("subscribers", "add", "bob@example.com", "--list", "late", "--timezone", "Pacific/Honolulu")
    op("send", "--list", "late", "--date", TODAY.isoformat())
    op("pause", "2")
    lines = op("status").output.splitlines()
    assert lines[0].split()[:4] == ["ID", "LIST", "DATE", "STATE"]
    assert lines[1].split()[:4] == ["2", "late", TODAY.isoformat(), "paused"]
    assert lines[2].strip() == "reason: paused by the operator"
    assert lines[3].strip() == "1 recipient held for their own time zone's send time"
    assert lines[4].split()[:4] == ["1", "town", TODAY.isoformat(), "done"]
    # Each count ends where its column's name ends.
    ends = [[m.end() for m in re.finditer(r"\S+", line)][-6:] for line in (lines[0], lines[4])]
    assert ends[0] == ends[1]


# -- 6. words and input -----------------------------------------------------------------------


def test_cli_dates_that_do_not_exist_or_overflow_are_one_line(op: Operator) -> None:
    """A date that is well formed but not real, or at the ends of the calendar, is one clear
    line, not a format complaint or a traceback."""
    op(
        "lists",
        "add",
        "east",
        "--name",
        "East",
        "--sections",
        "local",
        "--timezone",
        "Asia/Karachi",
    )
    cases = [
        (["send", "--list", "town", "--date", "2026-11-31"], "not a real date"),
        (["send", "--list", "town", "--date", "2026-13-01"], "not a real date"),
        (["send", "--list", "town", "--date", "26-11-01"], "must be YYYY-MM-DD"),
        (["send", "--list", "east", "--date", "0001-01-01", "--dry-run"], "out of range"),
        (["send", "--list", "town", "--date", "9999-12-31", "--dry-run"], "out of range"),
        (["preview", "--list", "east", "--date", "0001-01-01"], "out of range"),
        (["send", "--list", "east", "--date", "0001-01-01"], "out of range"),
        (["send", "--list", "east", "--date", "9999-12-31"], "out of range"),
    ]
    for args, message in cases:
        result = op(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_cli_suggests_the_closest_list_and_section(op: Operator) -> None:
    """A mistyped list or section name is answered with the closest existing one."""
    result = op("send", "--list", "twon", ok=False)
    assert "unknown list: twon (did you mean town?)" in result.output
    result = op("sources", "add", "https://x.example/feed", "--section", "lokal", ok=False)
    assert "unknown section: lokal (did you mean local?)" in result.output
    assert "did you mean" not in op("send", "--list", "zzzzzz", ok=False).output


def test_cli_counts_are_plural_only_when_more_than_one(op: Operator, tmp_path: Path) -> None:
    """One subscriber, one source, one list are said in the singular everywhere."""
    _stories(tmp_path, "Fair opens")
    ingest = op("ingest").output
    assert "ingested 1 source: 1 new article" in ingest
    lists = op("lists", "list").output
    assert "1 subscriber " in lists and "1 subscribers" not in lists
    dry = op("send", "--list", "town", "--date", TODAY.isoformat(), "--dry-run").output
    assert "would send to 1 subscriber " in dry and "1 article" in dry
    imported = tmp_path / "one.csv"
    imported.write_text("email,name\ncid@example.com,Cid\n")
    out = op("subscribers", "import", str(imported), "--list", "town").output
    assert "1 new" in out and "1 subscribers" not in out
