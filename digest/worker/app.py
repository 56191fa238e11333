"""The workers' Celery app: the service's app (broker and queue from the same settings) with
the task module added, and beat's schedule from the table ``digest run`` reads too.

Start workers with ``digest worker`` (or ``celery -A digest.worker.app worker``) and the
schedule with ``digest beat``. ``digest --config FILE worker`` passes FILE on as
``DIGEST_CONFIG``, so the workers' settings are the file's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from celery.signals import setup_logging, worker_ready, worker_shutdown

from digest.config import Settings, load_settings
from digest.logs import configure_logging
from digest.service.core import Digest
from digest.service.jobs import beat_schedule
from digest.service.queue import make_celery
from digest.service.workers import Beacon, start_beacon


@cache
def settings() -> Settings:
    return load_settings()


@cache
def core() -> Digest:
    """The process's one core: its mailer's cache of rendered editions is kept between tasks."""
    return Digest(settings(), celery_app=app)


@setup_logging.connect
def _digest_logging(**_kwargs: Any) -> None:
    # Connected, so Celery leaves logging to us: workers then honour DIGEST_LOG_FORMAT.
    configure_logging(load_settings(ensure_secret=False))


_beacons: list[Beacon] = []


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_kwargs: Any) -> None:
    # Once the consumer is ready (connected, taking the queue), from the main process: on
    # the prefork pool that is the process that takes tasks off the queue, and it lives as
    # long as the worker does.
    name = str(getattr(sender, "hostname", None) or "worker")
    beacon = start_beacon(settings(), name)
    if beacon is not None:
        _beacons.append(beacon)


@worker_shutdown.connect
def _stop_heartbeat(**_kwargs: Any) -> None:
    while _beacons:
        _beacons.pop().stop()


def reset() -> None:
    """Forget the cached settings and core (tests that change the environment call this)."""
    settings.cache_clear()
    core.cache_clear()


app = make_celery(load_settings(ensure_secret=False), include=["digest.worker.tasks"])
# One timetable for beat and for `digest run`, so they cannot drift apart.
app.conf.beat_schedule = beat_schedule()
