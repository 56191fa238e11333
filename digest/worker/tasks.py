"""Celery tasks: thin shims over plain functions, which the tests and the CLI call directly."""

from __future__ import annotations

import datetime as dt
import logging
import math

from celery import Task
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from digest import runtime
from digest.edition import ledger
from digest.edition.build import build_edition
from digest.edition.select import zone
from digest.errors import DigestError
from digest.ingest import ingest_all as ingest_all_sources
from digest.ingest import ingest_source as ingest_one_source
from digest.ingest.run import due_source_ids
from digest.send.batch import is_sending
from digest.send.batch import send_batch as send_one_batch
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    MailingList,
    utcnow,
)
from digest.transports import transport_for
from digest.worker.app import app

log = logging.getLogger(__name__)

#: Retries of a batch whose transport failed: after 10, 20, 40, 80, 160 seconds.
BATCH_RETRIES = 5


@app.task(name="digest.tasks.ingest_all")
def ingest_all() -> None:
    settings, db = runtime.settings(), runtime.database()
    if not settings.uses_broker:
        ingest_all_sources(db, settings)
        return
    with db.session() as session:
        # Sources backing off after errors are not queued until their next try.
        ids = due_source_ids(session, utcnow())
    for source_id in ids:
        ingest_source.delay(source_id)


@app.task(name="digest.tasks.ingest_source")
def ingest_source(source_id: int) -> None:
    # force=False: a source that failed since it was queued waits for its next try.
    ingest_one_source(runtime.database(), runtime.settings(), source_id, force=False)


@app.task(name="digest.tasks.send_batch", bind=True, max_retries=BATCH_RETRIES)
def send_batch(self: Task, edition_id: int) -> None:
    with transport_for(runtime.settings()) as transport:
        report = send_one_batch(runtime.database(), runtime.mailer(), edition_id, transport)
    if report.error and is_sending(runtime.database(), edition_id):
        # The connection failed: the batch's unsent rows are back in the ledger;
        # this task claims them (or others) again after a growing pause.
        raise self.retry(countdown=10 * 2**self.request.retries)


@app.task(name="digest.tasks.send_due_lists")
def send_due_lists() -> None:
    send_due(runtime.database(), utcnow())


@app.task(name="digest.tasks.sweep")
def sweep() -> None:
    sweep_editions(runtime.database(), utcnow())


def fan_out(db: Database, edition_id: int, rows: int | None = None) -> int:
    """Queue one batch task per ``batch_size`` rows (default: all open rows); returns how many.

    Called after the rows are committed. Queuing too many is harmless: a batch
    task that finds nothing to claim ends at once.
    """
    if rows is None:
        with db.session() as session:
            rows = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.edition_id == edition_id,
                    Delivery.status.in_(ledger.OPEN_STATUSES),
                )
            )
    batches = math.ceil((rows or 0) / runtime.settings().batch_size)
    for _ in range(batches):
        send_batch.delay(edition_id)
    return batches


def send_due(db: Database, now: dt.datetime) -> list[int]:
    """Build and queue today's edition of every list whose send time has passed in its zone.

    Idempotent: the edition of (list, date) is built once, and its batches are
    queued only by the call that built it (the sweep restarts anything stalled).
    """
    started = []
    settings = runtime.settings()
    with db.session() as session:
        lists = session.execute(
            select(MailingList.id, MailingList.timezone, MailingList.send_at)
        ).all()
    for list_id, tz_name, send_at in lists:
        local_now = now.replace(tzinfo=dt.UTC).astimezone(zone(tz_name))
        if local_now.strftime("%H:%M") < send_at:
            continue
        try:
            with db.session() as session:
                mailing_list = session.get_one(MailingList, list_id)
                edition, created = build_edition(session, settings, mailing_list, local_now.date())
                edition_id, ready = edition.id, edition.status == EditionStatus.READY
        except DigestError as exc:
            # A broken template (or the like) stops this list's edition, not the others';
            # the check runs again next minute, so the fix is picked up without a restart.
            log.error("list %s: edition not built: %s", list_id, exc, extra={"list_id": list_id})
            continue
        if created and ready:
            fan_out(db, edition_id)
            started.append(edition_id)
    return started


def sweep_editions(db: Database, now: dt.datetime) -> dict[int, int]:
    """Queue batches for sending editions with due rows nobody is working on; returns
    {edition id: batches queued}.

    Counted: rows whose lease ran out (their worker died), deferred rows and rows
    held for a subscriber's time zone whose time has come, and every due row of
    a stalled edition: one where no worker holds a lease and no batch has
    claimed anything for ``stall_seconds`` (its tasks were lost, a batch gave
    rows back, or it was resumed). Pending rows of a busy edition are left to
    the batches already queued for it.
    """
    quiet_since = now - dt.timedelta(seconds=runtime.settings().stall_seconds)
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
    return {edition_id: fan_out(db, edition_id, count) for edition_id, count in counts}
