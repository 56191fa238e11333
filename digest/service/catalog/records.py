"""What the dashboard's management pages read and change beyond the basic catalog: removing a
section, finding subscribers, one subscriber's history (deliveries, bounces, consent), the
suppression list and the addresses that bounced or complained."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest import audience
from digest.errors import InputError, NotFoundError
from digest.service.catalog.lists import get_section
from digest.service.catalog.validation import check_text
from digest.service.catalog.views import (
    ConsentRow,
    DeliveryRow,
    SubscriberHistory,
    SuppressionView,
)
from digest.store.models import (
    ConsentEvent,
    Delivery,
    Edition,
    ListSection,
    MailingList,
    SoftBounce,
    Source,
    Subscriber,
    SubscriberStatus,
    Suppression,
)

__all__ = [
    "add_suppression",
    "find_subscribers",
    "remove_section",
    "remove_suppression",
    "subscriber_history",
    "suppressions",
    "troubled_subscribers",
]

#: How many rows of each kind a subscriber's history shows (newest first).
HISTORY_ROWS = 100


def _count(session: Session, model: type[Any], *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def remove_section(session: Session, slug: str) -> str:
    """Delete a section no source and no list uses; returns its name."""
    section = get_section(session, slug)
    used = {
        "sources": _count(session, Source, Source.section_id == section.id),
        "lists": _count(session, ListSection, ListSection.section_id == section.id),
    }
    users = ", ".join(f"{n} {what}" for what, n in used.items() if n)
    if users:
        raise InputError(
            f"section {slug} is used by {users}: move or remove them first, then remove it"
        )
    name = section.name
    session.delete(section)
    session.flush()
    return name


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_subscribers(session: Session, query: str, limit: int) -> list[Subscriber]:
    """People whose address or name contains ``query`` (any case), by address."""
    query = check_text(query, "the search", 320)
    statement = select(Subscriber).order_by(Subscriber.email).limit(limit)
    if query:
        pattern = _like(query)
        statement = statement.where(
            or_(
                Subscriber.email.ilike(pattern, escape="\\"),
                Subscriber.name.ilike(pattern, escape="\\"),
            )
        )
    return list(session.scalars(statement))


def subscriber_history(session: Session, subscriber_id: int) -> SubscriberHistory:
    person = session.get(Subscriber, subscriber_id)
    if person is None:
        raise NotFoundError("subscriber", subscriber_id)
    deliveries = session.execute(
        select(Delivery, Edition.edition_date, MailingList.slug)
        .join(Edition, Edition.id == Delivery.edition_id)
        .join(MailingList, MailingList.id == Edition.list_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id.desc())
        .limit(HISTORY_ROWS)
    )
    consent = session.execute(
        select(ConsentEvent, MailingList.slug)
        .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(ConsentEvent.id.desc())
        .limit(HISTORY_ROWS)
    )
    soft = session.get(SoftBounce, subscriber_id)
    return SubscriberHistory(
        deliveries=tuple(
            DeliveryRow(
                edition_id=row.edition_id,
                list_slug=slug,
                day=day,
                status=row.status.value,
                attempts=row.attempts,
                sent_at=row.sent_at,
                last_error=row.last_error,
            )
            for row, day, slug in deliveries
        ),
        consent=tuple(
            ConsentRow(
                at=event.at,
                action=event.action,
                list_slug=slug,
                source=event.source,
                ip=event.ip,
            )
            for event, slug in consent
        ),
        soft_bounces=soft.streak if soft else 0,
        soft_bounce_detail=soft.last_detail if soft else None,
        suppressed=audience.is_suppressed(session, person.email),
    )


def suppressions(session: Session) -> list[SuppressionView]:
    rows = session.scalars(select(Suppression).order_by(Suppression.created_at.desc()))
    return [SuppressionView.of(row) for row in rows]


def add_suppression(session: Session, email: str, reason: str) -> tuple[str, bool]:
    """Suppress ``email`` (normalised); returns (address, newly suppressed)."""
    address = audience.normalise_email(check_text(email, "the address", 320))
    why = check_text(reason, "the reason", 200) or "operator"
    added = audience.suppress(session, address, f"operator: {why}" if why != "operator" else why)
    return address, added


def remove_suppression(session: Session, email: str) -> bool:
    address = audience.lookup_form(check_text(email, "the address", 320))
    if address is None:
        raise InputError("not an email address (a forgotten person's entry stays for good)")
    if not audience.unsuppress(session, address):
        raise NotFoundError("suppressed address", address)
    return True


def troubled_subscribers(session: Session) -> list[Subscriber]:
    """Subscribers marked bounced, and those in a run of soft bounces."""
    soft_ids = select(SoftBounce.subscriber_id).where(SoftBounce.streak > 0)
    return list(
        session.scalars(
            select(Subscriber)
            .where(or_(Subscriber.status == SubscriberStatus.BOUNCED, Subscriber.id.in_(soft_ids)))
            .order_by(Subscriber.email)
            .limit(500)
        )
    )
