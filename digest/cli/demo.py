"""``digest demo``: the whole daily job on the bundled sample site, on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click

from digest import sample
from digest.cli.context import App, pass_app
from digest.cli.output import plural
from digest.config import Settings
from digest.errors import InputError
from digest.service import catalog
from digest.store.db import Database

SAMPLE_SITE_DIR = Path("sample-site")
DEFAULT_SITE_NAME = Settings.site_name


def demo_settings(settings: Settings, site: sample.SampleSite) -> Settings:
    """The sample publisher's name and address where the operator configured none; always
    in-process, and to the outbox or the demo's own SMTP server (DIGEST_DEMO_SMTP_URL, a
    Mailpit): never through the relay that mails real subscribers."""
    changes: dict[str, object] = {"broker_url": None, "smtp_url": settings.demo_smtp_url}
    if settings.site_name == DEFAULT_SITE_NAME:
        changes.update(
            site_name=site.name,
            site_url=site.url,
            postal_address=site.postal_address,
            from_address="digest@meridian.example",
        )
    return settings.replace(**changes)


def install_sample(db: Database, directory: Path) -> dict[str, Path]:
    """Write the sample feeds into ``directory`` and add the sample sections, sources, lists
    and subscribers (again: every step is an idempotent add-or-update)."""
    site = sample.load_site()
    feeds = sample.write_feeds(directory)
    with db.session() as session:
        for slug, name in site.sections:
            catalog.add_section(session, slug, name)
            catalog.add_source(session, str(feeds[slug]), slug, f"{site.name}: {name}")
        for spec in sample.LISTS:
            mailing_list, _ = catalog.add_list(
                session,
                spec["slug"],
                spec["name"],
                spec["sections"],
                timezone=sample.TIMEZONE,
                send_at="07:00",
                per_section=spec["per_section"],
            )
            report = catalog.import_subscribers(session, mailing_list, spec["csv"])
            for error in report.errors:
                click.echo(f"   {spec['csv'].name}:{error.line}: {error.reason}", err=True)
    return feeds


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

    site = sample.load_site()
    app.settings = demo_settings(app.settings, site)
    db = app.fresh_db()
    db.upgrade()
    click.echo(f"1. database ready: {app.settings.database_url}")

    feeds = install_sample(db, SAMPLE_SITE_DIR)
    click.echo(
        f"2. sample site {site.name!r}: {plural(len(feeds), 'RSS feed')} in "
        f"{SAMPLE_SITE_DIR.resolve()}, {plural(len(sample.LISTS), 'list')}"
    )

    click.echo("3. ingesting:")
    print_ingest(app.core.ingest())

    click.echo("4. previews:")
    previews = []
    for spec in sample.LISTS:
        path = write_preview(app, spec["slug"], None, Path(f"preview-{spec['slug']}.html"))
        previews.append(path)
        click.echo(f"   {path.resolve()}")

    click.echo("5. sending today's editions:")
    for spec in sample.LISTS:
        send_edition(app, spec["slug"], None)

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
