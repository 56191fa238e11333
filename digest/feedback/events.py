"""What the inbox tells us about an address, and what each kind of news changes.

Every change is conditional on the state it changes from, so applying the same
event twice (a DSN delivered twice, an IMAP message read again) changes nothing
the second time, and ``apply_event`` says whether anything changed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from digest.store.models import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_SOFT_BOUNCE_LIMIT = 3


class EventKind(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"  # 5.x.x: the address does not work
    SOFT_BOUNCE = "soft_bounce"  # 4.x.x: it may work later (mailbox full)
    COMPLAINT = "complaint"  # the reader pressed "this is spam"
    UNSUBSCRIBE = "unsubscribe"  # the List-Unsubscribe mailto


@dataclass(frozen=True)
class FeedbackEvent:
    """One piece of news about one address. ``delivery_id``, when known, names the message it is
    about and wins over ``email``; ``list_id`` is what an unsubscribe ends."""

    kind: EventKind
    email: str = ""
    delivery_id: int | None = None
    list_id: int | None = None
    #: What the report said (the Status and Diagnostic-Code of a DSN), kept as the reason.
    detail: str = ""
    #: Where it came from, for the log: "smtp", "imap", a file name.
    source: str = ""


def apply_event(
    session: Session, event: FeedbackEvent, *, soft_bounce_limit: int = DEFAULT_SOFT_BOUNCE_LIMIT
) -> bool:
    """Record the event; True when it changed anything, False when it was already recorded
    or names nobody we know."""
    delivery = session.get(Delivery, event.delivery_id) if event.delivery_id else None
    if event.delivery_id and delivery is None:
        log.warning("feedback %s names unknown delivery %s", event.kind, event.delivery_id)
        return False
    subscriber = _subscriber(session, event, delivery)
    email = subscriber.email if subscriber else event.email.strip().lower()
    detail = " ".join(event.detail.split())[:400]
    if event.kind == EventKind.HARD_BOUNCE:
        changed = _hard_bounce(session, subscriber, delivery, email, detail)
    elif event.kind == EventKind.SOFT_BOUNCE:
        changed = _soft_bounce(session, subscriber, delivery, detail, soft_bounce_limit)
    elif event.kind == EventKind.COMPLAINT:
        changed = _complaint(session, subscriber, email, detail)
    else:
        changed = _unsubscribe(session, subscriber, event.list_id)
    session.flush()
    log.info(
        "feedback %s for subscriber %s (delivery %s) from %s: %s",
        event.kind,
        subscriber.id if subscriber else None,
        event.delivery_id,
        event.source or "?",
        "applied" if changed else "nothing to change",
    )
    return changed


def _subscriber(
    session: Session, event: FeedbackEvent, delivery: Delivery | None
) -> Subscriber | None:
    if delivery is not None:
        return session.get(Subscriber, delivery.subscriber_id)
    if not event.email:
        return None
    address = event.email.strip().lower()
    return session.scalars(select(Subscriber).where(Subscriber.email == address)).first()


def suppress(session: Session, email: str, reason: str) -> bool:
    """Put the address on the suppression list, once; an earlier reason is kept."""
    if not email or "@" not in email:
        return False
    if session.scalar(select(exists().where(Suppression.email == email))):
        return False
    session.add(Suppression(email=email, reason=reason[:500]))
    return True


def _set_status(subscriber: Subscriber | None, status: SubscriberStatus) -> bool:
    if subscriber is None or subscriber.status == status:
        return False
    subscriber.status = status
    return True


def _hard_bounce(
    session: Session,
    subscriber: Subscriber | None,
    delivery: Delivery | None,
    email: str,
    detail: str,
) -> bool:
    changed = False
    # Only a message that went out can bounce; a report about any other row is noise.
    if delivery is not None and delivery.status == DeliveryStatus.SENT:
        delivery.status = DeliveryStatus.BOUNCED
        delivery.last_error = f"bounce report: {detail}"[:1000]
        changed = True
    changed |= suppress(session, email, f"bounced: {detail}")
    changed |= _set_status(subscriber, SubscriberStatus.BOUNCED)
    return changed


def _soft_bounce(
    session: Session,
    subscriber: Subscriber | None,
    delivery: Delivery | None,
    detail: str,
    limit: int,
) -> bool:
    if subscriber is None or delivery is None:
        # Runs are counted in editions: a report naming no delivery cannot be placed in one.
        return False
    edition_id = delivery.edition_id
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
        _set_status(subscriber, SubscriberStatus.BOUNCED)
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


def _complaint(session: Session, subscriber: Subscriber | None, email: str, detail: str) -> bool:
    changed = suppress(session, email, f"complaint: {detail}" if detail else "complaint")
    if subscriber is not None:
        for subscription in session.scalars(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
            )
        ):
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
            changed = True
        if subscriber.status == SubscriberStatus.ACTIVE:
            changed |= _set_status(subscriber, SubscriberStatus.UNSUBSCRIBED)
    return changed


def _unsubscribe(session: Session, subscriber: Subscriber | None, list_id: int | None) -> bool:
    if subscriber is None or list_id is None:
        return False
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.list_id == list_id
        )
    ).first()
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return False
    subscription.status = SubscriptionStatus.UNSUBSCRIBED
    # In the consent history like the web's unsubscribes, so statistics count all of them.
    session.add(
        ConsentEvent(
            subscriber_id=subscriber.id, list_id=list_id, action="unsubscribe", source="mailto"
        )
    )
    return True
