"""``digest inbound`` (the bounce and unsubscribe mailbox) and ``digest subscribers forget``."""

from __future__ import annotations

import logging
import threading

import click

from digest.cli.context import App
from digest.errors import ConfigError


@click.command("inbound")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=2525,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="SMTP port to listen on.",
)
@click.option(
    "--imap",
    "imap_url",
    metavar="URL",
    help="Instead of listening, poll a hosted mailbox: imaps://user:password@host/INBOX.",
)
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds between IMAP polls.",
)
@click.option("--once", is_flag=True, help="With --imap: poll once and exit.")
@click.pass_obj
def inbound(
    app: App, host: str, port: int, imap_url: str | None, interval: float, once: bool
) -> None:
    """Receive bounces, spam complaints and mailto unsubscribes, and act on them.

    Point the MX of DIGEST_BOUNCE_DOMAIN (and of the List-Unsubscribe mailto's domain) at
    this server. Mail to any other address is refused.
    """
    settings = app.settings
    inbox = app.core.inbox
    if not settings.bounce_domain:
        click.echo(
            "note: DIGEST_BOUNCE_DOMAIN is not set: only mailto unsubscribes are accepted",
            err=True,
        )
    if imap_url:
        if once:
            counts = inbox.poll_imap(imap_url)
            click.echo(" ".join(f"{verdict}={n}" for verdict, n in counts.items()))
            return
        # Only a long-running server takes over the process's logging (--once prints instead).
        app.core.configure_logging()
        inbox.poll_imap(imap_url, interval=interval)
        return
    app.core.configure_logging()
    # aiosmtpd logs every SMTP command at INFO, the addresses with them: keep its warnings only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = inbox.smtp_server(host, port)
    try:
        controller.start()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    click.echo(f"inbound SMTP listening on {host}:{port}", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@click.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget(app: App, email: str, yes: bool) -> None:
    """Erase a person: their address, name and consent record, keeping counts, and keeping the
    address suppressed as a hash so it is never mailed or subscribed again."""
    inbox = app.core.inbox
    address = inbox.lookup_form(email)
    if address is None:
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    if not yes:
        click.confirm(f"Erase {address} for good?", abort=True)
    app.require_schema()  # one line, not a traceback, if the database is not set up
    report = inbox.forget(address)
    if report.found:
        click.echo("forgotten; the address stays suppressed (as a hash)")
    else:
        click.echo("no subscriber with that address; it is now suppressed (as a hash)")
    for line in report.cleared():
        click.echo(f"  cleared: {line}")
    for line in report.not_reached:
        click.echo(f"  not reached: {line}")
