"""``digest demo``: the whole daily job on the bundled sample site, on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.context import App, pass_app
from digest.cli.output import plural
from digest.errors import InputError

SAMPLE_SITE_DIR = Path("sample-site")


@click.command()
@click.option(
    "--smtp-url",
    help="Deliver the sample digests to this SMTP server (a Mailpit: smtp://mailpit:1025) "
    "instead of the outbox folder (default: DIGEST_DEMO_SMTP_URL, else the outbox).",
)
@pass_app
def demo(app: App, smtp_url: str | None) -> None:
    """Run everything on the bundled sample site, on this machine, with no server:
    set up the database, add the sample sections, feeds, lists and subscribers,
    ingest, preview and send today's digests to the outbox folder."""
    if smtp_url is not None:
        if not smtp_url.startswith(("smtp://", "smtps://")):
            raise InputError(f"--smtp-url must start with smtp:// or smtps://, not {smtp_url!r}")
        app.settings = app.settings.replace(demo_smtp_url=smtp_url)
    run_demo(app)


def run_demo(app: App) -> None:
    from digest.cli.sending import print_ingest, send_edition, write_preview
    from digest.service.demo import demo_settings

    app.settings = demo_settings(app.settings)
    click.echo(f"1. database ready: {app.core.upgrade_database()}")

    site = app.core.install_sample(SAMPLE_SITE_DIR)
    for file_name, error in site.errors:
        click.echo(f"   {file_name}:{error.line}: {error.reason}", err=True)
    click.echo(
        f"2. sample site {site.name!r}: {plural(len(site.feeds), 'RSS feed')} in "
        f"{SAMPLE_SITE_DIR.resolve()}, {plural(len(site.lists), 'list')}"
    )

    click.echo("3. ingesting:")
    print_ingest(app.core.ingest())

    click.echo("4. previews:")
    previews = []
    for slug in site.lists:
        path = write_preview(app, slug, None, Path(f"preview-{slug}.html"))
        previews.append(path)
        click.echo(f"   {path.resolve()}")

    click.echo("5. sending today's editions:")
    for slug in site.lists:
        send_edition(app, slug, None)
    click.echo("")
    click.echo("Done. Look at:")
    if app.settings.smtp_url:
        click.echo(f"  the emails: delivered to {app.settings.smtp_url} (a Mailpit: its inbox)")
    else:
        outbox = Path(app.settings.outbox_dir).resolve()
        click.echo(f"  the emails (one .eml per subscriber):  {outbox}/")
    click.echo(f"  the digests in a browser:              {previews[0].resolve()}")
    click.echo("  the send ledger:                       digest status")
    click.echo(
        "Running `digest demo` again sends nothing new: each subscriber gets an edition once."
    )
