"""``digest run``: the embedded default's scheduler in one long-running process (the web app
too, with ``--web``), and ``send --due``'s single pass for cron. The loop and the jobs live in
``digest.service``; this module parses, refuses what it must, and wires signals and output."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from digest.cli.context import App
from digest.cli.output import plural
from digest.errors import DigestError, InputError

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.service.core import Digest
    from digest.service.scheduler import Clock


@click.command()
@click.option("--web", is_flag=True, help="Also serve the web app (what `digest web` serves).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="With --web: address to listen on."
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="With --web: port to listen on.",
)
@click.option(
    "--heartbeat",
    "heartbeat_minutes",
    default=60,
    show_default=True,
    type=click.IntRange(1, 24 * 60),
    help="Minutes without news after which a line says it is alive and what comes next.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Run even though a broker is configured (then start no `digest beat`).",
)
@click.option(
    "--test-clock",
    hidden=True,
    metavar="START[xSPEED]",
    help="For tests only: a clock starting at START (ISO 8601, UTC if no offset) that runs "
    "SPEED times as fast as real time.",
)
@click.pass_context
def run(
    ctx: click.Context,
    web: bool,
    host: str,
    port: int,
    heartbeat_minutes: int,
    force: bool,
    test_clock: str | None,
) -> None:
    """Run the schedule here: ingest every 10 minutes, each list at its send time, retries of
    deferred recipients and the sweep, as `digest beat` would, but in this one process and
    without a broker (the embedded default's scheduler).

    Prints a line for each run that did something, and one every --heartbeat minutes when
    nothing did. Ctrl-C or SIGTERM stops it: a send in progress stops before its next message
    and gives its unsent rows back. Only one `digest run` may run on a database.
    """
    from digest.config import require_strong_secrets
    from digest.service.embedded import EmbeddedJobs, embedded_core
    from digest.service.runlock import keep_held, run_lock
    from digest.service.scheduler import Scheduler, SystemClock

    app: App = ctx.obj
    settings = app.settings
    if settings.uses_broker and not force:
        raise DigestError(
            "a broker is configured (DIGEST_BROKER_URL), so `digest beat` is the scheduler and "
            "`digest worker` sends; `digest run --force` schedules from here instead"
        )
    for name in ("host", "port"):
        if not web and ctx.get_parameter_source(name) != ParameterSource.DEFAULT:
            raise InputError(f"--{name} is for the web app: add --web")
    require_strong_secrets(settings)
    clock: Clock = _test_clock(test_clock) if test_clock else SystemClock()
    stop = threading.Event()
    core, reporting = embedded_core(settings, stop)
    core.require_schema()
    core.configure_logging()
    lock = run_lock(core.db)
    lock.acquire()
    try:
        jobs = EmbeddedJobs(core, reporting)
        scheduler = Scheduler(
            jobs.scheduled(),
            clock,
            click.echo,
            quiet_after=heartbeat_minutes * 60.0,
            idle_line=jobs.next_sends,
            watch=lambda: keep_held(lock),
            stop=stop,
        )
        prefix = f"TEST CLOCK {test_clock}: " if test_clock else ""
        scheduler.say(prefix + jobs.plan(clock.now()))
        with _serving(core, settings, host, port) if web else nullcontext(), _signals(stop):
            scheduler.run()
    finally:
        lock.release()


def _test_clock(value: str) -> Clock:
    from digest.service.scheduler import ScaledClock

    start, _, speed = value.partition("x")
    try:
        when = dt.datetime.fromisoformat(start)
        factor = float(speed or 1)
    except ValueError as exc:
        raise InputError(f"--test-clock: {exc}") from exc
    if not factor > 0:
        raise InputError("--test-clock: SPEED must be above 0")
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return ScaledClock(when, factor)


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM stop the loop; a second one leaves at once (rows still leased come
    back when their lease runs out)."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _serving(core: Digest, settings: Settings, host: str, port: int) -> Iterator[None]:
    """The web app, served by waitress from a thread of this process."""
    import waitress

    from digest.web import create_app

    server = waitress.create_server(
        create_app(settings, core=core), host=host, port=port, threads=8
    )
    thread = threading.Thread(target=server.run, name="digest-web", daemon=True)
    thread.start()
    click.echo(f"serving on http://{host}:{port}/ (links in emails use {settings.base_url})")
    try:
        yield
    finally:
        server.close()


def send_due_now(app: App) -> None:
    """``digest send --due``: every list whose send time has passed today, and the due retries
    and the sweep, once; a line per edition sent, none when nothing was due."""
    from digest.service.embedded import EmbeddedJobs, embedded_core

    # Never stopped: a core of its own only for the reports that make the lines.
    core, reporting = embedded_core(app.settings, threading.Event())
    core.require_schema()
    jobs = EmbeddedJobs(core, reporting)
    for line in jobs.due_once():
        click.echo(line)
    if jobs.failed:
        raise DigestError(
            f"{plural(len(jobs.failed), 'edition')} stopped with errors: `digest status` says why"
        )
