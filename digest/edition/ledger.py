"""The delivery ledger: who gets an edition, who has it, and who is being sent to now.

Every state change is one SQL statement, so two workers (or a re-delivered
Celery task) can never both claim a row: a claim is a conditional UPDATE of
rows nobody holds, guarded on PostgreSQL by ``FOR UPDATE SKIP LOCKED`` and on
SQLite by its single writer.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Integer,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from digest.audience.eligibility import eligible_subscribers
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    MailingList,
    Subscriber,
    utcnow,
)

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.LEASED, DeliveryStatus.DEFERRED)


def _insert_rows(
    session: Session, edition: Edition, eligible: Select[Any], *, counted: bool = False
) -> int:
    """Insert a pending row per subscriber ``eligible`` selects; returns how many when
    ``counted`` (PostgreSQL reports no row count for INSERT ... SELECT through SQLAlchemy,
    so the ids come back instead: fine for a few late joiners, not for a whole list)."""
    mailing_list = session.get_one(MailingList, edition.list_id)
    zones = session.scalars(
        eligible.with_only_columns(Subscriber.timezone)
        .where(Subscriber.timezone.is_not(None), Subscriber.timezone != mailing_list.timezone)
        .distinct()
    ).all()
    # Subscribers with a time zone of their own are held until the list's send time there:
    # one CASE in the same statement, not an UPDATE per zone afterwards.
    send_times = local_send_times(mailing_list, edition.edition_date, zones)
    next_attempt: ColumnElement[Any] = (
        case(send_times, value=Subscriber.timezone, else_=null()) if send_times else null()
    )
    rows = eligible.with_only_columns(
        literal(edition.id),
        Subscriber.id,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
        next_attempt,
    )
    statement = insert(Delivery).from_select(
        ["edition_id", "subscriber_id", "status", "attempts", "next_attempt_at"], rows
    )
    if counted:
        return len(session.execute(statement.returning(Delivery.id)).all())
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def create_ledger(session: Session, edition: Edition) -> int:
    """One pending row per confirmed, active, unsuppressed subscriber of the edition's list.

    A single INSERT ... SELECT: the cost is the database's, not a Python loop's, and the
    memory of this process does not grow with the list. Rows of subscribers with a time zone
    of their own get their send time in that same statement (see ``local_send_times``).
    Called once, for a new edition (the unique (edition, subscriber) constraint would refuse
    a second run): no anti-join against the rows being inserted, which PostgreSQL plans
    badly on a freshly filled table.
    """
    return _insert_rows(session, edition, eligible_subscribers(edition.list_id))


def _late(edition: Edition) -> Select[Any]:
    has_row = (
        select(Delivery.id)
        .where(Delivery.edition_id == edition.id, Delivery.subscriber_id == Subscriber.id)
        .exists()
    )
    return eligible_subscribers(edition.list_id).where(~has_row)


def late_count(session: Session, edition: Edition) -> int:
    """Eligible subscribers of the list with no row in the edition's ledger: those who
    joined (or were confirmed) after it was built."""
    return int(session.scalar(select(func.count()).select_from(_late(edition).subquery())) or 0)


def add_late(session: Session, edition: Edition) -> int:
    """Give everyone who joined since the build a pending row; returns how many.

    The same INSERT ... SELECT as the build, less those already in the ledger; the unique
    (edition, subscriber) constraint refuses a row two callers raced to add, so a
    subscriber still gets the edition once.
    """
    try:
        with session.begin_nested():
            return _insert_rows(session, edition, _late(edition), counted=True)
    except IntegrityError:
        # Someone else added (some of) them in the meantime: the rest, once more.
        with session.begin_nested():
            return _insert_rows(session, edition, _late(edition), counted=True)


def local_send_times(
    mailing_list: MailingList, day: dt.date, zones: Sequence[str | None]
) -> dict[str, dt.datetime]:
    """{zone: the list's send time on ``day`` in that zone, as naive UTC} for the zones given.

    Subscribers in those zones are held back until then (already past: due at once). An
    unknown zone was refused on input; if one slipped in, it is left out: sent at once.
    """
    hour, minute = (int(part) for part in mailing_list.send_at.split(":"))
    times = {}
    for name in zones:
        if not name:
            continue
        try:
            tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)
        times[name] = local.astimezone(dt.UTC).replace(tzinfo=None)
    return times


def due_condition(now: dt.datetime) -> ColumnElement[bool]:
    """Rows a batch may take now: pending or deferred whose time has come (a subscriber's own
    send time, a retry), and rows leased by a worker whose lease ran out."""
    return or_(
        and_(
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DEFERRED)),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        ),
        and_(Delivery.status == DeliveryStatus.LEASED, Delivery.lease_until < now),
    )


def claim(
    session: Session, edition_id: int, limit: int, lease: dt.timedelta
) -> tuple[str, list[int]]:
    """Lease up to ``limit`` due rows of the edition and commit.

    Returns the lease owner token and the claimed row ids, in id order.
    """
    now = utcnow()
    owner = uuid.uuid4().hex
    due = (
        select(Delivery.id)
        .where(Delivery.edition_id == edition_id, due_condition(now))
        .order_by(Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(status=DeliveryStatus.LEASED, lease_owner=owner, lease_until=now + lease)
        .returning(Delivery.id),
        execution_options={"synchronize_session": False},
    )
    ids = sorted(result.scalars().all())
    if ids:
        session.execute(
            update(Edition)
            .where(Edition.id == edition_id)
            .values(last_claim_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return owner, ids


_deliveries = cast(Table, Delivery.__table__)
# Built once: this runs for every recipient, and building an UPDATE construct
# costs more than executing it.
_RECORD = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("row_id"))
    .values(
        status=bindparam("new_status", type_=_deliveries.c.status.type),
        lease_owner=None,
        lease_until=None,
        last_error=bindparam("error"),
        sent_at=bindparam("sent_at"),
        message_id=bindparam("message_id"),
        attempts=_deliveries.c.attempts + bindparam("tried", type_=Integer()),
        next_attempt_at=bindparam("retry_at"),
        unanswered=_deliveries.c.unanswered + bindparam("unanswered_now", type_=Integer()),
    )
)
_TRIED = (DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.BOUNCED)


def outcome(
    delivery_id: int,
    status: DeliveryStatus,
    *,
    message_id: str | None = None,
    error: str | None = None,
    retry_at: dt.datetime | None = None,
    unanswered: bool = False,
) -> dict[str, object]:
    """One row's outcome, as ``record_all`` writes it; ``unanswered``: this attempt's message
    went out whole and no answer came (it counts as an attempt whatever the status)."""
    return {
        "row_id": delivery_id,
        "new_status": status,
        "error": error,
        "sent_at": utcnow() if status == DeliveryStatus.SENT else None,
        "message_id": message_id,
        "tried": 1 if status in _TRIED or unanswered else 0,
        "retry_at": retry_at,
        "unanswered_now": 1 if unanswered else 0,
    }


def record_all(session: Session, outcomes: Sequence[dict[str, object]]) -> None:
    """Write outcomes in the session's transaction, in one round trip however many; the caller
    commits (a batch commits every few messages: see ``digest.send.batch.OutcomeLog``)."""
    if outcomes:
        session.connection().execute(_RECORD, list(outcomes))


def record(
    session: Session,
    delivery_id: int,
    status: DeliveryStatus,
    *,
    message_id: str | None = None,
    error: str | None = None,
    retry_at: dt.datetime | None = None,
) -> None:
    """Record one row's outcome and commit."""
    record_all(
        session,
        [outcome(delivery_id, status, message_id=message_id, error=error, retry_at=retry_at)],
    )
    session.commit()


def renew(
    connection: Connection, edition_id: int, owner: str, ids: Sequence[int], lease: dt.timedelta
) -> int:
    """Extend the lease of the rows ``owner`` still holds among ``ids`` and commit; returns
    how many it still holds.

    Runs beside the batch's own transaction: on PostgreSQL, rows that transaction has already
    recorded (and so locked) are skipped rather than waited for, so the two never deadlock, and
    they need no renewal anyway.
    """
    held = select(_deliveries.c.id).where(
        _deliveries.c.id.in_(list(ids)),
        _deliveries.c.edition_id == edition_id,
        _deliveries.c.lease_owner == owner,
        _deliveries.c.status == DeliveryStatus.LEASED,
    )
    if connection.dialect.name == "postgresql":
        held = held.with_for_update(skip_locked=True)
    result = connection.execute(
        update(_deliveries)
        .where(_deliveries.c.id.in_(held.scalar_subquery()))
        .values(lease_until=utcnow() + lease)
    )
    connection.commit()
    return int(result.rowcount or 0)


def release(session: Session, owner: str, ids: Sequence[int]) -> None:
    """Give back rows a batch claimed but did not get to (the transport failed)."""
    if not ids:
        return
    session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(ids),
            Delivery.lease_owner == owner,
            Delivery.status == DeliveryStatus.LEASED,
        )
        .values(status=DeliveryStatus.PENDING, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def bring_forward(session: Session, edition_id: int, now: dt.datetime) -> int:
    """Make the edition's deferred rows due ``now`` (not committed); returns how many.

    Their attempts stay as they are: the next try counts toward the maximum like any other.
    """
    result = session.execute(
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.DEFERRED)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def retry_delay(attempts: int, base_seconds: float) -> dt.timedelta:
    """Exponential backoff with ±20% jitter, capped at six hours."""
    seconds = min(base_seconds * 2 ** max(attempts - 1, 0), 6 * 3600)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def counts(session: Session, edition_id: int) -> dict[str, int]:
    """Rows per status for an edition (every status present, zeros included)."""
    found = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.edition_id == edition_id)
            .group_by(Delivery.status)
        ).all()
    )
    return {status.value: int(found.get(status, 0)) for status in DeliveryStatus}


def tally(session: Session, edition_id: int) -> tuple[dict[str, int], int]:
    """``counts`` and, in the same scan, the rows whose message went out at least once
    without an answer (those recipients may have a second copy)."""
    counts = dict.fromkeys((status.value for status in DeliveryStatus), 0)
    unanswered = 0
    for status, count, doubtful in session.execute(
        select(
            Delivery.status,
            func.count(),
            func.sum(case((Delivery.unanswered > 0, 1), else_=0)),
        )
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.status)
    ):
        counts[status.value] = int(count)
        unanswered += int(doubtful or 0)
    return counts, unanswered


def reason_count(session: Session, edition_id: int, status: DeliveryStatus, reason: str) -> int:
    """Rows of the edition in ``status`` for ``reason`` (e.g. skipped readers whose sections
    had nothing)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.edition_id == edition_id,
                Delivery.status == status,
                Delivery.last_error == reason,
            )
        )
        or 0
    )


def open_count(session: Session, edition_id: int) -> int:
    """Rows of the edition still to be sent (pending, leased or deferred)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.edition_id == edition_id, Delivery.status.in_(OPEN_STATUSES))
        )
        or 0
    )


def held_count(session: Session, edition_id: int, now: dt.datetime) -> int:
    """Pending rows of the edition waiting for their subscriber's own send time."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.edition_id == edition_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at > now,
            )
        )
        or 0
    )


def next_retry(session: Session, edition_id: int) -> dt.datetime | None:
    """When the edition's earliest deferred row is tried again (None: nothing deferred)."""
    return session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.DEFERRED
        )
    )


def due_since(
    created_at: ColumnElement[Any] | InstrumentedAttribute[Any] | dt.datetime,
) -> ColumnElement[Any]:
    """When a due row became claimable: its retry or its subscriber's send time, the end of a
    lapsed lease, or else (a row pending from the start) ``created_at``, its edition's build."""
    return case(
        (Delivery.status == DeliveryStatus.LEASED, Delivery.lease_until),
        else_=func.coalesce(Delivery.next_attempt_at, created_at),
    )


def live_lease(now: dt.datetime) -> ColumnElement[bool]:
    """Rows a worker holds right now."""
    return and_(Delivery.status == DeliveryStatus.LEASED, Delivery.lease_until >= now)


def unclaimed_since(session: Session, edition: Edition, now: dt.datetime) -> dt.datetime | None:
    """Since when the edition has had due rows that no batch took: the later of when its
    oldest due row became due and its last claim. None when nothing is due, or a worker
    holds some of its rows now (it is being sent)."""
    held = session.scalar(
        select(Delivery.id).where(Delivery.edition_id == edition.id, live_lease(now)).limit(1)
    )
    if held is not None:
        return None
    oldest = session.scalar(
        select(func.min(due_since(edition.created_at))).where(
            Delivery.edition_id == edition.id, due_condition(now)
        )
    )
    if oldest is None:
        return None
    return max(oldest, edition.last_claim_at) if edition.last_claim_at else oldest
