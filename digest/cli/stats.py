"""``digest stats``: what an edition did (deliveries, bounces, complaints, unsubscribes,
readers who clicked, per section and per article), or the week's clicks per list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli.context import App, pass_app
from digest.errors import InputError

if TYPE_CHECKING:
    from digest.service.stats import EditionStats, WeeklyReport


def percent(rate: float) -> str:
    return f"{100 * rate:.1f}%"


@click.command()
@click.argument("edition_id", type=int, required=False)
@click.option("--weekly", is_flag=True, help="Which sections readers clicked in the last 7 days.")
@click.option("--list", "list_slug", metavar="SLUG", help="With --weekly: only this list.")
@pass_app
def stats(app: App, edition_id: int | None, weekly: bool, list_slug: str | None) -> None:
    """Show an edition's deliveries, bounces, complaints, unsubscribes and clicks.

    Clicks are counted only with DIGEST_TRACK_CLICKS=1; fetches by mail scanners are
    left out of the readers. With --weekly: each list's sections by click-through over the
    last 7 days.
    """
    if weekly == (edition_id is not None):
        raise InputError("give an EDITION id, or --weekly (see `digest status` for ids)")
    if list_slug and not weekly:
        raise InputError("--list goes with --weekly")
    app.require_schema()  # checks the schema first
    if weekly:
        _show_weekly(app.core.weekly_report(list_slug))
    else:
        assert edition_id is not None
        _show_edition(app.core.edition_stats(edition_id))
    if not app.settings.track_clicks:
        click.echo("(click tracking is off: DIGEST_TRACK_CLICKS=1 turns it on)", err=True)


def _show_edition(s: EditionStats) -> None:
    echo = click.echo
    echo(f"edition {s.edition_id}: {s.list_slug} {s.day} ({s.status})")
    echo(f"  subject        {s.subject}")
    echo(f"  recipients     {s.recipients:,}")
    echo(f"  delivered      {s.delivered:,}")
    echo(f"  bounced        {s.hard_bounces:,} hard, {s.soft_bounces:,} soft")
    echo(f"  failed         {s.failed:,}   skipped {s.skipped:,}   waiting {s.waiting:,}")
    echo(f"  complaints     {s.complaints:,}")
    echo(f"  unsubscribes   {s.unsubscribes:,}")
    echo(f"  readers        {s.readers:,} clicked ({percent(s.click_rate)} of delivered)")
    echo(f"  clicks         {s.clicks:,} by readers, {s.scanner_clicks:,} by scanners (left out)")
    if s.opens:
        echo(f"  opens          {s.opens:,} ({percent(s.open_rate)}; unreliable, see README)")
    if s.sections:
        echo("")
        echo(f"  {'section':<28} {'articles':>8} {'readers':>8} {'clicks':>7} {'rate':>7}")
        for section in s.sections:
            echo(
                f"  {section.name[:28]:<28} {section.articles:>8} {section.readers:>8} "
                f"{section.clicks:>7} {percent(section.rate):>7}"
            )
    if s.articles:
        echo("")
        echo(f"  {'article':<52} {'readers':>8} {'clicks':>7} {'rate':>7}")
        for article in sorted(s.articles, key=lambda a: (-a.readers, a.id)):
            echo(
                f"  {article.headline[:52]:<52} {article.readers:>8} {article.clicks:>7} "
                f"{percent(article.rate):>7}"
            )


def _show_weekly(report: WeeklyReport) -> None:
    click.echo(
        f"clicks by section, {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    )
    for week in report.lists:
        click.echo("")
        click.echo(f"{week.slug} ({week.name}): {week.delivered:,} delivered")
        if not week.sections:
            click.echo("  no editions delivered in these 7 days")
            continue
        click.echo(f"  {'section':<28} {'delivered':>9} {'readers':>8} {'clicks':>7} {'rate':>7}")
        for section in week.sections:
            click.echo(
                f"  {section.name[:28]:<28} {section.delivered:>9,} {section.readers:>8,} "
                f"{section.clicks:>7,} {percent(section.rate):>7}"
            )
