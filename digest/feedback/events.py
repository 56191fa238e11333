"""What the inbox tells us about an address, and which subscriber rule each kind of news sets
off (the rules themselves live in ``digest.audience``).

Every change is conditional on the state it changes from, so applying the same event twice (a
DSN delivered twice, an IMAP message read again) changes nothing the second time, and
``apply_event`` says whether anything changed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.audience import (
    DEFAULT_SOFT_BOUNCE_LIMIT,
    complain,
    find_subscriber,
    hard_bounce,
    is_placeholder,
    lookup_form,
    soft_bounce,
    subscription_of,
    unsubscribe,
)
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriptionStatus,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SOFT_BOUNCE_LIMIT", "EventKind", "FeedbackEvent", "apply_event"]


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
    #: The subscriber a signed notice return path names (a sign-up mail has no delivery row).
    subscriber_id: int | None = None
    #: What the report said (the Status and Diagnostic-Code of a DSN), kept as the reason.
    detail: str = ""
    #: Where it came from, for the log and the consent history: "smtp", "imap", a relay.
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
    email = subscriber.email if subscriber else (lookup_form(event.email) or "")
    detail = " ".join(event.detail.split())[:400]
    if event.kind == EventKind.HARD_BOUNCE:
        changed = _mark_bounced(delivery, detail)
        changed |= hard_bounce(session, subscriber, email, detail)
    elif event.kind == EventKind.SOFT_BOUNCE:
        # Runs are counted in editions: a report naming no delivery cannot be placed in one.
        changed = (
            subscriber is not None
            and delivery is not None
            and soft_bounce(session, subscriber, delivery.edition_id, detail, soft_bounce_limit)
        )
    elif event.kind == EventKind.COMPLAINT:
        changed = complain(session, subscriber, email, detail, event.source or "complaint")
    else:
        changed = _unsubscribe(session, subscriber, event.list_id, event.source)
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
    if event.subscriber_id is not None:
        found = session.get(Subscriber, event.subscriber_id)
        # A forgotten person's placeholder row is nobody to act on.
        return None if found is None or is_placeholder(found.email) else found
    address = lookup_form(event.email) if event.email else None
    return find_subscriber(session, address) if address else None


def _mark_bounced(delivery: Delivery | None, detail: str) -> bool:
    """Only a message that went out can bounce; a report about any other row is noise."""
    if delivery is None or delivery.status != DeliveryStatus.SENT:
        return False
    delivery.status = DeliveryStatus.BOUNCED
    delivery.last_error = f"bounce report: {detail}"[:1000]
    return True


def _unsubscribe(
    session: Session, subscriber: Subscriber | None, list_id: int | None, source: str
) -> bool:
    if subscriber is None or list_id is None:
        return False
    subscription = subscription_of(session, subscriber.id, list_id)
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return False
    return bool(unsubscribe(session, subscriber.id, list_id, source="mailto"))
