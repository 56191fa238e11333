"""The consent history: what a subscriber (or the operator, for them) asked for, appended and
never rewritten. Every subscription change writes one of these, whichever face it came from."""

from __future__ import annotations

import enum

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from digest.store.models import ConsentEvent, utcnow

__all__ = ["ConsentAction", "record_consent", "withdrawn_since"]


class ConsentAction(enum.StrEnum):
    """What one consent event says. Stored as its value (``consent_events.action``)."""

    SIGNUP = "signup"  # a sign-up form was posted (consent asked for, not yet given)
    CONFIRM = "confirm"  # the confirm link was clicked: consent given
    ADDED = "added"  # the operator added the address, vouching for its consent
    JOIN = "join"  # joined a list on the preferences page
    LEAVE = "leave"  # left a list on the preferences page
    UNSUBSCRIBE = "unsubscribe"  # left one list (link, one-click, mailto)
    UNSUBSCRIBE_ALL = "unsubscribe-all"  # left every list
    COMPLAINT = "complaint"  # marked a digest as spam: every list left

    @property
    def withdraws(self) -> bool:
        """Whether this action takes consent back (a confirm link signed before it is void)."""
        return self in _WITHDRAWALS


_WITHDRAWALS = frozenset(
    {
        ConsentAction.LEAVE,
        ConsentAction.UNSUBSCRIBE,
        ConsentAction.UNSUBSCRIBE_ALL,
        ConsentAction.COMPLAINT,
    }
)
#: Withdrawals that concern every list, whatever list id they carry.
_WITHDRAW_ALL = (ConsentAction.UNSUBSCRIBE_ALL.value, ConsentAction.COMPLAINT.value)


def record_consent(
    session: Session,
    subscriber_id: int,
    list_id: int | None,
    action: ConsentAction,
    source: str,
    *,
    ip: str | None = None,
    wording: str | None = None,
    sections: list[str] | None = None,
) -> ConsentEvent:
    """Append one event (``list_id`` None: it concerns every list) and return it, flushed, so
    its id can be signed into a link."""
    event = ConsentEvent(
        subscriber_id=subscriber_id,
        list_id=list_id,
        action=action.value,
        at=utcnow(),
        ip=ip,
        source=source[:100],
        wording=wording,
        sections=sections,
    )
    session.add(event)
    session.flush()
    return event


def withdrawn_since(session: Session, subscriber_id: int, list_id: int, after_id: int) -> bool:
    """Whether the subscriber withdrew consent for this list (or all) after event ``after_id``.
    Event ids, not times, order the history: they cannot tie within a second."""
    this_list = [a.value for a in ConsentAction if a.withdraws and a.value not in _WITHDRAW_ALL]
    found = session.scalars(
        select(ConsentEvent.id)
        .where(
            ConsentEvent.subscriber_id == subscriber_id,
            ConsentEvent.id > after_id,
            or_(
                ConsentEvent.action.in_(_WITHDRAW_ALL),
                and_(ConsentEvent.action.in_(this_list), ConsentEvent.list_id == list_id),
            ),
        )
        .limit(1)
    ).first()
    return found is not None
