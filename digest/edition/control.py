"""The operator's hold on a running send: pause, resume, cancel, retry the failed.

Each is one state change in the database; batches read the edition's state
before they claim, so a change takes effect within one batch on every worker.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.edition import ledger
from digest.edition.state import OPERATOR_PAUSE
from digest.errors import DigestError, NotFoundError
from digest.store.models import Delivery, DeliveryStatus, Edition, EditionStatus, utcnow


def _edition(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise NotFoundError("edition", edition_id)
    return edition


def pause(session: Session, edition_id: int, reason: str = OPERATOR_PAUSE) -> Edition:
    edition = _edition(session, edition_id)
    if edition.status != EditionStatus.READY:
        raise DigestError(f"edition {edition_id} is {edition.status.value}, not sending")
    edition.status = EditionStatus.PAUSED
    edition.status_reason = reason
    return edition


def resume(session: Session, edition_id: int) -> Edition:
    """Let a paused edition send again, from where it stopped; the error streaks start over."""
    edition = _edition(session, edition_id)
    if edition.status != EditionStatus.PAUSED:
        raise DigestError(f"edition {edition_id} is {edition.status.value}, not paused")
    edition.status = EditionStatus.READY
    edition.status_reason = None
    edition.transport_error_streak = 0
    edition.refusal_streak = 0
    return edition


def cancel(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Stop an edition for good: its unsent rows are skipped. Returns (edition, rows skipped).

    Rows a worker holds right now are left to it: that message may still go out.
    """
    edition = _edition(session, edition_id)
    if edition.status not in (EditionStatus.READY, EditionStatus.PAUSED):
        raise DigestError(f"edition {edition_id} is {edition.status.value}: nothing to cancel")
    edition.status = EditionStatus.CANCELLED
    edition.status_reason = "cancelled by the operator"
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
    if count and edition.status == EditionStatus.DONE:
        edition.status = EditionStatus.READY
        edition.completed_at = None
    return edition, count


def include_late(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Add ledger rows for the subscribers who joined since the edition was built.

    Returns (edition, rows added). A finished edition is sending again until they have it;
    a paused one stays paused.
    """
    edition = _edition(session, edition_id)
    if edition.status not in (EditionStatus.READY, EditionStatus.PAUSED, EditionStatus.DONE):
        raise DigestError(f"edition {edition_id} is {edition.status.value}: nobody to add")
    count = ledger.add_late(session, edition)
    if count and edition.status == EditionStatus.DONE:
        edition.status = EditionStatus.READY
        edition.completed_at = None
    return edition, count
