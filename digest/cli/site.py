"""``digest init``, ``sections``, ``sources`` and ``lists``: setting up the site."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from sqlalchemy import func, select

from digest.cli.context import App, pass_app
from digest.ingest.run import IDENTITIES, parse_category_map
from digest.service import catalog
from digest.store.models import MailingList, Section, Source, Subscription, SubscriptionStatus


@click.command()
@pass_app
def init(app: App) -> None:
    """Create the database, or upgrade it to the current schema."""
    app.fresh_db().upgrade()
    click.echo(f"database ready: {app.settings.database_url}")


@click.group()
def sections() -> None:
    """The site's sections (International, National, ...)."""


@sections.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown in the digest, e.g. 'Health & Education'.")
@pass_app
def sections_add(app: App, slug: str, name: str) -> None:
    """Add a section, or rename an existing one."""
    with app.db.session() as session:
        section, created = catalog.add_section(session, slug, name)
        click.echo(f"{'added' if created else 'updated'} section {section.slug}: {section.name}")


@sections.command("list")
@pass_app
def sections_list(app: App) -> None:
    """Show the sections."""
    with app.db.session() as session:
        for section in session.scalars(select(Section).order_by(Section.slug)):
            click.echo(f"{section.slug:<24} {section.name}")


@click.group()
def sources() -> None:
    """The feeds articles are gathered from."""


@sources.command("add")
@click.argument("url_or_path")
@click.option("--section", "section_slug", required=True, help="Section its articles go to.")
@click.option("--name", help="A name to recognise it by (default: the file name or URL).")
@click.option(
    "--category-map",
    help="Item categories to sections, e.g. 'World=international,Pakistan=national'; "
    "items matching none go to --section.",
)
@click.option(
    "--identity",
    type=click.Choice(IDENTITIES),
    help="What makes two items the same story: guid, url, or both (default).",
)
@click.option(
    "--allow-private/--public-only",
    default=None,
    help="Allow fetching from loopback, private and link-local addresses (default: refused).",
)
@pass_app
def sources_add(
    app: App,
    url_or_path: str,
    section_slug: str,
    name: str | None,
    category_map: str | None,
    identity: str | None,
    allow_private: bool | None,
) -> None:
    """Add an RSS, Atom or JSON feed by http(s):// or file:// URL or local path."""
    with app.db.session() as session:
        source, created = catalog.add_source(
            session,
            url_or_path,
            section_slug,
            name,
            category_map=parse_category_map(category_map) if category_map is not None else None,
            identity=identity,
            allow_private=allow_private,
        )
        verb = "added" if created else "updated"
        click.echo(f"{verb} source {source.id} ({source.name}) -> {section_slug}")


@sources.command("list")
@pass_app
def sources_list(app: App) -> None:
    """Show each source's section, last fetch, HTTP status, counts, errors and next try."""

    def when(value: dt.datetime | None, default: str) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else default

    with app.db.session() as session:
        rows = session.execute(select(Source, Section.slug).join(Section).order_by(Source.id)).all()
        click.echo(
            f"{'id':>4}  {'section':<18} {'last fetch (UTC)':<17} {'http':>4} {'found':>5} "
            f"{'new':>4} {'errors':>6}  {'next try (UTC)':<17} source"
        )
        for source, slug in rows:
            status = str(source.last_status) if source.last_status else "-"
            next_try = when(source.next_fetch_at, "now")
            click.echo(
                f"{source.id:>4}  {slug:<18} {when(source.last_fetched_at, 'never'):<17} "
                f"{status:>4} {source.last_found:>5} {source.last_new:>4} "
                f"{source.consecutive_errors:>6}  {next_try:<17} {source.name}"
            )
            if source.category_map:
                pairs = ", ".join(f"{k}={v}" for k, v in source.category_map.items())
                click.echo(f"{'':>6}categories: {pairs}")
            if source.last_error:
                click.echo(f"{'':>6}last error: {source.last_error}")


@click.group("lists")
def lists_group() -> None:
    """Mailing lists: which sections, when, and for whom."""


@lists_group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The list's name, shown to subscribers.")
@click.option(
    "--sections",
    "section_csv",
    required=True,
    help="Section slugs in the order the digest shows them: a,b,c.",
)
@click.option("--timezone", help="IANA zone whose calendar day an edition covers (default UTC).")
@click.option("--send-at", help="Local time HH:MM the scheduler sends at (default 07:00).")
@click.option(
    "--per-section",
    type=click.IntRange(1, catalog.MAX_PER_SECTION),
    help="Most articles per section (default 5).",
)
@click.option("--from-address", help="From address for this list (default: DIGEST_FROM_ADDRESS).")
@click.option("--from-name", help="From name for this list (default: the site name).")
@click.option(
    "--language",
    help="Language of the date and the digest's own words: en, ur, ar... (default en).",
)
@click.option(
    "--subject",
    help='Subject template (default "{site} — {date}: {top headline}"; also {list}; "" resets).',
)
@click.option(
    "--template-dir",
    help="Folder with this list's email/digest.html and email/digest.txt "
    '(missing files come from the default templates; "" resets).',
)
@pass_app
def lists_add(app: App, slug: str, name: str, section_csv: str, **options: Any) -> None:
    """Add a list, or change an existing one."""
    slugs = [s.strip() for s in section_csv.split(",") if s.strip()]
    with app.db.session() as session:
        mailing_list, created = catalog.add_list(session, slug, name, slugs, **options)
        extra = "".join(
            f", {label} {value}"
            for label, value in (
                ("language", mailing_list.language),
                ("templates in", mailing_list.template_dir),
            )
            if value and value != "en"
        )
        click.echo(
            f"{'added' if created else 'updated'} list {mailing_list.slug}: "
            f"{', '.join(slugs)}; {mailing_list.timezone}, sends at {mailing_list.send_at}, "
            f"{mailing_list.per_section} per section{extra}"
        )


@lists_group.command("list")
@pass_app
def lists_list(app: App) -> None:
    """Show the lists with their confirmed subscriber counts."""
    with app.db.session() as session:
        for mailing_list in session.scalars(select(MailingList).order_by(MailingList.slug)):
            count = session.scalar(
                select(func.count())
                .select_from(Subscription)
                .where(
                    Subscription.list_id == mailing_list.id,
                    Subscription.status == SubscriptionStatus.CONFIRMED,
                )
            )
            sections = ",".join(s.slug for s in mailing_list.sections)
            click.echo(
                f"{mailing_list.slug:<16} {count:>7} subscribers  {mailing_list.timezone} "
                f"{mailing_list.send_at}  [{sections}]  {mailing_list.name}"
            )
