"""Addresses never mailed again, and what a bounce does to a subscriber.

A hard bounce (5xx at send time, or a report later) suppresses the address and marks the
subscriber bounced; soft bounces (mailbox full) suppress only after ``limit`` editions running.
Every change is conditional on the state it changes from, so the same report twice changes
nothing the second time.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from digest.audience.addresses import address_hash
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)

__all__ = [
    "DEFAULT_SOFT_BOUNCE_LIMIT",
    "hard_bounce",
    "is_forgotten",
    "is_suppressed",
    "soft_bounce",
    "suppress",
    "unsuppress",
]

DEFAULT_SOFT_BOUNCE_LIMIT = 3


def is_suppressed(session: Session, email: str) -> bool:
    """Whether the (stored-form) address is on the suppression list."""
    return bool(session.scalar(select(exists().where(Suppression.email == email))))


def is_forgotten(session: Session, email: str) -> bool:
    """Whether this address asked to be forgotten (and so is never subscribed or mailed again)."""
    return bool(session.scalar(select(exists().where(Suppression.email == address_hash(email)))))


def suppress(session: Session, email: str, reason: str) -> bool:
    """Put the address on the suppression list, once; an earlier reason is kept."""
    if not email or "@" not in email:
        return False
    if is_suppressed(session, email):
        return False
    session.add(Suppression(email=email, reason=reason[:500]))
    return True


def set_subscriber_status(subscriber: Subscriber | None, status: SubscriberStatus) -> bool:
    if subscriber is None or subscriber.status == status:
        return False
    subscriber.status = status
    return True


def hard_bounce(session: Session, subscriber: Subscriber | None, email: str, reason: str) -> bool:
    """The address does not work: suppressed, and its subscriber marked bounced."""
    changed = suppress(session, email, f"bounced: {reason}")
    changed |= set_subscriber_status(subscriber, SubscriberStatus.BOUNCED)
    session.flush()
    return changed


def soft_bounce(
    session: Session,
    subscriber: Subscriber,
    edition_id: int,
    detail: str,
    limit: int = DEFAULT_SOFT_BOUNCE_LIMIT,
) -> bool:
    """Count an edition that soft-bounced for the subscriber; ``limit`` editions running (none
    delivered in between) suppress the address. False when this edition was counted already."""
    run = session.get(SoftBounce, subscriber.id)
    if run is None:
        run = SoftBounce(subscriber_id=subscriber.id, streak=0)
        session.add(run)
    elif run.last_edition_id is not None and edition_id <= run.last_edition_id:
        return False  # this edition (or a later one) is already counted
    run.streak = run.streak + 1 if _still_running(session, subscriber.id, run, edition_id) else 1
    run.last_edition_id = edition_id
    run.last_detail = detail
    run.updated_at = utcnow()
    if run.streak >= limit:
        suppress(
            session,
            subscriber.email,
            f"soft bounces in {run.streak} editions running: {detail}",
        )
        set_subscriber_status(subscriber, SubscriberStatus.BOUNCED)
    session.flush()
    return True


def _still_running(session: Session, subscriber_id: int, run: SoftBounce, edition_id: int) -> bool:
    """Whether no edition between the run's last and this one reached the subscriber."""
    if run.last_edition_id is None or run.streak == 0:
        return False
    delivered_between = session.scalar(
        select(
            exists().where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.edition_id > run.last_edition_id,
                Delivery.edition_id < edition_id,
                Delivery.status == DeliveryStatus.SENT,
            )
        )
    )
    return not delivered_between


def unsuppress(session: Session, email: str) -> bool:
    """Take an address off the suppression list (the operator's decision: it was a mistake, or
    the mailbox works again). A forgotten person's hashed entry is never taken off, so they
    cannot be subscribed again; the subscriber's own status is left as it is."""
    if not email or "@" not in email:
        return False
    found = session.scalars(select(Suppression).where(Suppression.email == email)).first()
    if found is None:
        return False
    session.delete(found)
    return True
