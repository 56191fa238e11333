"""One ``digest run`` per database: the lock its scheduler holds for as long as it runs.

Two schedulers on one database would not send anything twice (the ledger sees to that), but
each would ingest, build and sweep, and their lines would contradict each other; the second
one is almost always a mistake (a forgotten terminal, a service started twice).

::

    RunLock                 acquire() / still_held() / release()
    ├── FileRunLock         SQLite: flock() on a file beside the database file
    ├── AdvisoryRunLock     PostgreSQL: an advisory lock, per schema
    └── NoRunLock           a database no other process can open (SQLite in memory)

Both real locks die with their process (the kernel drops the flock, the server the
session's lock), so a killed ``digest run`` never leaves a stale lock to clear by hand.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, text

from digest.errors import ConfigError, DigestError
from digest.store.db import Database

log = logging.getLogger(__name__)

#: The first half of the advisory lock's key, "DIGS": the second is the schema's hash, so
#: sites in separate schemas of one database each get their own lock.
ADVISORY_KEY = 0x44494753


class RunLock(Protocol):
    #: Where the lock lives, for messages.
    where: str

    def acquire(self) -> None:
        """Take the lock, or raise DigestError saying who holds it."""

    def still_held(self) -> bool:
        """Whether the lock is still ours (a lost database connection loses it)."""

    def release(self) -> None: ...


def run_lock(db: Database) -> RunLock:
    """The lock for ``db``'s kind of database."""
    url = db.engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return NoRunLock()
        return FileRunLock(Path(f"{url.database}.run-lock"))
    if backend == "postgresql":
        return AdvisoryRunLock(db)
    raise ConfigError(f"`digest run` supports SQLite and PostgreSQL, not {backend}")


def keep_held(lock: RunLock) -> None:
    """Take the lock again if it was lost with its connection (a database restart, an idle
    transaction timeout); DigestError if it cannot be: another run took it meanwhile, or the
    database is still away. Either way this run must stop scheduling."""
    if lock.still_held():
        return
    lock.release()
    try:
        lock.acquire()
    except DigestError as exc:
        raise DigestError(f"lost the scheduler's lock: {exc}") from exc
    except Exception as exc:
        raise DigestError(f"lost the scheduler's lock ({lock.where}): {exc}") from exc
    log.warning("the scheduler's lock was lost with its connection and taken again")


def _refusal(where: str, holder: str) -> DigestError:
    return DigestError(
        f"another `digest run` is already scheduling this database ({where}{holder}); "
        "stop it first, or run only one"
    )


class NoRunLock:
    where = "in memory"

    def acquire(self) -> None:
        return None

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class FileRunLock:
    """An exclusive ``flock`` on ``DATABASE.run-lock``, holding the owner's process id.

    The file is left in place when released: deleting it would let a process that opened it
    just before lock a file nobody else can find any more.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.where = f"lock file {self.path}"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            handle.close()
            holder = f", held by process {pid}" if pid.isdigit() else ""
            raise _refusal(self.where, holder) from None
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def still_held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryRunLock:
    """``pg_try_advisory_xact_lock`` in a transaction left open on a connection of its own.

    A transaction's lock rather than a session's, so that it also holds behind PgBouncer in
    transaction mode (the open transaction keeps its server connection; a session lock would
    stay on a server connection others then use). The transaction only reads, so it holds no
    snapshot between statements and keeps nothing from VACUUM.
    """

    _KEY = "hashtext(current_schema())"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = "PostgreSQL advisory lock"
        self._connection: Connection | None = None

    def acquire(self) -> None:
        connection = self.db.engine.connect()
        try:
            taken = connection.execute(
                text(f"SELECT pg_try_advisory_xact_lock(:key, {self._KEY})"),
                {"key": ADVISORY_KEY},
            ).scalar_one()
            if not taken:
                holder = connection.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = :key AND objsubid = 2 "
                        f"AND objid::bigint = ({self._KEY}::bigint & 4294967295) LIMIT 1"
                    ),
                    {"key": ADVISORY_KEY},
                ).scalar()
                raise _refusal(
                    self.where, f", held by server process {holder}" if holder is not None else ""
                )
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception:
            # The connection (and with it the lock) is gone: a second run may start now.
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.rollback()
                self._connection.close()
            except Exception:  # already lost with the connection, which is what releasing means
                pass
            self._connection = None
