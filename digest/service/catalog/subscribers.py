"""The people on a list, as the operator manages them: one added by hand, a CSV imported
(streamed, set-based, all-or-report), the list read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from digest.audience import EMAIL_MAX_LENGTH, add_confirmed, clean_name, normalise_email
from digest.errors import CsvRowError, InputError, NotFoundError
from digest.service import csvio
from digest.service.csvio import csv_safe_cell, read_subscriber_csv
from digest.store.db import Database
from digest.store.models import (
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)

__all__ = [
    "IMPORT_CHUNK_ROWS",
    "ImportReport",
    "csv_safe_cell",
    "import_subscribers",
    "list_subscribers",
    "read_subscriber_csv",
    "subscribe",
]


def subscribe(
    session: Session,
    mailing_list: MailingList,
    email: str,
    name: str = "",
    *,
    source: str = "operator",
) -> tuple[Subscriber, bool]:
    """Add ``email`` to the list as a confirmed subscriber (see ``audience.add_confirmed``)."""
    return add_confirmed(session, mailing_list, email, name, source=source)


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    errors: list[CsvRowError] = field(default_factory=list)


#: Distinct addresses written to the database at a time: memory stays flat in the file's size,
#: and each statement is big enough that the per-statement cost vanishes.
IMPORT_CHUNK_ROWS = 20_000

_STAGE = "digest_import_stage"


class _Stage:
    """A temporary table of (email, name) rows merged into subscribers and subscriptions with
    a few set-based statements per chunk, in the caller's transaction."""

    def __init__(self, session: Session, list_id: int, source: str) -> None:
        self.session = session
        self.list_id = list_id
        self.source = source[:100]
        self.postgres = session.get_bind().dialect.name == "postgresql"
        # The driver's own connection: COPY (psycopg) and executemany (sqlite3) are where the
        # speed is, and they run in the same transaction as the session.
        self.raw: Any = session.connection().connection.driver_connection
        session.execute(
            text(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
                "(email TEXT NOT NULL, name TEXT NOT NULL)"
            )
        )

    def merge(self, rows: dict[str, str]) -> int:
        """Write one chunk of distinct (address, name); returns how many were newly subscribed."""
        session = self.session
        # TRUNCATE, not DELETE: nothing vacuums a temporary table, and the dead rows of every
        # earlier chunk would be scanned again by each later one.
        session.execute(text(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} {_STAGE}"))
        cursor = self.raw.cursor()
        try:
            if self.postgres:
                with cursor.copy(f"COPY {_STAGE} (email, name) FROM STDIN") as copy:
                    for row in rows.items():
                        copy.write_row(row)
            else:
                insert = f"INSERT INTO {_STAGE} (email, name) VALUES (?, ?)"
                cursor.executemany(insert, rows.items())
        finally:
            cursor.close()
        now = utcnow()
        # A name only fills an empty one: an operator's file never overwrites a name the
        # subscriber gave. "WHERE true" lets SQLite tell ON CONFLICT from a join constraint.
        session.execute(
            text(
                "INSERT INTO subscribers (email, name, status, created_at) "
                f"SELECT email, name, :active, :now FROM {_STAGE} WHERE true "
                "ON CONFLICT (email) DO UPDATE SET name = excluded.name "
                "WHERE subscribers.name = '' AND excluded.name <> ''"
            ),
            {"active": SubscriberStatus.ACTIVE.value, "now": now},
        )
        # Only active subscribers: one who unsubscribed or bounced is not signed up again by
        # an operator's file, not even to another list. The lookup is a subquery per staged
        # row, not a join: mid-import the table has no statistics, and PostgreSQL would hash
        # all of subscribers for every chunk (quadratic in the file's size).
        # OFFSET 0 keeps PostgreSQL from inlining the subquery into the WHERE as well, which
        # would run each lookup twice.
        fence = " OFFSET 0" if self.postgres else ""
        added = session.execute(
            text(
                "INSERT INTO subscriptions "
                "(list_id, subscriber_id, status, source, created_at, confirmed_at) "
                "SELECT :list_id, found.id, :confirmed, :source, :now, :now FROM ("
                "SELECT (SELECT s.id FROM subscribers AS s "
                "WHERE s.email = st.email AND s.status = :active) AS id "
                f"FROM {_STAGE} AS st{fence}) AS found WHERE found.id IS NOT NULL "
                "ON CONFLICT (list_id, subscriber_id) DO NOTHING"
            ),
            {
                "list_id": self.list_id,
                "confirmed": SubscriptionStatus.CONFIRMED.value,
                "source": self.source,
                "now": now,
                "active": SubscriberStatus.ACTIVE.value,
            },
        )
        return int(added.rowcount)  # type: ignore[attr-defined]

    def drop(self) -> None:
        self.session.execute(text(f"DROP TABLE IF EXISTS {_STAGE}"))


def import_subscribers(
    target: Session | Database,
    mailing_list: MailingList | int,
    source: Path | str | IO[bytes] | IO[str],
    *,
    source_label: str | None = None,
    chunk_rows: int = IMPORT_CHUNK_ROWS,
) -> ImportReport:
    """Import every good row of a subscriber CSV; bad rows are reported with their line
    numbers and skipped.

    ``source`` is a path or an open binary (or text) stream, read once as a stream.
    ``source_label`` names it in the subscriptions' consent source ("csv import LABEL") and,
    for a stream, in messages; it defaults to the file's name. A new address becomes an active
    subscriber with a confirmed subscription; an existing one keeps its status and name (a
    name only fills an empty one); an address that unsubscribed or bounced is not subscribed
    again and counts as already there, as does a repeat within the file. Everything happens
    in one transaction: given a Database, its own; given a Session, the caller's, so an error
    that ends the import (the InputError of an unreadable file) leaves nothing behind once
    the caller rolls back.
    """
    if isinstance(target, Database):
        with target.session() as session:
            return import_subscribers(
                session, mailing_list, source, source_label=source_label, chunk_rows=chunk_rows
            )
    session = target
    if isinstance(mailing_list, int):
        found = session.get(MailingList, mailing_list)
        if found is None:
            raise NotFoundError("list", mailing_list)
        mailing_list = found
    if source_label is None:
        source_label = (
            Path(source).name
            if isinstance(source, str | Path)
            else Path(str(getattr(source, "name", "") or "upload.csv")).name
        )
    session.flush()
    report = ImportReport()
    rows = csvio.read_subscriber_csv(source, label=source_label)
    stage: _Stage | None = None
    # Distinct addresses of the chunk, with the first non-empty name given for each.
    chunk: dict[str, str] = {}
    chunk_good = 0
    for item in rows:
        if isinstance(item, CsvRowError):
            report.errors.append(item)
            continue
        line, email, name = item
        if not email:
            report.errors.append(CsvRowError(line, "no email address"))
            continue
        if len(email) > EMAIL_MAX_LENGTH:
            report.errors.append(
                CsvRowError(line, f"invalid email address: {len(email)} characters is too long")
            )
            continue
        try:
            address = normalise_email(email)
        except InputError as exc:
            report.errors.append(CsvRowError(line, str(exc)))
            continue
        chunk_good += 1
        clean = clean_name(name) if name else ""
        if not chunk.get(address):
            chunk[address] = clean
        if len(chunk) >= chunk_rows:
            stage = stage or _Stage(session, mailing_list.id, f"csv import {source_label}")
            added = stage.merge(chunk)
            report.added += added
            report.already += chunk_good - added
            chunk, chunk_good = {}, 0
    if chunk:
        stage = stage or _Stage(session, mailing_list.id, f"csv import {source_label}")
        added = stage.merge(chunk)
        report.added += added
        report.already += chunk_good - added
    if stage is not None:
        stage.drop()
        # The rows changed under the ORM: objects already loaded must be read again.
        session.expire_all()
    return report


def list_subscribers(
    session: Session, mailing_list: MailingList
) -> list[tuple[Subscriber, Subscription]]:
    rows = session.execute(
        select(Subscriber, Subscription)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == mailing_list.id)
        .order_by(Subscriber.email)
    )
    return [(subscriber, subscription) for subscriber, subscription in rows]
