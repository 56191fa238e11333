"""Every change to who is subscribed to what: the operator's add, a sign-up, its confirmation,
an unsubscribe (one list or all, by link, one-click, mailto or the operator), a preferences
form and a complaint. Each writes its consent event here, so no face can change a subscription
without the history saying so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.audience.addresses import clean_name, normalise_email
from digest.audience.consent import ConsentAction, record_consent, withdrawn_since
from digest.audience.suppression import is_forgotten, set_subscriber_status, suppress
from digest.errors import InputError
from digest.store.models import (
    ConsentEvent,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)

__all__ = [
    "ConfirmState",
    "SignUp",
    "add_confirmed",
    "complain",
    "confirm",
    "confirm_state",
    "find_subscriber",
    "record_signup",
    "set_preferences",
    "subscription_of",
    "unsubscribe",
]


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    """The subscriber with this stored-form address, if any."""
    return session.scalars(select(Subscriber).where(Subscriber.email == address)).first()


def subscription_of(session: Session, subscriber_id: int, list_id: int) -> Subscription | None:
    return session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id
        )
    ).first()


def _subscriber(session: Session, address: str, name: str) -> Subscriber:
    """The subscriber with ``address``, made if new; a name only fills an empty one."""
    subscriber = find_subscriber(session, address)
    if subscriber is None:
        subscriber = Subscriber(email=address, name=name, status=SubscriberStatus.ACTIVE)
        session.add(subscriber)
        session.flush()
    elif name and not subscriber.name:
        subscriber.name = name
    return subscriber


def add_confirmed(
    session: Session,
    mailing_list: MailingList,
    email: str,
    name: str = "",
    *,
    source: str = "operator",
) -> tuple[Subscriber, bool]:
    """Add ``email`` to the list as a confirmed subscriber (the operator vouches for consent).

    Returns (subscriber, newly subscribed). An address that unsubscribed or bounced stays so:
    re-adding it must be the subscriber's own choice; a forgotten one is refused.
    """
    address = normalise_email(email)
    if is_forgotten(session, address):
        raise InputError(f"{address} asked to be forgotten and stays suppressed")
    subscriber = _subscriber(session, address, clean_name(name))
    if subscription_of(session, subscriber.id, mailing_list.id) is not None:
        return subscriber, False
    now = utcnow()
    session.add(
        Subscription(
            list_id=mailing_list.id,
            subscriber_id=subscriber.id,
            status=SubscriptionStatus.CONFIRMED,
            source=source[:100],
            created_at=now,
            confirmed_at=now,
        )
    )
    record_consent(session, subscriber.id, mailing_list.id, ConsentAction.ADDED, source)
    return subscriber, True


@dataclass(frozen=True)
class SignUp:
    """A sign-up form as posted and checked: the address in its stored form."""

    list_id: int
    address: str
    name: str
    sections: list[str] | None
    wording: str
    ip: str | None
    source: str = "web form"


def record_signup(
    session: Session, signup: SignUp
) -> tuple[Subscriber, Subscription, ConsentEvent]:
    """Append the sign-up to the consent history. A new subscription starts pending with this
    sign-up's consent; an existing one keeps its consent record (a re-submitted form, maybe by
    someone else, must not rewrite it): the sections and wording of a sign-up apply only when
    its own confirm link is clicked."""
    subscriber = find_subscriber(session, signup.address)
    if subscriber is None:
        subscriber = _subscriber(session, signup.address, signup.name)
    subscription = subscription_of(session, subscriber.id, signup.list_id)
    if subscription is None:
        subscription = Subscription(
            list_id=signup.list_id,
            subscriber_id=subscriber.id,
            status=SubscriptionStatus.PENDING,
            sections=signup.sections,
            source=signup.source,
            created_at=utcnow(),
            consent_ip=signup.ip,
            consent_text=signup.wording,
        )
        session.add(subscription)
    elif subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        subscription.status = SubscriptionStatus.PENDING
    if subscription.status != SubscriptionStatus.CONFIRMED and signup.name and not subscriber.name:
        subscriber.name = signup.name
    event = record_consent(
        session,
        subscriber.id,
        signup.list_id,
        ConsentAction.SIGNUP,
        signup.source,
        ip=signup.ip,
        wording=signup.wording,
        sections=signup.sections,
    )
    return subscriber, subscription, event


class ConfirmState(enum.Enum):
    """What a confirm link can still do."""

    READY = "ready"  # pending: a POST confirms
    ALREADY = "already"  # confirmed already: nothing to do
    VOID = "void"  # withdrawn since (or not this link's sign-up): it cannot subscribe
    GONE = "gone"  # no such subscription any more


def confirm_state(
    session: Session, subscriber_id: int, list_id: int, signup_id: int
) -> ConfirmState:
    """Whether the link signed for sign-up event ``signup_id`` can confirm now. A link made
    before the subscriber withdrew (left this list, or all) is void: consent given once is not
    revived by an old link. ``signup_id`` 0 is a link mailed before sign-ups were numbered."""
    subscription = subscription_of(session, subscriber_id, list_id)
    if subscription is None:
        return ConfirmState.GONE
    if subscription.status == SubscriptionStatus.CONFIRMED:
        return ConfirmState.ALREADY
    if signup_id:
        signup = session.get(ConsentEvent, signup_id)
        if signup is None or (signup.subscriber_id, signup.list_id) != (subscriber_id, list_id):
            return ConfirmState.VOID
    if subscription.status != SubscriptionStatus.PENDING or withdrawn_since(
        session, subscriber_id, list_id, signup_id
    ):
        return ConfirmState.VOID
    return ConfirmState.READY


def confirm(
    session: Session, subscriber_id: int, list_id: int, signup_id: int, *, ip: str | None
) -> ConfirmState:
    """Confirm the subscription if the link can (see ``confirm_state``); returns the state it
    was found in (READY: it is confirmed now)."""
    state = confirm_state(session, subscriber_id, list_id, signup_id)
    if state != ConfirmState.READY:
        return state
    subscription = subscription_of(session, subscriber_id, list_id)
    assert subscription is not None  # confirm_state found it
    subscription.status = SubscriptionStatus.CONFIRMED
    subscription.confirmed_at = utcnow()
    signup = session.get(ConsentEvent, signup_id) if signup_id else None
    if signup is not None:
        # The consent on record is the one confirmed, not the last form someone posted.
        subscription.sections = signup.sections
        subscription.consent_ip = signup.ip
        subscription.consent_text = signup.wording
        subscription.source = signup.source
    record_consent(session, subscriber_id, list_id, ConsentAction.CONFIRM, "confirm link", ip=ip)
    subscriber = session.get_one(Subscriber, subscriber_id)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.ACTIVE
    return state


def unsubscribe(
    session: Session,
    subscriber_id: int,
    list_id: int | None,
    *,
    source: str,
    ip: str | None = None,
) -> list[int]:
    """End the subscription to ``list_id``, or to every list (None: the subscriber is then
    unsubscribed as a whole). Returns the ids of the lists left now; the consent history
    records the request even when there was nothing left to end, as it was asked for."""
    left = []
    query = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    for subscription in session.scalars(query):
        if subscription.status != SubscriptionStatus.UNSUBSCRIBED:
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
            left.append(subscription.list_id)
    if list_id is None:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
    action = ConsentAction.UNSUBSCRIBE_ALL if list_id is None else ConsentAction.UNSUBSCRIBE
    record_consent(session, subscriber_id, list_id, action, source, ip=ip)
    return left


def set_preferences(
    session: Session,
    subscriber: Subscriber,
    name: str,
    choices: Mapping[int, tuple[bool, Sequence[str]]],
    lists: Sequence[MailingList],
    *,
    ip: str | None,
) -> None:
    """Apply a preferences form: the name, and for each offered list whether it is wanted and
    which of its sections (all or none ticked: everything, so a new section reaches them too).
    Holding the link proves the address is theirs, so joining a list here needs no second
    confirmation."""
    subscriber.name = clean_name(name)
    now = utcnow()
    for mailing_list in lists:
        wanted, ticked = choices.get(mailing_list.id, (False, ()))
        offered = {s.slug for s in mailing_list.sections}
        sections = [s for s in ticked if s in offered]
        subscription = subscription_of(session, subscriber.id, mailing_list.id)
        if wanted:
            if subscription is None:
                subscription = Subscription(
                    list_id=mailing_list.id,
                    subscriber_id=subscriber.id,
                    source="preferences page",
                    created_at=now,
                )
                session.add(subscription)
            if subscription.status != SubscriptionStatus.CONFIRMED:
                subscription.confirmed_at = now
                record_consent(
                    session,
                    subscriber.id,
                    mailing_list.id,
                    ConsentAction.JOIN,
                    "preferences page",
                    ip=ip,
                )
            subscription.status = SubscriptionStatus.CONFIRMED
            subscription.sections = sections if 0 < len(sections) < len(offered) else None
            if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
                subscriber.status = SubscriberStatus.ACTIVE
        elif subscription is not None and subscription.status != SubscriptionStatus.UNSUBSCRIBED:
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
            record_consent(
                session, subscriber.id, mailing_list.id, ConsentAction.LEAVE, "preferences page",
                ip=ip,
            )  # fmt: skip
    session.flush()


def complain(
    session: Session, subscriber: Subscriber | None, email: str, detail: str, source: str
) -> bool:
    """The reader marked a digest as spam: suppressed, and unsubscribed from every list (a
    complaint is the strongest withdrawal of consent there is). True when anything changed."""
    changed = suppress(session, email, f"complaint: {detail}" if detail else "complaint")
    if subscriber is None:
        session.flush()
        return changed
    active = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
        )
    ).all()
    for subscription in active:
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
    changed |= bool(active)
    if subscriber.status == SubscriberStatus.ACTIVE:
        changed |= set_subscriber_status(subscriber, SubscriberStatus.UNSUBSCRIBED)
    if changed:
        record_consent(session, subscriber.id, None, ConsentAction.COMPLAINT, source)
    session.flush()
    return changed
