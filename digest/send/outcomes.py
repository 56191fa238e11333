"""What a batch writes as it goes: each recipient's outcome, committed in small groups
(``OutcomeLog``), and the edition's runs of refusals and transport failures (``Streaks``), which
pause a send whose server refuses the sender rather than the addresses."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import ledger, lifecycle
from digest.store.models import Edition, StopReason, utcnow
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
    """The edition's runs of failures, updated in the database only when they change.

    The counts are the batch's copy, read when it began; other workers' batches add to the
    runs meanwhile, so a batch's first message through clears them in the database whatever
    its copy says (one conditional UPDATE per batch), and later ones only when its own count
    is not zero.
    """

    transport_errors: int
    refusals: int
    #: When the run of transport failures began (None: there is none).
    transport_errors_since: dt.datetime | None = None
    _cleared: bool = False

    def after(
        self, session: Session, edition: Edition, outcome: Outcome | None, settings: Settings
    ) -> Pause | None:
        """Count one recipient's outcome; returns a pause when the run is too long."""
        if outcome is None:
            return None
        if outcome == Outcome.SENT:
            if not self._cleared or self.transport_errors or self.refusals:
                self._cleared = True
                self.transport_errors = self.refusals = 0
                self.transport_errors_since = None
                if _clear_streaks(session, edition.id):
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
        """Count one transport failure; returns a pause when the run is too long: at least
        DIGEST_PAUSE_AFTER_ERRORS failures over at least DIGEST_PAUSE_AFTER_ERROR_SECONDS.

        A count alone would not do: four workers whose batches retry within seconds make
        five failures in a row out of a relay's ten-second hiccup. A relay that is down for
        minutes is the operator's to look at; one that drops a few connections is not.
        """
        now = utcnow()
        self.transport_errors, since = _bump_transport_errors(session, edition.id, now)
        self.transport_errors_since = since
        lasted = (now - since).total_seconds()
        if (
            self.transport_errors >= settings.pause_after_errors
            and lasted >= settings.pause_after_error_seconds
        ):
            return Pause(
                StopReason.TRANSPORT_ERRORS,
                f"paused: {self.transport_errors} transport errors in a row over "
                f"{_duration(lasted)}; last: {error}",
            )
        return None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _bump_transport_errors(
    session: Session, edition_id: int, now: dt.datetime
) -> tuple[int, dt.datetime]:
    """Add one to the edition's run of transport failures atomically (starting it ``now`` if
    there was none); returns the run's length and start."""
    count, since = session.execute(
        update(Edition)
        .where(Edition.id == edition_id)
        .values(
            transport_error_streak=Edition.transport_error_streak + 1,
            transport_errors_since=func.coalesce(Edition.transport_errors_since, now),
        )
        .returning(Edition.transport_error_streak, Edition.transport_errors_since)
        .execution_options(synchronize_session=False)
    ).one()
    session.commit()
    return int(count), since or now


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


def _clear_streaks(session: Session, edition_id: int) -> bool:
    """End the edition's runs of failures; whether there were any."""
    result = session.execute(
        update(Edition)
        .where(
            Edition.id == edition_id,
            or_(
                Edition.transport_error_streak != 0,
                Edition.refusal_streak != 0,
                Edition.transport_errors_since.is_not(None),
            ),
        )
        .values(transport_error_streak=0, refusal_streak=0, transport_errors_since=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]
