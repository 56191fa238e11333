"""The loop of `digest run` (digest.service.scheduler) on jobs of its own, and the one table of
jobs that beat and `digest run` both read."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import pytest

from digest.service.jobs import JOBS, Job, beat_schedule
from digest.service.scheduler import Scheduled, Scheduler, SystemClock


def _job(name: str, every: float) -> Job:
    return Job(name, f"tests.{name}", every, name)


class Loop:
    """A scheduler run in a thread, its lines collected."""

    def __init__(
        self,
        scheduled: list[Scheduled],
        *,
        quiet_after: float = 3600.0,
        idle_line: Callable[[dt.datetime], str] | None = None,
        watch: Callable[[], None] | None = None,
    ) -> None:
        self.lines: list[str] = []
        self.scheduler = Scheduler(
            scheduled,
            SystemClock(),
            self.lines.append,
            quiet_after=quiet_after,
            idle_line=idle_line,
            watch=watch,
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.scheduler.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.scheduler.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_job_that_raises_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """A job raising on every run is logged each time and runs again; the other jobs go on."""
    runs = {"broken": 0, "fine": 0}

    def broken(_now: dt.datetime) -> list[str]:
        runs["broken"] += 1
        raise RuntimeError("database hiccup")

    def fine(_now: dt.datetime) -> list[str]:
        runs["fine"] += 1
        return []

    caplog.set_level(logging.ERROR, logger="digest.service.scheduler")
    scheduled = [Scheduled(_job("broken", 0.02), broken), Scheduled(_job("fine", 0.02), fine)]
    with Loop(scheduled) as loop:
        _until(lambda: runs["broken"] >= 3 and runs["fine"] >= 3)
    assert loop.error is None
    assert loop.scheduler.failures["broken"] >= 3
    failed = [r for r in caplog.records if "broken failed" in r.getMessage()]
    assert len(failed) >= 3 and all(r.exc_info for r in failed)


def test_a_slow_job_is_skipped_not_stacked() -> None:
    """A job still running when it is due again is skipped: never two runs of one kind at once,
    and a fast job of another kind keeps its own pace meanwhile."""
    running = 0
    most = 0
    fast_runs = 0
    guard = threading.Lock()
    release = threading.Event()

    def slow(_now: dt.datetime) -> list[str]:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        release.wait(10)
        with guard:
            running -= 1
        return []

    def fast(_now: dt.datetime) -> list[str]:
        nonlocal fast_runs
        fast_runs += 1
        return []

    # The first round waits for each job in turn: the slow one is released once to get past it.
    scheduled = [Scheduled(_job("fast", 0.01), fast), Scheduled(_job("slow", 0.01), slow)]
    with Loop(scheduled) as loop:
        _until(lambda: running == 1)
        release.set()
        _until(lambda: loop.scheduler.runs["slow"] >= 2)
        release.clear()
        _until(lambda: running == 1)
        before = fast_runs
        _until(lambda: loop.scheduler.skipped["slow"] >= 5 and fast_runs >= before + 5)
        release.set()
    assert most == 1


def test_the_first_round_runs_in_the_tables_order() -> None:
    """At start each job runs once, the next only after the one before finished: articles are
    in before the due editions are built."""
    events: list[str] = []

    def step(name: str) -> Callable[[dt.datetime], list[str]]:
        def action(_now: dt.datetime) -> list[str]:
            events.append(f"{name} start")
            time.sleep(0.05)
            events.append(f"{name} end")
            return []

        return action

    scheduled = [Scheduled(_job(n, 3600.0), step(n)) for n in ("ingest", "send", "sweep")]
    with Loop(scheduled):
        _until(lambda: len(events) == 6)
    assert events == [
        "ingest start",
        "ingest end",
        "send start",
        "send end",
        "sweep start",
        "sweep end",
    ]


def test_lines_are_said_and_stop_waits_for_the_running_job() -> None:
    """A job's lines are printed with a time stamp; stop() ends the loop only once the job in
    progress has returned, and says it stopped."""
    started = threading.Event()
    finished = threading.Event()

    def sending(_now: dt.datetime) -> list[str]:
        started.set()
        time.sleep(0.3)
        finished.set()
        return ["daily: edition 1: 3 sent"]

    with Loop([Scheduled(_job("send", 3600.0), sending)]) as loop:
        started.wait(5)
        loop.scheduler.stop()
        loop.thread.join(10)
        assert finished.is_set()
    assert [line.split(" ", 2)[2] for line in loop.lines] == [
        "stopping: waiting for send (a send gives its rows back)",
        "daily: edition 1: 3 sent",
        "stopped",
    ]
    assert dt.datetime.strptime(loop.lines[-1][:19], "%Y-%m-%d %H:%M:%S")


def test_an_idle_line_comes_after_quiet_after_seconds_without_news() -> None:
    """With nothing to say for quiet_after seconds, a line says what ran and what is next."""
    with Loop(
        [Scheduled(_job("sweep", 0.01), lambda _now: [])],
        quiet_after=0.2,
        idle_line=lambda _now: "next sends: daily tomorrow",
    ) as loop:
        _until(lambda: any("idle:" in line for line in loop.lines))
    idle = next(line for line in loop.lines if "idle:" in line)
    assert "ran sweep x" in idle and idle.endswith("; next sends: daily tomorrow")


def test_a_failing_watch_stops_the_loop_and_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch (the lock check) raising ends the loop with that error."""
    monkeypatch.setattr("digest.service.scheduler.WATCH_EVERY", 0.05)

    def watch() -> None:
        raise RuntimeError("lost the lock")

    loop = Loop([Scheduled(_job("sweep", 0.01), lambda _now: [])], watch=watch)
    with loop:
        _until(lambda: not loop.thread.is_alive())
    assert isinstance(loop.error, RuntimeError)
    assert loop.lines[-1].endswith("stopped")


def test_beat_and_run_read_one_table() -> None:
    """The workers' beat schedule is the job table, entry for entry, and each job's task is one
    the workers run."""
    from digest.worker import tasks  # noqa: F401 - registers the tasks
    from digest.worker.app import app

    assert app.conf.beat_schedule == beat_schedule()
    assert {name: entry["schedule"] for name, entry in beat_schedule().items()} == {
        job.name: job.every for job in JOBS
    }
    assert all(job.task in app.tasks for job in JOBS)


def test_every_job_has_an_embedded_action() -> None:
    """`digest run` has an action for each job of the table, in the table's order (a job added
    for beat alone would be refused at start)."""
    from digest.config import Settings
    from digest.service.embedded import EmbeddedJobs, embedded_core

    core, reporting = embedded_core(Settings(database_url="sqlite://"), threading.Event())
    scheduled = EmbeddedJobs(core, reporting).scheduled()
    assert [item.job for item in scheduled] == list(JOBS)
