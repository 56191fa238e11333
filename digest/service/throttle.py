"""Fixed-window counters in the database, so every web process (and every host on the same
database) shares them: confirmation mails per address, sign-ups per IP, login attempts.

Each take is one conditional UPDATE, which the database applies atomically, so concurrent
requests cannot both take the last slot. A window that has run out is restarted by the first
request after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.models import Throttle, utcnow

#: Rows whose window started longer ago than this are deleted now and then; no window in use
#: is longer than a day.
KEEP = dt.timedelta(days=2)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: Seconds until the window restarts (0 when allowed).
    retry_after: int


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def take(session: Session, kind: str, value: str, limit: int, window: dt.timedelta) -> Verdict:
    """Count one event of ``kind`` for ``value``; refused once ``limit`` were counted in the
    current window (and then nothing is counted)."""
    key = _key(kind, value)
    now = utcnow()
    for _ in range(2):  # the second round follows an insert lost to a concurrent request
        restarted = session.execute(
            update(Throttle)
            .where(Throttle.key_hash == key, Throttle.window_start <= now - window)
            .values(window_start=now, count=1)
        )
        if restarted.rowcount:  # type: ignore[attr-defined]
            return Verdict(True, 0)
        counted = session.execute(
            update(Throttle)
            .where(Throttle.key_hash == key, Throttle.count < limit)
            .values(count=Throttle.count + 1)
        )
        if counted.rowcount:  # type: ignore[attr-defined]
            return Verdict(True, 0)
        start = session.scalar(select(Throttle.window_start).where(Throttle.key_hash == key))
        if start is not None:
            left = (start + window - now).total_seconds()
            return Verdict(False, max(1, int(left + 0.999)))
        try:
            with session.begin_nested():
                session.add(Throttle(key_hash=key, window_start=now, count=1))
            _prune(session, now)
            return Verdict(True, 0)
        except IntegrityError:
            continue
    return Verdict(False, int(window.total_seconds()))


def give_back(session: Session, kind: str, value: str) -> None:
    """Undo one take (the mail it allowed could not be sent, the login was right)."""
    session.execute(
        update(Throttle)
        .where(Throttle.key_hash == _key(kind, value), Throttle.count > 0)
        .values(count=Throttle.count - 1)
    )


def forget(session: Session, kind: str, value: str) -> int:
    """Drop the counter of ``value``: its window starts afresh with the next take. Returns how
    many counters there were (0 or 1)."""
    result = session.execute(delete(Throttle).where(Throttle.key_hash == _key(kind, value)))
    return int(getattr(result, "rowcount", 0) or 0)


def blocked(session: Session, kind: str, value: str, limit: int, window: dt.timedelta) -> int:
    """Seconds until ``value`` may try again (0: it may now), without counting anything."""
    row = session.get(Throttle, _key(kind, value))
    now = utcnow()
    if row is None or row.count < limit or row.window_start <= now - window:
        return 0
    return max(1, int((row.window_start + window - now).total_seconds() + 0.999))


def _prune(session: Session, now: dt.datetime) -> None:
    # Only when a new key is inserted, so the table stays as small as the keys in use.
    session.execute(delete(Throttle).where(Throttle.window_start < now - KEEP))
