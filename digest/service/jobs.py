"""The periodic jobs and how often each runs: one table, read by Celery beat (the workers'
app) and by ``digest run`` (the embedded default's own scheduler), so the two cannot drift
apart. Every job is idempotent: firing one twice creates nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.service import queue

#: Seconds between runs of each job.
INGEST_EVERY = 600.0
SEND_CHECK_EVERY = 60.0
#: The sweep also brings back a dead worker's rows once their lease ran out: recovery after a
#: crash takes at most a lease plus this.
SWEEP_EVERY = 15.0


@dataclass(frozen=True)
class Job:
    #: The job's name in beat's schedule and in ``digest run``'s lines.
    name: str
    #: The Celery task beat queues for it.
    task: str
    every: float
    #: What it does, as ``digest run``'s first line says it.
    does: str


INGEST = Job("ingest", queue.INGEST_ALL, INGEST_EVERY, "ingest")
SEND_DUE = Job("send-due-lists", queue.SEND_DUE_LISTS, SEND_CHECK_EVERY, "due sends")
SWEEP = Job("sweep", queue.SWEEP, SWEEP_EVERY, "retries and the sweep")

#: In the order ``digest run`` runs them first: articles in before editions are built.
JOBS: tuple[Job, ...] = (INGEST, SEND_DUE, SWEEP)


def beat_schedule() -> dict[str, dict[str, object]]:
    """Celery's ``beat_schedule`` for the table."""
    return {job.name: {"task": job.task, "schedule": job.every} for job in JOBS}
