"""Forgetting a person (GDPR Art. 17) while keeping the numbers and the promise not to mail them.

What stays: the subscriber row under a placeholder address (so the ledger's counts per edition
still add up), their ledger rows' statuses and times, and the suppression of the address, as a
SHA-256 of its stored form. What goes: the address, the name, the time zone, the consent
history (IP addresses, wording, times), section choices, SMTP replies quoting the address,
soft-bounce runs, and their clicks and opens.

The hash is not anonymous: anyone holding an address can hash it and look. It is what lets
"never mail this address again" outlive the address itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from digest.audience.addresses import address_hash, lookup_form, placeholder_address
from digest.errors import InputError
from digest.store.models import (
    Click,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)

__all__ = ["ForgetReport", "forget"]


@dataclass
class ForgetReport:
    #: The address in its stored form (what was looked for and is now suppressed as a hash).
    address: str
    #: There was a subscriber with this address.
    found: bool
    subscriptions: int = 0
    deliveries: int = 0
    consent_events: int = 0


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def forget(session: Session, email: str) -> ForgetReport:
    """Erase what is stored about ``email`` (in any form it may be written: case, spaces,
    an internationalised domain) and keep it suppressed, as a hash. Idempotent."""
    address = lookup_form(email)
    if address is None:
        raise InputError(f"not an email address: {email.strip()[:80]!r}")
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
        return ForgetReport(address=address, found=False)
    sid = subscriber.id
    subscriber.email = placeholder_address(sid)
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
    # The consent history is theirs (where from, when, the wording they saw): it goes too. The
    # suppression hash is what now stands for their "no".
    consent = session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == sid))
    # What they clicked is about them, not about the edition's delivery: it goes too.
    theirs = select(Delivery.id).where(Delivery.subscriber_id == sid)
    session.execute(delete(Click).where(Click.delivery_id.in_(theirs)))
    session.flush()
    return ForgetReport(
        address=address,
        found=True,
        subscriptions=_count(subscriptions),
        deliveries=_count(deliveries),
        consent_events=_count(consent),
    )
