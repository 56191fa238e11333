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


@dataclass(frozen=True)
class ForgetReport:
    """What forgetting one address cleared, and what it could not reach."""

    #: The address in its stored form (what was looked for and is now suppressed as a hash).
    address: str
    #: There was a subscriber with this address.
    found: bool
    #: Their row's id (kept, under a placeholder address); 0 when there was none.
    subscriber_id: int = 0
    subscriptions: int = 0
    deliveries: int = 0
    consent_events: int = 0
    soft_bounces: int = 0
    clicks: int = 0
    #: Suppression rows naming the address, replaced by the hash.
    suppressions: int = 0
    #: Counters of sign-up mail kept for the address (stored as hashes of it).
    throttles: int = 0
    #: ``.eml`` files in the outbox folder addressed to them, deleted.
    outbox_files: int = 0
    #: What holds the address and is out of Digest's reach, for the operator to see to.
    not_reached: tuple[str, ...] = ()

    def cleared(self) -> list[str]:
        """One line per kind of record cleared, for the operator (kinds with none left out)."""
        lines = [
            (self.subscriptions, "subscription", "kept without name, sections or consent IP"),
            (self.deliveries, "delivery record", "kept for the counts, SMTP replies removed"),
            (self.consent_events, "consent event", "deleted"),
            (self.soft_bounces, "soft-bounce run", "deleted"),
            (self.clicks, "click or open", "deleted"),
            (self.suppressions, "suppression entry", "replaced by a hash of the address"),
            (self.throttles, "sign-up mail counter", "deleted"),
            (self.outbox_files, "outbox file", "deleted"),
        ]
        return [f"{n} {what}{'' if n == 1 else 's'}: {done}" for n, what, done in lines if n]


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
    suppressions = session.execute(delete(Suppression).where(Suppression.email == address))
    if not session.scalar(select(exists().where(Suppression.email == hashed))):
        # Only the kind of reason is kept: the detail of a bounce may quote the address.
        why = reasons[0].partition(":")[0] if reasons else "request"
        session.add(Suppression(email=hashed, reason=f"forgotten (was: {why})"[:500]))
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        session.flush()
        return ForgetReport(address=address, found=False, suppressions=_count(suppressions))
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
    soft = session.execute(delete(SoftBounce).where(SoftBounce.subscriber_id == sid))
    # The consent history is theirs (where from, when, the wording they saw): it goes too. The
    # suppression hash is what now stands for their "no".
    consent = session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == sid))
    # What they clicked is about them, not about the edition's delivery: it goes too.
    theirs = select(Delivery.id).where(Delivery.subscriber_id == sid)
    clicks = session.execute(delete(Click).where(Click.delivery_id.in_(theirs)))
    session.flush()
    return ForgetReport(
        address=address,
        found=True,
        subscriber_id=sid,
        subscriptions=_count(subscriptions),
        deliveries=_count(deliveries),
        consent_events=_count(consent),
        soft_bounces=_count(soft),
        clicks=_count(clicks),
        suppressions=_count(suppressions),
    )
