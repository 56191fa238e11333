"""Celery tasks: one-line shims over the core, which the tests and the CLI call directly."""

from __future__ import annotations

from celery import Task

from digest.errors import TransportError
from digest.service import queue
from digest.service.notices import Notice
from digest.worker.app import app, core

#: Retries of a batch whose transport failed: after 10, 20, 40, 80, 160 seconds.
BATCH_RETRIES = 5
#: Retries of a notice the server did not take: after 30, 60, 120 seconds.
NOTICE_RETRIES = 3


@app.task(name=queue.INGEST_ALL)
def ingest_all() -> None:
    core().ingest_due()


@app.task(name=queue.INGEST_SOURCE)
def ingest_source(source_id: int) -> None:
    core().ingest_source(source_id)


@app.task(name=queue.SEND_BATCH, bind=True, max_retries=BATCH_RETRIES)
def send_batch(self: Task, edition_id: int) -> None:
    report = core().send_batch(edition_id)
    if report.error and core().is_sending(edition_id):
        # The connection failed: the batch's unsent rows are back in the ledger;
        # this task claims them (or others) again after a growing pause.
        raise self.retry(countdown=10 * 2**self.request.retries)


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
