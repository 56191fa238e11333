"""Celery tasks: thin shims over plain functions, which the tests and the CLI call directly."""

from __future__ import annotations

import datetime as dt
import logging
import math

from sqlalchemy import func, select

from digest import ledger, runtime
from digest.building import build_edition
from digest.celery_app import app
from digest.db import Database
from digest.edition import zone
from digest.ingest import ingest_all as ingest_all_sources
from digest.ingest import ingest_source as ingest_one_source
from digest.models import Delivery, Edition, EditionStatus, MailingList, Source, utcnow
from digest.sending import send_batch as send_one_batch
from digest.transports import transport_for

log = logging.getLogger(__name__)


@app.task(name="digest.tasks.ingest_all")
def ingest_all() -> None:
    settings, db = runtime.settings(), runtime.database()
    if not settings.uses_broker:
        ingest_all_sources(db, settings)
        return
    with db.session() as session:
        ids = list(session.scalars(select(Source.id)))
    for source_id in ids:
        ingest_source.delay(source_id)


@app.task(name="digest.tasks.ingest_source")
def ingest_source(source_id: int) -> None:
    ingest_one_source(runtime.database(), runtime.settings(), source_id)


@app.task(name="digest.tasks.send_batch")
def send_batch(edition_id: int) -> None:
    with transport_for(runtime.settings()) as transport:
        send_one_batch(runtime.database(), runtime.mailer(), edition_id, transport)


@app.task(name="digest.tasks.send_due_lists")
def send_due_lists() -> None:
    send_due(runtime.database(), utcnow())


@app.task(name="digest.tasks.sweep")
def sweep() -> None:
    sweep_editions(runtime.database())


def fan_out(db: Database, edition_id: int) -> int:
    """Queue one batch task per ``batch_size`` due rows; returns how many were queued.

    Called after the rows are committed. Queuing too many is harmless: a batch
    task that finds nothing to claim ends at once.
    """
    batch_size = runtime.settings().batch_size
    with db.session() as session:
        open_rows = (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.edition_id == edition_id, Delivery.status.in_(ledger.OPEN_STATUSES))
            )
            or 0
        )
    batches = math.ceil(open_rows / batch_size)
    for _ in range(batches):
        send_batch.delay(edition_id)
    return batches


def send_due(db: Database, now: dt.datetime) -> list[int]:
    """Build and queue today's edition of every list whose send time has passed in its zone.

    Idempotent: the edition of (list, date) is built once, and its batches
    are queued only by the call that built it (the sweep picks up the rest).
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
        with db.session() as session:
            mailing_list = session.get_one(MailingList, list_id)
            edition, created = build_edition(session, settings, mailing_list, local_now.date())
            edition_id, ready = edition.id, edition.status == EditionStatus.READY
        if created and ready:
            fan_out(db, edition_id)
            started.append(edition_id)
    return started


def sweep_editions(db: Database) -> None:
    """Queue batches for ready editions that still have due rows: expired leases of dead
    workers and deferred recipients whose retry time has come."""
    now = utcnow()
    with db.session() as session:
        due = session.execute(
            select(Delivery.edition_id, func.count())
            .join(Edition, Edition.id == Delivery.edition_id)
            .where(
                Edition.status == EditionStatus.READY,
                (Delivery.status == "pending")
                | ((Delivery.status == "deferred") & (Delivery.next_attempt_at <= now))
                | ((Delivery.status == "leased") & (Delivery.lease_until < now)),
            )
            .group_by(Delivery.edition_id)
        ).all()
    for edition_id, _count in due:
        fan_out(db, edition_id)
