"""The loop of ``digest run``: each job of the table (``digest.service.jobs``) on its interval,
in one process, each kind in a thread of its own.

Plain logic over callables, so it knows nothing of Digest's work (``digest.service.embedded``
supplies the actions) and a test can drive it with a fast clock:

- at start every job runs once, one after the other in the table's order (articles are in
  before the due editions are built); then each runs on its own interval;
- a job still running when it is next due is skipped, never stacked (a slow ingest does not
  pile up behind itself), and it never holds up a job of another kind;
- a job that raises is logged, and runs again at its next turn: nothing else stops;
- ``stop()`` (a signal) ends the loop; running jobs are given ``STOP_GRACE`` seconds to
  finish (a send stops before its next message and gives its batch back), and the
  lines say what was left.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from digest.service.jobs import Job
from digest.store.models import utcnow

log = logging.getLogger(__name__)

#: Real seconds a stop waits for the jobs still running before leaving them to die with the
#: process (a send gives its rows back at once; an ingest may be waiting on a slow feed).
STOP_GRACE = 30.0
#: Clock seconds between calls of the loop's ``watch`` (the lock check).
WATCH_EVERY = 60.0

#: A job's work at the clock's ``now``: returns the lines worth printing (none: nothing done).
Action = Callable[[dt.datetime], list[str]]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Now, as naive UTC (as the database stores times)."""

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time, or until ``stop`` is set."""


class SystemClock:
    def now(self) -> dt.datetime:
        return utcnow()

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(max(seconds, 0.0))


@dataclass
class ScaledClock:
    """Starts at ``start`` (naive UTC) and runs ``speed`` times as fast as real time: lets a
    test see a list sent at its send time without waiting for it."""

    start: dt.datetime
    speed: float = 1.0
    _origin: float = field(default_factory=time.monotonic)

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(max(seconds, 0.0) / self.speed)


@dataclass(frozen=True)
class Scheduled:
    job: Job
    action: Action


class Scheduler:
    """Runs ``scheduled`` until ``stop()``; ``say`` gets each line worth printing.

    ``quiet_after``: clock seconds without a line after which ``idle_line(now)`` is said (what
    ran since, what comes next). ``watch`` is called every ``WATCH_EVERY`` seconds; if it
    raises, the loop stops its jobs and raises it (the lock was lost).
    """

    def __init__(
        self,
        scheduled: Sequence[Scheduled],
        clock: Clock,
        say: Callable[[str], None],
        *,
        quiet_after: float,
        idle_line: Callable[[dt.datetime], str] | None = None,
        watch: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.scheduled = list(scheduled)
        self.clock = clock
        self._say = say
        self.quiet_after = quiet_after
        self._idle_line = idle_line
        self._watch = watch
        self._stop = stop or threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._say_lock = threading.Lock()
        self._last_said = clock.now()
        #: Runs started and runs that raised, per job, since the last line (for the idle line).
        self.runs: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        #: Runs skipped because the previous one was still going, per job (for tests and logs).
        self.skipped: Counter[str] = Counter()

    def stop(self) -> None:
        """End the loop (safe from a signal handler: it only sets a flag)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def say(self, line: str) -> None:
        now = self.clock.now()
        stamp = now.replace(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        with self._say_lock:
            self._say(f"{stamp} {line}")
            self._last_said = now

    def run(self) -> None:
        """Every job once in order, then each on its interval, until ``stop()``."""
        try:
            for item in self.scheduled:
                if self.stopping:
                    break
                self._start(item, self.clock.now())
                thread = self._threads[item.job.name]
                while thread.is_alive() and not self.stopping:
                    thread.join(0.2)
            self._loop()
        finally:
            self._stop.set()
            self._finish()

    def _loop(self) -> None:
        now = self.clock.now()
        next_at = {
            item.job.name: now + dt.timedelta(seconds=item.job.every) for item in self.scheduled
        }
        next_watch = now + dt.timedelta(seconds=WATCH_EVERY)
        while not self.stopping:
            now = self.clock.now()
            for item in self.scheduled:
                name = item.job.name
                if now < next_at[name]:
                    continue
                next_at[name] = now + dt.timedelta(seconds=item.job.every)
                if self._busy(name):
                    self.skipped[name] += 1
                    log.info("%s: the previous run is still going; this one is skipped", name)
                    continue
                self._start(item, now)
            if self._watch is not None and now >= next_watch:
                next_watch = now + dt.timedelta(seconds=WATCH_EVERY)
                self._watch()
            if self._idle_line is not None and (now - self._last_said).total_seconds() >= (
                self.quiet_after
            ):
                self.say(self._idle(now))
            wake = min([*next_at.values(), next_watch])
            self.clock.sleep(self._stop, (wake - now).total_seconds())

    def _idle(self, now: dt.datetime) -> str:
        ran = ", ".join(f"{item.job.name} x{self.runs[item.job.name]}" for item in self.scheduled)
        failed = sum(self.failures.values())
        self.runs.clear()
        self.failures.clear()
        news = f"idle: ran {ran}" + (f" ({failed} failed: see the log)" if failed else "")
        if self._idle_line is None:
            return news
        try:
            return f"{news}; {self._idle_line(now)}"
        except Exception:
            # The database may be away for a while: the jobs say so in the log; the loop and
            # its heartbeat go on.
            log.exception("the idle line's details could not be read")
            return news

    def _busy(self, name: str) -> bool:
        thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def _start(self, item: Scheduled, now: dt.datetime) -> None:
        thread = threading.Thread(
            target=self._run_job, args=(item, now), name=f"digest-{item.job.name}", daemon=True
        )
        self._threads[item.job.name] = thread
        self.runs[item.job.name] += 1
        thread.start()

    def _run_job(self, item: Scheduled, now: dt.datetime) -> None:
        try:
            lines = item.action(now)
        except Exception:
            # One bad run (a database hiccup, a bug) must not end the schedule: it is in the
            # log with its traceback, and the job runs again at its next turn.
            self.failures[item.job.name] += 1
            log.exception("%s failed; it runs again in %.0f s", item.job.name, item.job.every)
            return
        for line in lines:
            self.say(line)

    def _finish(self) -> None:
        running = [name for name, thread in self._threads.items() if thread.is_alive()]
        if running:
            self.say(f"stopping: waiting for {', '.join(running)} (a send gives its rows back)")
        deadline = time.monotonic() + STOP_GRACE
        for name in running:
            self._threads[name].join(max(deadline - time.monotonic(), 0.0))
        left = [name for name in running if self._threads[name].is_alive()]
        if left:
            # Daemon threads: they end with the process. A send's leased rows come back to
            # the ledger when their lease runs out, so nothing is lost or sent twice.
            self.say(f"stopped; {', '.join(left)} did not finish in {STOP_GRACE:.0f} s")
        else:
            self.say("stopped")
