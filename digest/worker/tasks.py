"""Celery tasks: one-line shims over the core, which the tests and the CLI call directly."""

from __future__ import annotations

import logging
import random

from celery import Task

from digest.errors import TransportError
from digest.service import queue
from digest.service.notices import Notice
from digest.worker.app import app, core

log = logging.getLogger(__name__)

#: Retries of a batch whose transport failed (``batch_retry_delay``): about 75 s of them.
BATCH_RETRIES = 8
#: The longest wait between two tries of a batch.
BATCH_RETRY_CAP = 15.0
#: Retries of a notice the server did not take: after 30, 60, 120 seconds.
NOTICE_RETRIES = 3


@app.task(name=queue.INGEST_ALL)
def ingest_all() -> None:
    core().ingest_due()


@app.task(name=queue.INGEST_SOURCE)
def ingest_source(source_id: int) -> None:
    core().ingest_source(source_id)


def batch_retry_delay(retries: int) -> float:
    """Seconds before try ``retries + 1`` of a batch whose transport failed: 1, 2, 4, 8, then
    15, each somewhere between half and one and a half times that.

    Short, because the batch gave its rows back at once and a relay that drops connections
    is usually back within seconds: a long back-off would leave them unsent for minutes after
    it recovered. Capped, so a relay down for a while is tried every 15 s or so and an edition
    goes on within that of its return; jittered, so the workers whose batches failed together
    do not all try again in the same instant. Past BATCH_RETRIES the task ends and the sweep,
    every 15 s, queues batches again for any edition left with due rows and no claim.
    """
    return min(2.0**retries, BATCH_RETRY_CAP) * random.uniform(0.5, 1.5)


@app.task(name=queue.SEND_BATCH, bind=True, max_retries=BATCH_RETRIES)
def send_batch(self: Task, edition_id: int) -> None:
    report = core().send_batch(edition_id)
    if report.error and core().is_sending(edition_id):
        if self.request.retries >= BATCH_RETRIES:
            log.warning(
                "edition %s: batch gave up after %s retries; the sweep takes it on",
                edition_id,
                BATCH_RETRIES,
                extra={"edition_id": edition_id},
            )
            return
        raise self.retry(countdown=batch_retry_delay(self.request.retries))


@app.task(name=queue.SEND_NOTICE, bind=True, max_retries=NOTICE_RETRIES)
def send_notice(self: Task, kind: str, subscriber_id: int, list_id: int, signup_id: int) -> None:
    try:
        notice = Notice(kind, subscriber_id, list_id, signup_id)
        core().send_notice(notice, final=self.request.retries >= NOTICE_RETRIES)
    except TransportError as exc:
        raise self.retry(countdown=30 * 2**self.request.retries) from exc


@app.task(name=queue.SEND_DUE_LISTS)
def send_due_lists() -> None:
    core().send_due()


@app.task(name=queue.SWEEP)
def sweep() -> None:
    core().sweep()
