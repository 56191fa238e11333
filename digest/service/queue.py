"""The Celery app as the settings configure it: the broker and the queue (the workers' app
adds beat's schedule from ``digest.service.jobs``).

Made here, below the worker, so the service can queue tasks by name without
importing the worker's task module (and the worker adds its tasks on top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.config import Settings

if TYPE_CHECKING:
    from celery import Celery

#: Task names: the contract between whoever queues and the workers (kept stable across
#: releases, so tasks queued by an older version still find their function).
SEND_BATCH = "digest.tasks.send_batch"
INGEST_SOURCE = "digest.tasks.ingest_source"
INGEST_ALL = "digest.tasks.ingest_all"
SEND_DUE_LISTS = "digest.tasks.send_due_lists"
SWEEP = "digest.tasks.sweep"
SEND_NOTICE = "digest.tasks.send_notice"


def make_celery(settings: Settings, include: list[str] | None = None) -> Celery:
    from celery import Celery

    app = Celery("digest", include=include or [])
    if settings.broker_url:
        app.conf.broker_url = settings.broker_url
    else:
        # Nothing is queued without a broker (the service sends in-process); a memory
        # broker keeps a stray .delay() from trying to reach a server that is not there.
        app.conf.broker_url = "memory://"
    app.conf.update(
        task_default_queue=settings.queue,
        task_ignore_result=True,
        # Tasks are idempotent (the ledger decides), so a task lost with its
        # worker may safely run again: acknowledge only once it has finished.
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        timezone="UTC",
    )
    return app


def transport_options(settings: Settings) -> dict[str, object]:
    """Kombu's options for the broker: the visibility timeout, and for Redis Sentinel the
    master's name (the URL lists the sentinels, which tell kombu where the master is now)."""
    # Longer than any batch takes; never schedule ETA tasks beyond it.
    options: dict[str, object] = {"visibility_timeout": 3600}
    if (settings.broker_url or "").startswith("sentinel://"):
        options["master_name"] = settings.broker_master_name
    return options
