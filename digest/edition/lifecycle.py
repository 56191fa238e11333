"""Every change of an edition's status, in one place: built or filled, paused (by the operator
or automatically), resumed, cancelled, reopened for the failed or the late, finished.

Each is one state change in the database, conditional on the state it leaves, so two workers
(or a worker and the operator) cannot both make it. Batches read the edition's state before
they claim rows, so a change takes effect within one batch on every worker. Why an edition
stopped is a ``StopReason`` value; ``status_reason`` holds the same in words for the operator.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.edition import ledger
from digest.errors import DigestError, NotFoundError
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    StopReason,
    utcnow,
)

__all__ = [
    "approve",
    "auto_pause",
    "cancel",
    "clear_transport_error",
    "fill_empty",
    "finish_if_done",
    "include_late",
    "note_transport_error",
    "pause",
    "release",
    "resume",
    "retry_failed",
    "retry_now",
]

log = logging.getLogger(__name__)

#: The words ``status_reason`` carries for each reason that needs no detail.
OPERATOR_PAUSE_WORDS = "paused by the operator"
CANCELLED_WORDS = "cancelled by the operator"


def _edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise NotFoundError("edition", edition_id)
    return edition


def _set(session: Session, edition_id: int, *where: Any, **values: Any) -> bool:
    """One conditional UPDATE of the edition, committed; whether it applied."""
    result = session.execute(
        update(Edition)
        .where(Edition.id == edition_id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- built ----------------------------------------------------------------------------------


def fill_empty(session: Session, edition_id: int, *, hold: bool = False, **content: Any) -> bool:
    """Turn a stored empty edition into a ready one with new ``content`` (subject, preheader,
    content); not committed, as the caller writes the ledger in the same transaction. Only
    one of two processes doing this at once succeeds (the UPDATE is conditional)."""
    result = session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.EMPTY)
        .values(
            status=EditionStatus.HELD if hold else EditionStatus.READY,
            stop_reason=None,
            status_reason=None,
            created_at=utcnow(),
            completed_at=None,
            **content,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_if_done(session: Session, edition: Edition) -> bool:
    """Mark a sending edition done when no row is open any more; returns whether it is done."""
    if edition.status == EditionStatus.DONE:
        return True
    if edition.status == EditionStatus.READY and ledger.open_count(session, edition.id) == 0:
        edition.status = EditionStatus.DONE
        edition.completed_at = utcnow()
        session.commit()
        return True
    return False


# -- the editor's review --------------------------------------------------------------------


def approve(edition: Edition, who: str) -> None:
    """An editor approves a held edition (``edition`` read with its row lock): it stays held
    until ``release`` (at once if its send time has passed, else at the send time); not
    committed, as the review event is written with it."""
    if edition.status != EditionStatus.HELD:
        raise DigestError(f"edition {edition.id} is {edition.status.value}, not held for review")
    if edition.approved_at is None:
        edition.approved_by = who
        edition.approved_at = utcnow()


def release(session: Session, edition_id: int) -> bool:
    """A held edition may send: held becomes ready (approved, or its send time came and its
    list sends unreviewed editions as built). Conditional, so of two processes releasing it
    one does; whether this one did. Not committed: the caller adds the late joiners' rows
    and the review event in the same transaction."""
    result = session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.HELD)
        .values(status=EditionStatus.READY)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- the operator's hold --------------------------------------------------------------------


def pause(session: Session, edition_id: int) -> Edition:
    edition = _edition(session, edition_id)
    if edition.status != EditionStatus.READY:
        raise DigestError(f"edition {edition_id} is {edition.status.value}, not sending")
    edition.status = EditionStatus.PAUSED
    edition.stop_reason = StopReason.OPERATOR_PAUSE
    edition.status_reason = OPERATOR_PAUSE_WORDS
    return edition


def resume(session: Session, edition_id: int) -> Edition:
    """Let a paused edition send again, from where it stopped; the error streaks start over."""
    edition = _edition(session, edition_id)
    if edition.status != EditionStatus.PAUSED:
        raise DigestError(f"edition {edition_id} is {edition.status.value}, not paused")
    edition.status = EditionStatus.READY
    edition.stop_reason = None
    edition.status_reason = None
    edition.transport_error_streak = 0
    edition.refusal_streak = 0
    edition.transport_errors_since = None
    return edition


def cancel(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Stop an edition for good: its unsent rows are skipped. Returns (edition, rows skipped).

    Rows a worker holds right now are left to it: that message may still go out.
    """
    edition = _edition(session, edition_id)
    if edition.status not in (EditionStatus.READY, EditionStatus.PAUSED, EditionStatus.HELD):
        raise DigestError(f"edition {edition_id} is {edition.status.value}: nothing to cancel")
    edition.status = EditionStatus.CANCELLED
    edition.stop_reason = StopReason.CANCELLED
    edition.status_reason = CANCELLED_WORDS
    edition.completed_at = utcnow()
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.edition_id == edition_id,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DEFERRED)),
        )
        .values(status=DeliveryStatus.SKIPPED, last_error="edition cancelled")
        .execution_options(synchronize_session=False)
    )
    return edition, int(result.rowcount or 0)  # type: ignore[attr-defined]


def _reopen(edition: Edition) -> None:
    """A finished edition with rows to send again is sending again."""
    if edition.status == EditionStatus.DONE:
        edition.status = EditionStatus.READY
        edition.completed_at = None


def retry_failed(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Put only the failed rows back in the queue (bounced and sent ones stay as they are)."""
    edition = _edition(session, edition_id)
    if edition.status == EditionStatus.CANCELLED:
        raise DigestError(f"edition {edition_id} was cancelled")
    result = session.execute(
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        _reopen(edition)
    return edition, count


def retry_now(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Bring the next try of the edition's deferred rows forward to now; returns (edition,
    rows). Their attempts still count toward DIGEST_MAX_ATTEMPTS. A paused edition keeps
    them until it is resumed; a finished or cancelled one has none (a cancel skips them)."""
    edition = _edition(session, edition_id)
    return edition, ledger.bring_forward(session, edition_id, utcnow())


def include_late(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Add ledger rows for the subscribers who joined since the edition was built.

    Returns (edition, rows added). A finished edition is sending again until they have it;
    a paused one stays paused.
    """
    edition = _edition(session, edition_id)
    if edition.status not in (EditionStatus.READY, EditionStatus.PAUSED, EditionStatus.DONE):
        raise DigestError(f"edition {edition_id} is {edition.status.value}: nobody to add")
    count = ledger.add_late(session, edition)
    if count:
        _reopen(edition)
    return edition, count


# -- what a batch runs into -----------------------------------------------------------------


def auto_pause(session: Session, edition_id: int, reason: StopReason, words: str) -> None:
    """Pause a sending edition because of what its batches ran into (refusals or transport
    failures in a row): the problem is the sender's, and the operator must look first."""
    if _set(
        session,
        edition_id,
        Edition.status == EditionStatus.READY,
        status=EditionStatus.PAUSED,
        stop_reason=reason,
        status_reason=words,
    ):
        log.error("edition %s %s", edition_id, words, extra={"edition_id": edition_id})


def note_transport_error(session: Session, edition_id: int, error: str) -> None:
    """Keep why the last batch stopped on a still-sending edition, for `digest status`."""
    _set(
        session,
        edition_id,
        Edition.status == EditionStatus.READY,
        stop_reason=StopReason.TRANSPORT_ERROR,
        status_reason=f"transport error: {error}",
    )


def clear_transport_error(session: Session, edition_id: int) -> None:
    """A message went through again: the edition is sending normally."""
    _set(
        session,
        edition_id,
        Edition.status == EditionStatus.READY,
        stop_reason=None,
        status_reason=None,
    )
