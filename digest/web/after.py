"""Work a page does after it has answered: one thread per web process takes jobs in order.

The sign-up form uses it so that its answer takes the same time whoever the address belongs
to: everything that depends on the address (rows written, which email is sent, the SMTP
round trip) happens here, after the response.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)

Job = Callable[[], None]

#: Jobs waiting beyond this run in the request instead: memory stays bounded under a flood,
#: and the per-IP limit keeps floods rare.
MAX_WAITING = 1000
#: At exit, how long the process waits for jobs still queued (sign-ups not yet mailed).
EXIT_WAIT_SECONDS = 10.0


class AfterResponse:
    """A queue of jobs run one at a time, each inside the app's context."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._jobs: queue.Queue[Job] = queue.Queue(MAX_WAITING)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="digest-after", daemon=True)
                self._thread.start()
                atexit.register(self.wait, EXIT_WAIT_SECONDS)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._call(job)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every submitted job has run; False if ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                self._call(job)
            finally:
                self._jobs.task_done()

    def _call(self, job: Job) -> None:
        try:
            with self._app.app_context():
                job()
        except Exception:  # one failed job must not stop the ones behind it
            log.exception("background job failed")


def after_response(app: Flask) -> AfterResponse:
    """The app's queue, made on first use."""
    found = app.extensions.get("digest_after")
    if not isinstance(found, AfterResponse):
        with _creating:
            found = app.extensions.get("digest_after")
            if not isinstance(found, AfterResponse):
                found = app.extensions["digest_after"] = AfterResponse(app)
    return found


_creating = threading.Lock()
