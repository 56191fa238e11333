"""The Celery app as the settings configure it: the broker, the queue, the beat schedule.

Made here, below the worker, so the service can queue tasks by name without
importing the worker's task module (and the worker adds its tasks on top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.config import Settings

if TYPE_CHECKING:
    from celery import Celery

#: Seconds between the schedule's checks. Each is idempotent: firing twice creates nothing.
INGEST_EVERY = 600.0
SEND_CHECK_EVERY = 60.0
#: The sweep also brings back a dead worker's rows once their lease ran out: recovery after a
#: crash takes at most a lease plus this.
SWEEP_EVERY = 15.0

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
        beat_schedule={
            "ingest": {"task": INGEST_ALL, "schedule": INGEST_EVERY},
            "send-due-lists": {"task": SEND_DUE_LISTS, "schedule": SEND_CHECK_EVERY},
            "sweep": {"task": SWEEP, "schedule": SWEEP_EVERY},
        },
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
