"""What a batch writes as it goes: each recipient's outcome, committed in small groups
(``OutcomeLog``), and the edition's runs of refusals and transport failures (``Streaks``), which
pause a send whose server refuses the sender rather than the addresses."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import ledger, lifecycle
from digest.store.models import Edition, StopReason
from digest.transports.base import Outcome

__all__ = ["OutcomeLog", "Pause", "Streaks"]

log = logging.getLogger(__name__)

_NO_WAL_FLUSH = "SET LOCAL synchronous_commit TO off"


class OutcomeLog:
    """Writes and commits outcomes in groups: after ``every`` messages or ``interval`` seconds
    since the oldest uncommitted one, whichever comes first. The group's UPDATEs go in one
    round trip at commit time: until the commit they would be lost in a crash anyway.

    A commit per message is what made the database, not SMTP, the limit of the send loop. The
    price of grouping: a worker killed between commits loses up to ``every`` recorded
    outcomes; those rows are still leased to it, so they come back when the lease runs out and
    are sent again. ``every = 1`` is a commit per message (a resend only of the message in
    flight).
    """

    def __init__(
        self, session: Session, every: int, interval: float, *, synchronous: bool = True
    ) -> None:
        self.session = session
        self.every = max(every, 1)
        self.interval = interval
        # SET LOCAL, not a session SET: it ends with the transaction, so it never leaks into
        # the pool, and it is safe behind a PgBouncer in transaction mode.
        self.asynchronous = not synchronous and session.get_bind().dialect.name == "postgresql"
        self.pending: list[dict[str, object]] = []
        self._oldest = 0.0

    def add(self, outcome: dict[str, object]) -> None:
        """One outcome to record; the group is written and committed once it is full."""
        if not self.pending:
            self._oldest = time.monotonic()
        self.pending.append(outcome)
        if len(self.pending) >= self.every or time.monotonic() - self._oldest >= self.interval:
            self.commit()

    def commit(self) -> None:
        """Write the group's outcomes (one round trip) and commit them."""
        if self.pending:
            ledger.record_all(self.session, self.pending)
            if self.asynchronous:
                # Read at COMMIT time, so setting it after the UPDATEs still applies.
                self.session.connection().exec_driver_sql(_NO_WAL_FLUSH)
        self.session.commit()
        self.pending.clear()

    def save_or_forget(self) -> list[int]:
        """After a crash in the batch: commit what was recorded if the database still lets us;
        else roll back and return the rows whose outcomes were lost."""
        lost = [cast(int, outcome["row_id"]) for outcome in self.pending]
        try:
            self.commit()
        except Exception:
            log.warning("batch: %s recorded outcomes lost; their rows will be resent", len(lost))
            self.session.rollback()
            self.pending.clear()
            return lost
        return []


@dataclass(frozen=True)
class Pause:
    """A run of failures long enough to pause the edition: why, and in words."""

    reason: StopReason
    words: str


@dataclass
class Streaks:
    """The edition's runs of failures, updated in the database only when they change."""

    transport_errors: int
    refusals: int

    def after(
        self, session: Session, edition: Edition, outcome: Outcome | None, settings: Settings
    ) -> Pause | None:
        """Count one recipient's outcome; returns a pause when the run is too long."""
        if outcome is None:
            return None
        if outcome == Outcome.SENT:
            if self.transport_errors or self.refusals:
                self.transport_errors = self.refusals = 0
                _set_streaks(session, edition.id, transport_error_streak=0, refusal_streak=0)
                lifecycle.clear_transport_error(session, edition.id)
            return None
        self.refusals = _bump(session, edition.id, "refusal_streak")
        if self.refusals >= settings.pause_after_refusals:
            return Pause(
                StopReason.REFUSALS, f"paused: {self.refusals} recipients refused in a row"
            )
        return None

    def after_transport_error(
        self, session: Session, edition: Edition, error: str, settings: Settings
    ) -> Pause | None:
        """Count one transport failure; returns a pause when the run is too long."""
        self.transport_errors = _bump(session, edition.id, "transport_error_streak")
        if self.transport_errors >= settings.pause_after_errors:
            return Pause(
                StopReason.TRANSPORT_ERRORS,
                f"paused: {self.transport_errors} transport errors in a row; last: {error}",
            )
        return None


def _bump(session: Session, edition_id: int, column: str) -> int:
    """Add one to an edition's streak column atomically and return the new value."""
    field_ = getattr(Edition, column)
    value = session.execute(
        update(Edition)
        .where(Edition.id == edition_id)
        .values({column: field_ + 1})
        .returning(field_)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.commit()
    return int(value)


def _set_streaks(session: Session, edition_id: int, **values: int) -> None:
    session.execute(
        update(Edition)
        .where(Edition.id == edition_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
