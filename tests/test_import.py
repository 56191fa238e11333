"""Subscriber CSV import: set-based writes on SQLite and PostgreSQL, every bad row reported by
line, hostile files turned into clear errors, and export cells a spreadsheet cannot run."""

from __future__ import annotations

import io
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.audience import addresses
from digest.errors import InputError
from digest.service import catalog
from digest.service.catalog import import_subscribers
from digest.service.csvio import MAX_LINE_CHARS, csv_safe_cell, csv_unsafe_cell
from digest.store.db import Database
from digest.store.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)


@pytest.fixture
def daily(db: Database) -> int:
    """The id of a list 'daily' (and an empty list 'weekly') on the test database."""
    with db.session() as session:
        catalog.add_section(session, "news", "News")
        catalog.add_list(session, "weekly", "Weekly", ["news"])
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["news"])
        return mailing_list.id


def _csv(tmp_path: Path, content: str | bytes, name: str = "readers.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _members(db: Database, list_slug: str = "daily") -> dict[str, tuple[str, str, str]]:
    """email -> (name, subscriber status, subscription status) of the list's subscribers."""
    with db.session() as session:
        rows = session.execute(
            select(Subscriber, Subscription)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(MailingList.slug == list_slug)
        )
        return {s.email: (s.name, s.status.value, sub.status.value) for s, sub in rows}


def _errors(report: catalog.ImportReport) -> list[tuple[int, str]]:
    return [(e.line, e.reason) for e in report.errors]


# -- the import on both databases --------------------------------------------------------------


def test_new_addresses_become_active_confirmed_subscribers_with_the_file_as_source(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """A new address becomes an active subscriber with a confirmed subscription whose source
    names the file and whose created/confirmed times are set, address lower-cased."""
    path = _csv(tmp_path, "Email,Name\nAnn@Example.COM,Ann\nbob@example.org,\n")
    report = import_subscribers(db, daily, path)
    assert (report.added, report.already, report.errors) == (2, 0, [])
    with db.session() as session:
        subscriptions = list(session.scalars(select(Subscription).order_by(Subscription.id)))
        assert {s.source for s in subscriptions} == {"csv import readers.csv"}
        assert all(s.status == SubscriptionStatus.CONFIRMED for s in subscriptions)
        assert all(s.created_at and s.confirmed_at == s.created_at for s in subscriptions)
    assert _members(db) == {
        "ann@example.com": ("Ann", "active", "confirmed"),
        "bob@example.org": ("", "active", "confirmed"),
    }


def test_bad_rows_are_reported_by_line_and_the_good_ones_kept(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """Each bad row (bad address, no address, extra field) is reported with its line number,
    counted after a quoted field with a line break, and every good row is imported."""
    path = _csv(
        tmp_path,
        'email,name\none@example.com,"Two\nLines"\nnot-an-address,X\n,Nobody\n'
        "two@example.com,Two,extra\nthree@example.com\n",
    )
    report = import_subscribers(db, daily, path)
    assert [line for line, _ in _errors(report)] == [4, 5, 6]
    assert "invalid email address 'not-an-address'" in report.errors[0].reason
    assert report.errors[1].reason == "no email address"
    assert report.errors[2].reason == "more fields than the header names"
    assert (report.added, report.already) == (2, 0)
    assert _members(db)["one@example.com"][0] == "Two Lines"
    assert set(_members(db)) == {"one@example.com", "three@example.com"}


def test_existing_addresses_keep_their_status_and_a_name_only_fills_an_empty_one(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """Addresses already known keep their status: one who unsubscribed or bounced is not
    subscribed again (counted as already there), an existing name is kept, an empty one filled."""
    with db.session() as session:
        daily_list = session.get(MailingList, daily)
        weekly = catalog.get_list(session, "weekly")
        assert daily_list is not None
        catalog.subscribe(session, daily_list, "ann@example.com", "Ann")
        catalog.subscribe(session, weekly, "dave@example.com")
        gone, _ = catalog.subscribe(session, weekly, "bob@example.com")
        gone.status = SubscriberStatus.UNSUBSCRIBED
        bounced, _ = catalog.subscribe(session, weekly, "carol@example.com")
        bounced.status = SubscriberStatus.BOUNCED
        catalog.subscribe(session, daily_list, "erin@example.com")
        erin = session.scalars(select(Subscription).where(Subscription.list_id == daily)).all()
        erin[-1].status = SubscriptionStatus.UNSUBSCRIBED
    path = _csv(
        tmp_path,
        "email,name\nann@example.com,Annie\nbob@example.com,Bob\ncarol@example.com,Carol\n"
        "dave@example.com,Dave\nerin@example.com,Erin\nfay@example.com,Fay\n",
    )
    report = import_subscribers(db, daily, path)
    assert (report.added, report.already, report.errors) == (2, 4, [])
    assert _members(db) == {
        "ann@example.com": ("Ann", "active", "confirmed"),
        "dave@example.com": ("Dave", "active", "confirmed"),
        "erin@example.com": ("Erin", "active", "unsubscribed"),
        "fay@example.com": ("Fay", "active", "confirmed"),
    }
    with db.session() as session:
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses["bob@example.com"] == SubscriberStatus.UNSUBSCRIBED
    assert statuses["carol@example.com"] == SubscriberStatus.BOUNCED


def test_a_repeated_address_is_added_once_across_chunks_with_its_first_name(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """An address repeated in the file (in any case, in the same or a later chunk) is added
    once, the repeats count as already there, and the first name given is the one kept."""
    path = _csv(
        tmp_path,
        "email,name\nann@example.com,\nANN@example.com,Ann\nbob@example.com,Bob\n"
        "ann@EXAMPLE.com,Other\ncat@example.com,Cat\nbob@example.com,Robert\n",
    )
    report = import_subscribers(db, daily, path, chunk_rows=2)
    assert (report.added, report.already, report.errors) == (3, 3, [])
    assert _members(db) == {
        "ann@example.com": ("Ann", "active", "confirmed"),
        "bob@example.com": ("Bob", "active", "confirmed"),
        "cat@example.com": ("Cat", "active", "confirmed"),
    }


def test_importing_the_same_file_twice_adds_nothing_new(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """A second import of the same file counts every address as already there."""
    path = _csv(tmp_path, "email\n" + "".join(f"r{i}@example.com\n" for i in range(50)))
    first = import_subscribers(db, daily, path, chunk_rows=7)
    second = import_subscribers(db, daily, path, chunk_rows=7)
    assert (first.added, first.already) == (50, 0)
    assert (second.added, second.already) == (0, 50)


def test_a_session_sees_the_imported_rows_and_objects_it_had_loaded_are_refreshed(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """Given the caller's session, the import works in its transaction: a list created in it
    unflushed is usable, and a subscriber it had loaded shows the name the import filled."""
    with db.session() as session:
        mailing_list, _ = catalog.add_list(session, "fresh", "Fresh", ["news"])
        known, _ = catalog.subscribe(session, mailing_list, "ann@example.com")
        path = _csv(tmp_path, "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
        report = import_subscribers(session, mailing_list, path)
        assert (report.added, report.already) == (1, 1)
        assert known.name == "Ann"
    assert set(_members(db, "fresh")) == {"ann@example.com", "bob@example.com"}


class _FailingStream(io.RawIOBase):
    """A binary stream that gives ``good`` lines and then fails like a dropped network file."""

    def __init__(self, good: int) -> None:
        self._data = io.BytesIO(
            b"email\n" + b"".join(b"r%d@example.com\n" % i for i in range(good))
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        if not chunk and len(buffer):
            raise OSError(5, "Input/output error")
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_file_that_fails_midway_leaves_nothing_half_imported(db: Database, daily: int) -> None:
    """A read error after several chunks were written is one InputError, and none of the rows
    before it stay committed."""
    with pytest.raises(InputError, match=r"^cannot read upload\.csv: \[Errno 5\]"):
        import_subscribers(db, daily, io.BufferedReader(_FailingStream(5000)), chunk_rows=100)
    assert _members(db) == {}


def test_a_stream_imports_like_a_file_and_is_left_open(db: Database, daily: int) -> None:
    """A binary or text stream imports as a file does, its label names it in the consent
    source and in messages, and the caller's stream is not closed."""
    upload = io.BytesIO(b"\xef\xbb\xbfemail,name\nann@example.com,Ann\n")
    report = import_subscribers(db, daily, upload, source_label="members.csv")
    assert report.added == 1 and not upload.closed
    text = io.StringIO("email\nbob@example.com\n")
    assert import_subscribers(db, daily, text, source_label="api").added == 1
    with db.session() as session:
        sources = set(session.scalars(select(Subscription.source)))
    assert sources == {"csv import members.csv", "csv import api"}
    with pytest.raises(InputError, match=r"^members\.csv: the first line must name the columns"):
        import_subscribers(
            db, daily, io.BytesIO(b"address\nx@example.com\n"), source_label="members.csv"
        )


# -- hostile files -----------------------------------------------------------------------------


def test_a_140_kb_field_costs_its_row_only(db: Database, daily: int, tmp_path: Path) -> None:
    """A field over the csv module's size limit, on one line or spread over many in quotes,
    is reported with its line and the rows after it are imported."""
    huge = "x" * 140_000
    spread = "\n".join(["y" * 50_000] * 3)
    path = _csv(
        tmp_path,
        f"email,name\na@example.com,{huge}\nb@example.com,ok\n"
        f'c@example.com,"{spread}"\nd@example.com,ok\n',
    )
    report = import_subscribers(db, daily, path)
    errors = _errors(report)
    assert errors[0] == (2, f"line longer than {MAX_LINE_CHARS} characters")
    assert errors[1] == (
        4,
        "unreadable row (field larger than field limit (131072)), from line 4 to line 6",
    )
    assert len(errors) == 2
    assert {"b@example.com", "d@example.com"} <= set(_members(db))
    assert "a@example.com" not in _members(db) and "c@example.com" not in _members(db)


def test_a_missing_closing_quote_is_reported_not_silently_swallowing_rows(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """A quoted field left open, which would swallow the rows after it into one name, is
    reported with the lines it spans, up to where a quote closes it or the file ends."""
    rows = "".join(f"r{i}@example.com,R{i}\n" for i in range(30))
    closed = _csv(tmp_path, f'email,name\nann@example.com,"Ann\n{rows}x,"\nlast@example.com\n')
    report = import_subscribers(db, daily, closed)
    assert _errors(report) == [(2, "a quoted field runs from line 2 to line 33: a missing quote?")]
    assert set(_members(db)) == {"last@example.com"}
    open_to_the_end = _csv(tmp_path, f'email,name\nann@example.com,"Ann\n{rows}', "open.csv")
    report = import_subscribers(db, daily, open_to_the_end)
    assert _errors(report) == [
        (2, "a quoted field runs from line 2 to the end of the file (line 32): a missing quote?")
    ]


def test_whole_file_problems_are_one_clear_input_error(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """A folder, a missing file, an empty file, a file without a header line and a UTF-16 or
    Latin-1 header are each one InputError saying what is wrong, and import nothing."""
    cases: list[tuple[Path, str]] = [
        (tmp_path, f"^{tmp_path} is a folder, not a CSV file$"),
        (tmp_path / "missing.csv", "^no such file: "),
        (_csv(tmp_path, b"", "empty.csv"), r"empty.csv is empty: the first line must name"),
        (
            _csv(tmp_path, "ann@example.com,Ann\n", "bare.csv"),
            r"bare.csv: the first line must name the columns.*it holds an address",
        ),
        (
            _csv(tmp_path, "email,name\nann@example.com,Ann\n".encode("utf-16"), "u16.csv"),
            r"u16.csv is not UTF-8 text \(it is UTF-16",
        ),
        (
            _csv(tmp_path, "email,n\xe4me\n".encode("latin-1"), "l1.csv"),
            r"l1.csv is not UTF-8 text$",
        ),
    ]
    for path, message in cases:
        with pytest.raises(InputError, match=message):
            import_subscribers(db, daily, path)
    assert _members(db) == {}


def test_rows_that_are_not_utf8_or_hold_a_nul_byte_are_reported_and_the_rest_kept(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """A row with bytes that are not UTF-8, or with a NUL byte, is reported by line; the
    rows around it are imported."""
    content = (
        b"email,name\nann@example.com,Ann\nbob@example.com,Bj\xf6rn\n"
        b"cat@example.com,C\x00at\ndan@example.com,Dan\n"
    )
    report = import_subscribers(db, daily, _csv(tmp_path, content))
    assert _errors(report) == [
        (3, "not UTF-8 text (save the file as CSV UTF-8)"),
        (4, "a NUL byte in the row"),
    ]
    assert set(_members(db)) == {"ann@example.com", "dan@example.com"}


def test_names_lose_control_and_bidi_override_characters(
    db: Database, daily: int, tmp_path: Path
) -> None:
    """Control characters and bidi overrides in a name are removed (the name goes into a
    header and onto pages); an over-long address is reported without echoing it whole."""
    path = _csv(
        tmp_path,
        'email,name\nann@example.com,"Ann\x07\rBcc: x@evil.example"\n'
        "bob@example.com,\u202eBob\u202c \u2067Smith\u2069\n"
        f"{'a' * 5000}@example.com,Long\n",
    )
    report = import_subscribers(db, daily, path)
    assert _errors(report) == [
        (5, "invalid email address: 5012 characters is too long"),
    ]
    members = _members(db)
    assert members["ann@example.com"][0] == "Ann Bcc: x@evil.example"
    assert members["bob@example.com"][0] == "Bob Smith"


# -- addresses ---------------------------------------------------------------------------------

_LOCAL_CHARS = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-."
_DOMAIN_CHARS = string.ascii_letters + string.digits + "-."
_labels = st.text(_DOMAIN_CHARS.replace(".", ""), min_size=1, max_size=64)
_tlds = st.one_of(
    st.sampled_from(["com", "ORG", "test", "local", "onion", "arpa", "invalid", "x1", "c0m"]),
    st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=65),
)


@st.composite
def _addresses(draw: st.DrawFn) -> str:
    local = draw(st.text(_LOCAL_CHARS, min_size=1, max_size=70))
    labels = draw(st.lists(_labels, min_size=0, max_size=4))
    domain = ".".join([*labels, draw(_tlds)])
    junk = draw(st.sampled_from(["", "", "", " ", "@", "..", '"', "\u00e9", "xn--"]))
    spot = draw(st.integers(0, 2))
    parts = [local, "@", domain]
    parts[spot] = parts[spot] + junk
    return "".join(parts)


@pytest.mark.heavy  # 3,000 examples: seconds, so not in `-m unit`
@settings(max_examples=3000, deadline=None)
@given(_addresses())
def test_the_fast_path_for_plain_addresses_agrees_with_email_validator(address: str) -> None:
    """Wherever the fast path accepts an address, email-validator accepts it too and gives
    the same normal form (so skipping the library changes no stored address)."""
    fast = addresses._plain_address(address)
    if fast is not None:
        assert addresses._validated_email(address) == fast


def test_ordinary_addresses_take_the_fast_path() -> None:
    """Addresses as found in a subscriber list take the fast path; unusual ones do not."""
    plain = ["Ann.Lee+news@Example.COM", "o'brien@mail.example.co.uk", "x_1@a-b.org"]
    assert [addresses._plain_address(a) for a in plain] == [a.lower() for a in plain]
    for unusual in ["a@xn--bcher-kva.example", "a@b.test", '"a b"@example.com', "a@b"]:
        assert addresses._plain_address(unusual) is None


# -- export ------------------------------------------------------------------------------------


def test_cells_that_a_spreadsheet_would_run_get_a_leading_quote() -> None:
    """Cells starting with = + - @, tab or CR get a leading single quote; others are kept."""
    risky = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    assert [csv_safe_cell(c) for c in risky] == ["'" + c for c in risky]
    assert [csv_safe_cell(c) for c in ["Ann", "", "a=b", "'=x"]] == ["Ann", "", "a=b", "'=x"]
    assert all(csv_unsafe_cell(csv_safe_cell(c)) == c for c in [*risky, "Ann", "'plain"])


def test_an_exported_cell_imports_as_it_was(db: Database, daily: int, tmp_path: Path) -> None:
    """An address and a name escaped for export import as the original, not with the quote."""
    path = _csv(tmp_path, "email,name\n'-ann@example.com,'=Ann\n")
    assert import_subscribers(db, daily, path).added == 1
    assert _members(db) == {"-ann@example.com": ("=Ann", "active", "confirmed")}


def test_the_cli_export_neutralises_formulas_and_imports_back_unchanged(
    db: Database, daily: int, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`subscribers export` writes an address or name that would start a formula with a
    leading quote, and importing that file into another list gives back the same people."""
    from click.testing import CliRunner

    from digest.cli import cli

    with db.session() as session:
        mailing_list = session.get(MailingList, daily)
        assert mailing_list is not None
        catalog.subscribe(session, mailing_list, "=cmd@example.com", '=HYPERLINK("http://x")')
        catalog.subscribe(session, mailing_list, "ann@example.com", "+Ann")
    monkeypatch.chdir(tmp_path)
    env = {"DIGEST_DATABASE_URL": settings.database_url, "DIGEST_SECRET_KEY": "test"}
    out = tmp_path / "export.csv"
    result = CliRunner().invoke(
        cli, ["subscribers", "export", "--list", "daily", "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    exported = out.read_text(encoding="utf-8").splitlines()
    assert exported[2].startswith("ann@example.com,'+Ann,confirmed,")
    assert exported[1].startswith('\'=cmd@example.com,"\'=HYPERLINK(""http://x"")",')
    with db.session() as session:
        weekly = catalog.get_list(session, "weekly").id
    assert import_subscribers(db, weekly, out).added == 2
    assert _members(db, "weekly") == _members(db, "daily")
