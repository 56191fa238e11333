"""Who an edition goes to, asked the same way by the build, the late-joiner count, the dry
run, the list counts and the send loop (which asks again, per claimed row, in case someone
left or was suppressed after the ledger was written).

Eligible: a confirmed subscription to the list, an active subscriber, an address not
suppressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from digest.store.models import (
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)

__all__ = [
    "ListAudience",
    "eligible_choices",
    "eligible_count",
    "eligible_subscribers",
    "list_audiences",
    "skip_reason",
]


def _not_suppressed() -> ColumnElement[bool]:
    return ~exists().where(Suppression.email == Subscriber.email)


def eligible_subscribers(list_id: int) -> Select[Any]:
    """Subscriber ids the list's editions go to (a SELECT to build on: INSERT ... SELECT,
    counts, anti-joins)."""
    return (
        select(Subscriber.id)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(
            Subscription.list_id == list_id,
            Subscription.status == SubscriptionStatus.CONFIRMED,
            Subscriber.status == SubscriberStatus.ACTIVE,
            _not_suppressed(),
        )
    )


def eligible_count(session: Session, list_id: int) -> int:
    """How many subscribers an edition of the list built now would go to."""
    query = select(func.count()).select_from(eligible_subscribers(list_id).subquery())
    return int(session.scalar(query) or 0)


def eligible_choices(session: Session, list_id: int) -> Iterator[list[str]]:
    """The sections each eligible subscriber who chose some chose (those who chose none get
    every section and are not among them), streamed: a dry run counts whose are empty."""
    query = eligible_subscribers(list_id).with_only_columns(Subscription.sections)
    # None is stored as JSON null, not SQL NULL: told apart here rather than in SQL.
    for (chosen,) in session.execute(query.execution_options(yield_per=1000)):
        if chosen:
            yield list(chosen)


def skip_reason(
    subscriber_status: SubscriberStatus | None,
    subscription_status: SubscriptionStatus | None,
    suppressed: bool,
) -> str | None:
    """Why a ledger row must not be sent now (None: send it). The same rule as
    ``eligible_subscribers``, for one row whose state was read with it."""
    if suppressed:
        return "address suppressed"
    if subscriber_status != SubscriberStatus.ACTIVE:
        return f"subscriber {subscriber_status}"
    if subscription_status != SubscriptionStatus.CONFIRMED:
        return "no longer subscribed to this list"
    return None


@dataclass(frozen=True)
class ListAudience:
    """A list's people: who an edition would go to now, and the subscriptions in each state."""

    eligible: int = 0
    pending: int = 0
    confirmed: int = 0
    unsubscribed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "eligible": self.eligible,
            "pending": self.pending,
            "confirmed": self.confirmed,
            "unsubscribed": self.unsubscribed,
        }


def list_audiences(session: Session, list_ids: list[int] | None = None) -> dict[int, ListAudience]:
    """{list id: its audience} in two grouped queries; lists with nobody are absent."""
    states: dict[int, dict[str, int]] = {}
    by_status = select(Subscription.list_id, Subscription.status, func.count()).group_by(
        Subscription.list_id, Subscription.status
    )
    eligible = (
        select(Subscription.list_id, func.count())
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.status == SubscriptionStatus.CONFIRMED,
            Subscriber.status == SubscriberStatus.ACTIVE,
            _not_suppressed(),
        )
        .group_by(Subscription.list_id)
    )
    if list_ids is not None:
        by_status = by_status.where(Subscription.list_id.in_(list_ids))
        eligible = eligible.where(and_(Subscription.list_id.in_(list_ids)))
    for list_id, status, count in session.execute(by_status):
        states.setdefault(list_id, {})[status.value] = int(count)
    counted = {list_id: int(count) for list_id, count in session.execute(eligible)}
    return {
        list_id: ListAudience(
            eligible=counted.get(list_id, 0),
            pending=found.get(SubscriptionStatus.PENDING.value, 0),
            confirmed=found.get(SubscriptionStatus.CONFIRMED.value, 0),
            unsubscribed=found.get(SubscriptionStatus.UNSUBSCRIBED.value, 0),
        )
        for list_id, found in states.items()
    }
