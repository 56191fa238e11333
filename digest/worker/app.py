"""The Celery app. With no broker configured, tasks run in the calling process.

Start workers with ``digest worker`` or ``celery -A digest.celery_app worker``,
and the schedule with ``digest beat`` or ``celery -A digest.celery_app beat``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from digest.config import Settings, load_settings
from digest.logs import configure_logging

#: Seconds between the schedule's checks. Each is idempotent: firing twice creates nothing.
INGEST_EVERY = 600.0
SEND_CHECK_EVERY = 60.0
SWEEP_EVERY = 60.0


def make_celery(settings: Settings) -> Celery:
    app = Celery("digest", include=["digest.worker.tasks"])
    if settings.broker_url:
        app.conf.broker_url = settings.broker_url
        app.conf.task_always_eager = False
    else:
        # The embedded default: .delay() runs the task at once, here.
        app.conf.broker_url = "memory://"
        app.conf.task_always_eager = True
        app.conf.task_eager_propagates = True
    app.conf.update(
        task_default_queue=settings.queue,
        task_ignore_result=True,
        # Tasks are idempotent (the ledger decides), so a task lost with its
        # worker may safely run again: acknowledge only once it has finished.
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        # Longer than any batch takes; never schedule ETA tasks beyond it.
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        beat_schedule={
            "ingest": {"task": "digest.tasks.ingest_all", "schedule": INGEST_EVERY},
            "send-due-lists": {"task": "digest.tasks.send_due_lists", "schedule": SEND_CHECK_EVERY},
            "sweep": {"task": "digest.tasks.sweep", "schedule": SWEEP_EVERY},
        },
    )
    return app


@setup_logging.connect
def _digest_logging(**_kwargs: Any) -> None:
    # Connected, so Celery leaves logging to us: workers then honour DIGEST_LOG_FORMAT.
    configure_logging(load_settings(ensure_secret=False))


app = make_celery(load_settings(ensure_secret=False))
