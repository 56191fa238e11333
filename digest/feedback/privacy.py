"""Forgetting a person (GDPR Art. 17) while keeping the numbers and the promise not to mail them.

What stays: the subscriber row under a placeholder address (so the ledger's
counts per edition still add up), their ledger rows' statuses and times, and
the suppression of the address, as a salted-by-prefix SHA-256 of it. What goes:
the address, the name, the consent record (IP address, wording, source), section
choices, SMTP replies quoting the address, soft-bounce runs, and their clicks and opens.

The hash is not anonymous: anyone holding an address can hash it and look. It
is what lets "never mail this address again" outlive the address itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from digest.store.models import (
    Click,
    Delivery,
    DeliveryStatus,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)

#: Fixed, so the same address always gives the same hash on every installation's data.
HASH_PREFIX = "digest.forgotten:"
#: How a hashed entry is told apart from an address in ``suppressions.email``.
HASH_MARK = "sha256:"
#: The domain of the placeholder addresses forgotten subscribers keep (RFC 2606: never mailable).
PLACEHOLDER_DOMAIN = "forgotten.invalid"


def address_hash(email: str) -> str:
    """What the suppression list keeps of a forgotten address."""
    normal = email.strip().lower()
    digest = hashlib.sha256((HASH_PREFIX + normal).encode("utf-8")).hexdigest()
    return HASH_MARK + digest


def is_forgotten(session: Session, email: str) -> bool:
    """Whether this address asked to be forgotten (and so is never subscribed or mailed again)."""
    return bool(session.scalar(select(exists().where(Suppression.email == address_hash(email)))))


def is_placeholder(email: str) -> bool:
    """Whether a subscriber row is what remains of a forgotten person."""
    return email.endswith("@" + PLACEHOLDER_DOMAIN)


@dataclass
class ForgetReport:
    found: bool  # there was a subscriber with this address
    subscriptions: int = 0
    deliveries: int = 0


def forget(session: Session, email: str) -> ForgetReport:
    """Erase what is stored about ``email`` and keep it suppressed, as a hash. Idempotent."""
    address = email.strip().lower()
    hashed = address_hash(address)
    reasons = list(session.scalars(select(Suppression.reason).where(Suppression.email == address)))
    session.execute(delete(Suppression).where(Suppression.email == address))
    if not session.scalar(select(exists().where(Suppression.email == hashed))):
        # Only the kind of reason is kept: the detail of a bounce may quote the address.
        why = reasons[0].partition(":")[0] if reasons else "request"
        session.add(Suppression(email=hashed, reason=f"forgotten (was: {why})"[:500]))
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        session.flush()
        return ForgetReport(found=False)
    sid = subscriber.id
    subscriber.email = f"forgotten-{sid}@{PLACEHOLDER_DOMAIN}"
    subscriber.name = ""
    subscriber.timezone = None
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriptions = session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == sid)
        .values(
            status=SubscriptionStatus.UNSUBSCRIBED,
            sections=None,
            source="forgotten",
            consent_ip=None,
            consent_text=None,
        )
    )
    # Rows still to be sent are given up, so no batch picks up the placeholder address.
    session.execute(
        update(Delivery)
        .where(
            Delivery.subscriber_id == sid,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DEFERRED)),
        )
        .values(status=DeliveryStatus.SKIPPED, next_attempt_at=None)
    )
    deliveries = session.execute(
        update(Delivery).where(Delivery.subscriber_id == sid).values(last_error=None)
    )
    session.execute(delete(SoftBounce).where(SoftBounce.subscriber_id == sid))
    # What they clicked is about them, not about the edition's delivery: it goes too.
    theirs = select(Delivery.id).where(Delivery.subscriber_id == sid)
    session.execute(delete(Click).where(Click.delivery_id.in_(theirs)))
    session.flush()
    return ForgetReport(
        found=True,
        subscriptions=int(subscriptions.rowcount or 0),  # type: ignore[attr-defined]
        deliveries=int(deliveries.rowcount or 0),  # type: ignore[attr-defined]
    )
