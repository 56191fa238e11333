"""When to send: which lists are due now, and which sending editions nobody is working on.

Plain queries; the service acts on their answers (builds, dispatches), so the Celery
beat tasks stay one-line shims and the same logic is callable from tests and the CLI.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from digest.edition import ledger
from digest.edition.review import review_opens
from digest.edition.select import zone
from digest.store.db import Database
from digest.store.models import Delivery, DeliveryStatus, Edition, EditionStatus, MailingList


def due_lists(db: Database, now: dt.datetime) -> list[tuple[int, dt.date]]:
    """(list id, local date) of every list whose send time has passed today in its zone.

    A list created after today's send time starts tomorrow: sent at once, its first edition
    would reach whoever was subscribed in that minute, and those imported a minute later
    would never get the day.
    """
    with db.session() as session:
        lists = session.execute(
            select(
                MailingList.id, MailingList.timezone, MailingList.send_at, MailingList.created_at
            ).where(MailingList.enabled)
        ).all()
    due = []
    for list_id, tz_name, send_at, created_at in lists:
        tz = zone(tz_name)
        local_now = now.replace(tzinfo=dt.UTC).astimezone(tz)
        if local_now.strftime("%H:%M") < send_at:
            continue
        if created_at is not None:
            created = created_at.replace(tzinfo=dt.UTC).astimezone(tz)
            if created.date() == local_now.date() and created.strftime("%H:%M") >= send_at:
                continue
        due.append((list_id, local_now.date()))
    return due


def review_lists(db: Database, now: dt.datetime) -> list[tuple[int, dt.date]]:
    """(list id, local date) of every list with review whose review window is open today in
    its zone but whose send time has not come: its edition is built now and held for the
    editors (``review_hours`` before the send time; ``due_lists`` takes over at the send
    time)."""
    with db.session() as session:
        lists = session.execute(
            select(
                MailingList.id, MailingList.timezone, MailingList.send_at, MailingList.review_hours
            ).where(MailingList.enabled, MailingList.review)
        ).all()
    opened = []
    for list_id, tz_name, send_at, hours in lists:
        local_now = now.replace(tzinfo=dt.UTC).astimezone(zone(tz_name))
        if local_now.strftime("%H:%M") < send_at and review_opens(send_at, hours, local_now):
            opened.append((list_id, local_now.date()))
    return opened


def stalled_rows(db: Database, stall_seconds: float, now: dt.datetime) -> dict[int, int]:
    """{edition id: due rows} of sending editions with due rows nobody is working on.

    Counted: rows whose lease ran out (their worker died), deferred rows and rows
    held for a subscriber's time zone whose time has come, and every due row of
    a stalled edition: one where no worker holds a lease and no batch has
    claimed anything for ``stall_seconds`` (its tasks were lost, a batch gave
    rows back, or it was resumed). Pending rows of a busy edition are left to
    the batches already queued for it.
    """
    quiet_since = now - dt.timedelta(seconds=stall_seconds)
    held = aliased(Delivery)
    live_lease = (
        select(held.id)
        .where(
            held.edition_id == Edition.id,
            held.status == DeliveryStatus.LEASED,
            held.lease_until >= now,
        )
        .exists()
    )
    stalled = and_(
        ~live_lease,
        or_(Edition.last_claim_at.is_(None), Edition.last_claim_at < quiet_since),
    )
    orphaned = or_(
        Delivery.status == DeliveryStatus.LEASED,
        Delivery.status == DeliveryStatus.DEFERRED,
        Delivery.next_attempt_at.is_not(None),
    )
    with db.session() as session:
        counts = session.execute(
            select(Delivery.edition_id, func.count())
            .join(Edition, Edition.id == Delivery.edition_id)
            .where(Edition.status == EditionStatus.READY, ledger.due_condition(now))
            .where(or_(stalled, orphaned))
            .group_by(Delivery.edition_id)
        ).all()
    return {edition_id: int(count) for edition_id, count in counts}
