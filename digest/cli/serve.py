"""``digest worker``, ``beat``, ``web`` and ``doctor``: the long-running processes and the check."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from digest.cli.context import App, pass_app
from digest.config import require_strong_secrets
from digest.errors import DigestError


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (needs DIGEST_BROKER_URL). Extra options go to Celery,
    e.g. `digest worker --concurrency 4 -n mail1@%h`."""
    _celery(ctx, "worker")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run the Celery beat scheduler (needs DIGEST_BROKER_URL): ingests every 10 minutes,
    sends each list at its send-at time, and sweeps expired leases."""
    _celery(ctx, "beat")


def _celery(ctx: click.Context, command: str) -> None:
    app: App = ctx.obj
    if not app.settings.uses_broker:
        raise DigestError(
            f"`digest {command}` needs DIGEST_BROKER_URL (e.g. redis://localhost:6379/0)"
        )
    require_strong_secrets(app.settings)
    if app.config_file:
        # The worker's app reads its settings when imported, in this process and in every
        # pool process it forks: the environment carries the file to all of them.
        os.environ["DIGEST_CONFIG"] = str(Path(app.config_file).resolve())
    from digest.worker.app import app as celery_app
    from digest.worker.app import reset

    reset()
    celery_app.start([command, "--loglevel", "INFO", *ctx.args])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests served at once.",
)
@pass_app
def web(app: App, host: str, port: int, threads: int) -> None:
    """Serve the subscriber pages (subscribe, confirm, unsubscribe, preferences, archive),
    the operator API, the dashboard and /metrics, with the waitress WSGI server."""
    import waitress

    from digest.web import create_app

    require_strong_secrets(app.settings)
    app.require_schema()  # fail now, in one line, if the database is not set up
    app.core.configure_logging()
    click.echo(f"serving on http://{host}:{port}/ (links in emails use {app.settings.base_url})")
    waitress.serve(create_app(app.settings, core=app.core), host=host, port=port, threads=threads)


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help="Check only the settings, the database and the broker (no SMTP session): "
    "a health check cheap enough to run every minute.",
)
@click.pass_context
def doctor(ctx: click.Context, quick: bool) -> None:
    """Check the settings and reach the database, the broker and the SMTP server (EHLO,
    STARTTLS, login): one line each; exit status 1 if anything needed does not work."""
    from digest.ops.doctor import report, run_checks

    if not report(run_checks(ctx.obj.config_file, quick=quick), click.echo):
        sys.exit(1)
