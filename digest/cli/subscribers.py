"""``digest subscribers``: adding, importing, listing and exporting the people on a list."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click

from digest.cli import inbound
from digest.cli.context import App, pass_app
from digest.service import catalog


@click.group()
def subscribers() -> None:
    """The people who get a list's digest."""


@subscribers.command("add")
@click.argument("email")
@click.option("--list", "list_slug", required=True, help="The list to subscribe to.")
@click.option("--name", default="", help="The subscriber's name.")
@click.option(
    "--timezone",
    help="The subscriber's own IANA time zone: their copy goes out at the list's send time there.",
)
@pass_app
def subscribers_add(app: App, email: str, list_slug: str, name: str, timezone: str | None) -> None:
    """Subscribe EMAIL to a list (confirmed: you vouch for the consent)."""
    subscriber, added = app.core.catalog.add_subscriber(
        list_slug, email, name, timezone=timezone, source="cli"
    )
    state = "subscribed" if added else "already subscribed"
    click.echo(f"{subscriber.email} {state} to {list_slug}")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", required=True, help="The list to subscribe them to.")
@pass_app
def subscribers_import(app: App, csv_file: Path, list_slug: str) -> None:
    """Import subscribers from a CSV file with columns email,name.

    Bad rows are reported with their line numbers and the rest are imported;
    the exit status is 1 if any row was bad.
    """
    report = app.core.catalog.import_subscribers(list_slug, csv_file)
    for error in report.errors:
        click.echo(f"{csv_file}:{error.line}: {error.reason}", err=True)
    click.echo(
        f"imported {report.added} new, {report.already} already subscribed, "
        f"{len(report.errors)} rejected"
    )
    if report.errors:
        sys.exit(1)


@subscribers.command("list")
@click.option("--list", "list_slug", required=True, help="The list to show.")
@pass_app
def subscribers_list(app: App, list_slug: str) -> None:
    """Show a list's subscribers and their state."""
    for subscriber in app.core.catalog.subscribers(list_slug):
        state = subscriber.state_on(list_slug)
        click.echo(f"{subscriber.email:<40} {state:<13} {subscriber.name}")


@subscribers.command("export")
@click.option("--list", "list_slug", required=True, help="The list to export.")
@click.option(
    "--out",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File to write (default: standard output).",
)
@pass_app
def subscribers_export(app: App, list_slug: str, out: Any) -> None:
    """Write a list's subscribers as CSV (email,name,status,subscribed_at)."""
    writer = csv.writer(out)
    writer.writerow(["email", "name", "status", "subscribed_at"])
    for subscriber in app.core.catalog.subscribers(list_slug):
        writer.writerow(
            [
                # A spreadsheet would run a name like =HYPERLINK(...) as a formula.
                catalog.csv_safe_cell(subscriber.email),
                catalog.csv_safe_cell(subscriber.name),
                subscriber.state_on(list_slug),
                subscriber.lists[list_slug].created_at.isoformat(timespec="seconds"),
            ]
        )


# Registered here so `digest subscribers --help` lists it; its code lives with the inbox.
subscribers.add_command(inbound.forget)
