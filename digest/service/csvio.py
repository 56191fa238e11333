"""Subscriber CSV files in and out: read as a stream, every bad row named by its line, and cells
written so a spreadsheet never runs them as formulas."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from digest.errors import CsvRowError, InputError

#: A physical line longer than this (in characters) is reported and skipped unread: no subscriber
#: row needs it, and reading it whole would let one line take all the memory.
MAX_LINE_CHARS = 65_536
#: A record whose quoted field spans more physical lines than this is reported: it is almost
#: always a missing closing quote that swallowed the rows after it.
MAX_RECORD_LINES = 20

# OWASP "CSV injection": a spreadsheet treats a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Bytes that are not UTF-8 come through the "surrogateescape" handler as U+DC80..U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")

Source = Path | str | IO[bytes] | IO[str]


def csv_safe_cell(value: str) -> str:
    """``value`` as a cell a spreadsheet shows as text: one that could start a formula gets a
    leading single quote (which spreadsheets hide)."""
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_unsafe_cell(value: str) -> str:
    """The value :func:`csv_safe_cell` was given, so an exported file imports as it was."""
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


class _RunawayRecord(Exception):
    """The record being read has gone on for MAX_RECORD_LINES lines inside a quoted field."""


class _Lines:
    """The physical lines of a text stream for ``csv.reader``, each at most MAX_LINE_CHARS long,
    at most MAX_RECORD_LINES to a record; what was wrong with the lines of the record being
    read is kept in ``problem``."""

    def __init__(self, stream: IO[str], where: str) -> None:
        self._stream = stream
        self._where = where
        self.line = 0
        self.first = 1
        self.problem: str | None = None
        self._record_lines = 0
        self._quotes = 0

    def __iter__(self) -> _Lines:
        return self

    def start_record(self) -> None:
        self.first = self.line + 1
        self._record_lines = 0
        self._quotes = 0
        self.problem = None

    def __next__(self) -> str:
        if self._record_lines >= MAX_RECORD_LINES:
            raise _RunawayRecord
        text, too_long = self._read()
        if not text:
            raise StopIteration
        self._record_lines += 1
        if too_long:
            self._flag(f"line longer than {MAX_LINE_CHARS} characters")
            # An empty line stands in for it: the reader gets the line break, not the bulk.
            return "\n"
        if not text.isascii():
            if _UNDECODABLE.search(text):
                self._flag("not UTF-8 text (save the file as CSV UTF-8)")
        elif "\x00" in text:
            self._flag("a NUL byte in the row")
        return text

    def _read(self) -> tuple[str, bool]:
        """The next physical line (cut short if too long) and whether it was too long."""
        try:
            text = self._stream.readline(MAX_LINE_CHARS + 1)
            if not text:
                return "", False
            self.line += 1
            self._quotes += text.count('"')
            if len(text) <= MAX_LINE_CHARS:
                return text, False
            rest = text
            while rest and not rest.endswith(("\n", "\r")):
                rest = self._stream.readline(MAX_LINE_CHARS)
                self._quotes += rest.count('"')
            return text[:MAX_LINE_CHARS], True
        except (OSError, ValueError) as exc:  # ValueError: a stream closed under us
            raise InputError(f"cannot read {self._where}: {exc}") from exc

    def skip_quoted(self) -> bool:
        """Read on to the end of a record the reader gave up on inside a quoted field (where
        the count of quote characters since the record began is even again); False if the
        file ended first."""
        while self._quotes % 2:
            text, _ = self._read()
            if not text:
                return False
        return True

    def _flag(self, reason: str) -> None:
        if self.problem is None:
            self.problem = reason


def _as_text(stream: IO[Any]) -> tuple[IO[str], bool]:
    """A text view of ``stream`` and whether it is a wrapper made here (to detach afterwards)."""
    if isinstance(stream.read(0), str):
        return stream, False
    # surrogateescape instead of strict: a bad byte costs its row, not the whole file.
    wrapper = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return wrapper, True


@contextmanager
def _open(source: Source, label: str) -> Iterator[tuple[IO[str], str]]:
    """The source as text lines, and how to name it in a message (the path, or ``label``)."""
    if not isinstance(source, str | Path):
        text, wrapped = _as_text(source)
        try:
            yield text, label
        finally:
            if wrapped:
                # Detached, not closed: the caller's stream is the caller's to close.
                text.detach()  # type: ignore[attr-defined]
        return
    path = Path(source)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder, not a CSV file") from exc
    except PermissionError as exc:
        raise InputError(f"cannot read {path}: permission denied") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        text, _ = _as_text(handle)
        with text:
            yield text, str(path)


def _columns(reader: Any, lines: _Lines, where: str) -> list[str]:
    need = f"{where}: the first line must name the columns, with an 'email' column"
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{where} is empty: {need.split(': ', 1)[1]}") from None
    except (csv.Error, _RunawayRecord) as exc:
        raise InputError(need) from exc
    problem = lines.problem
    if header and header[0].startswith(("\udcff\udcfe", "\udcfe\udcff")):
        raise InputError(f"{where} is not UTF-8 text (it is UTF-16: save it as CSV UTF-8)")
    if problem and problem.startswith("not UTF-8"):
        raise InputError(f"{where} is not UTF-8 text")
    if problem:
        raise InputError(f"{need} ({problem})")
    fields = [f.strip().lstrip("\ufeff").lower() for f in header]
    if "email" not in fields:
        if any("@" in f for f in fields):
            raise InputError(f"{need} (it holds an address: add a line 'email,name' above it)")
        raise InputError(need)
    return fields


def read_subscriber_csv(
    source: Source, *, label: str = "upload.csv"
) -> Iterator[tuple[int, str, str] | CsvRowError]:
    """(line, email, name) per data row of a CSV with an ``email`` and optional ``name``
    column, or a CsvRowError for a row that cannot be read; read as a stream.

    A problem with the file as a whole (missing, a folder, no header, not UTF-8 at all) is an
    InputError naming the path, or ``label`` for a stream."""
    with _open(source, label) as (text, where):
        lines = _Lines(text, where)
        reader = csv.reader(lines)
        fields = _columns(reader, lines, where)
        email_at = fields.index("email")
        name_at = fields.index("name") if "name" in fields else None
        while True:
            lines.start_record()
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, _RunawayRecord) as exc:
                # The reader starts afresh at the next line: skip what is left of the record
                # so its remaining lines do not come back as rows of their own.
                first, ended = lines.first, lines.skip_quoted()
                end = f"line {lines.line}" if ended else f"the end of the file (line {lines.line})"
                if isinstance(exc, csv.Error):
                    reason = f"unreadable row ({exc}), from line {first} to {end}"
                else:
                    reason = f"a quoted field runs from line {first} to {end}: a missing quote?"
                yield CsvRowError(first, reason)
                continue
            line = lines.line
            if lines.problem is not None:
                yield CsvRowError(line, lines.problem)
                continue
            if not row:
                continue  # a blank line
            if len(row) > len(fields):
                yield CsvRowError(line, "more fields than the header names")
                continue
            email = row[email_at] if email_at < len(row) else ""
            name = row[name_at] if name_at is not None and name_at < len(row) else ""
            yield line, csv_unsafe_cell(email.strip()), csv_unsafe_cell(name.strip())
