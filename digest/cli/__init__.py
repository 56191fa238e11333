"""The operator's ``digest`` command."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from digest.config import Settings, load_settings
from digest.edition import control, ledger
from digest.edition.build import Draft, build_edition
from digest.edition.select import local_today, zone
from digest.errors import DigestError, InputError
from digest.ingest import SourceReport, ingest_all
from digest.ingest.run import IDENTITIES, parse_category_map
from digest.send.batch import BatchReport, EditionMailer, send_until_done
from digest.service import catalog
from digest.service import core as operations
from digest.store.db import Database
from digest.store.models import (
    FINAL_DELIVERY_STATUSES,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    MailingList,
    Section,
    Source,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from digest.transports import transport_for

#: Transport failures an in-process send retries (after 2, 4, 8 s) before it stops.
IN_PROCESS_RETRIES = 3


class App:
    """What every command needs, made on first use so ``--help`` needs no database."""

    def __init__(self, config_file: str | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
            if not self._db.is_current():
                raise DigestError(
                    f"the database at {self.settings.database_url} is not set up or is out of "
                    "date: run `digest init`"
                )
        return self._db

    def fresh_db(self) -> Database:
        """The database without the schema check (for ``init`` and ``demo``)."""
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db


class DigestGroup(click.Group):
    """Turns Digest's own errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(f"database error: {exc.orig}") from exc


pass_app = click.make_pass_decorator(App)


def parse_date(value: str | None) -> dt.date | None:
    try:
        return operations.parse_day(value)
    except InputError as exc:
        raise InputError(f"--{exc}") from exc


@click.group(cls=DigestGroup)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="TOML settings file (default: $DIGEST_CONFIG, else ./digest.toml if present).",
)
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Digest: gather a news site's articles by section and mail subscribers a daily digest.

    Settings come from built-in defaults, then the TOML file, then DIGEST_*
    environment variables (DIGEST_DATABASE_URL, DIGEST_BROKER_URL,
    DIGEST_SMTP_URL, DIGEST_OUTBOX_DIR, DIGEST_BASE_URL, DIGEST_SECRET_KEY, ...).
    Start with `digest demo` to see everything work on the bundled sample site.
    """
    ctx.obj = App(config_file)


# -- set-up ---------------------------------------------------------------------------


@cli.command()
@pass_app
def init(app: App) -> None:
    """Create the database, or upgrade it to the current schema."""
    app.fresh_db().upgrade()
    click.echo(f"database ready: {app.settings.database_url}")


@cli.group()
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


@cli.group()
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


@cli.group("lists")
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
@click.option("--per-section", type=int, help="Most articles per section (default 5).")
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


@cli.group()
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
    with app.db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        subscriber, added = catalog.subscribe(session, mailing_list, email, name, source="cli")
        if timezone is not None:
            zone(timezone)
            subscriber.timezone = timezone
        state = "subscribed" if added else "already subscribed"
        click.echo(f"{subscriber.email} {state} to {list_slug}")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option("--list", "list_slug", required=True, help="The list to subscribe them to.")
@pass_app
def subscribers_import(app: App, csv_file: Path, list_slug: str) -> None:
    """Import subscribers from a CSV file with columns email,name.

    Bad rows are reported with their line numbers and the rest are imported;
    the exit status is 1 if any row was bad.
    """
    with app.db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        report = catalog.import_subscribers(session, mailing_list, csv_file)
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
    with app.db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        for subscriber, subscription in catalog.list_subscribers(session, mailing_list):
            state = subscription.status.value
            if subscriber.status != SubscriberStatus.ACTIVE:
                state = subscriber.status.value
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
    with app.db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        for subscriber, subscription in catalog.list_subscribers(session, mailing_list):
            state = subscription.status.value
            if subscriber.status != SubscriberStatus.ACTIVE:
                state = subscriber.status.value
            writer.writerow(
                [
                    catalog.csv_safe_cell(subscriber.email),
                    catalog.csv_safe_cell(subscriber.name),
                    state,
                    subscription.created_at.isoformat(timespec="seconds"),
                ]
            )


# -- the daily job --------------------------------------------------------------------


@cli.command()
@click.option("--force", is_flag=True, help="Also fetch sources that are backing off after errors.")
@pass_app
def ingest(app: App, force: bool) -> None:
    """Fetch every due source and store new articles; exits 1 only if every source failed."""
    reports = ingest_all(app.db, app.settings, force=force)
    print_ingest(reports)
    if reports and all(r.failed for r in reports):
        raise click.ClickException("every source failed")


def print_ingest(reports: list[SourceReport]) -> None:
    click.echo(f"  {'source':<32} {'found':>5} {'new':>4} {'upd':>4}  outcome")
    for r in reports:
        if r.backing_off_until is not None:
            outcome = f"backing off until {r.backing_off_until:%Y-%m-%d %H:%M} UTC"
        elif r.error:
            outcome = f"FAILED: {r.error}"
        elif r.not_modified:
            outcome = "not modified"
        else:
            outcome = "ok"
        click.echo(f"  {r.name[:32]:<32} {r.found:>5} {r.new:>4} {r.updated:>4}  {outcome}")
    new = sum(r.new for r in reports)
    failed = sum(1 for r in reports if r.error)
    waiting = sum(1 for r in reports if r.backing_off_until is not None)
    click.echo(
        f"ingested {len(reports)} sources: {new} new articles, {failed} failed"
        + (f", {waiting} backing off" if waiting else "")
    )


def _edition_draft(app: App, list_slug: str, date: str | None) -> tuple[Draft, Edition | None]:
    """The stored edition's content if it was built, else today's draft; not stored."""
    return operations.edition_draft(app.db, app.settings, list_slug, parse_date(date))


@cli.command()
@click.option("--list", "list_slug", required=True, help="The list to preview.")
@click.option("--date", help="Edition date YYYY-MM-DD (default: today in the list's time zone).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="HTML file to write (default: preview-LIST-DATE.html).",
)
@pass_app
def preview(app: App, list_slug: str, date: str | None, out: Path | None) -> None:
    """Render a list's digest to an HTML file to open in a browser; sends nothing."""
    path = write_preview(app, list_slug, date, out)
    click.echo(f"preview written to {path.resolve()}")


def write_preview(app: App, list_slug: str, date: str | None, out: Path | None) -> Path:
    draft, _ = _edition_draft(app, list_slug, date)
    html = operations.preview_html(app.settings, draft)
    path = out or Path(f"preview-{list_slug}-{draft.day.isoformat()}.html")
    path.write_text(html, encoding="utf-8")
    return path


@cli.command()
@click.option("--list", "list_slug", required=True, help="The list to send.")
@click.option("--date", help="Edition date YYYY-MM-DD (default: today in the list's time zone).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; store and send nothing.")
@click.option(
    "--to",
    "to_address",
    metavar="ADDRESS",
    help="Send one test copy to ADDRESS only, without touching the ledger.",
)
@pass_app
def send(app: App, list_slug: str, date: str | None, dry_run: bool, to_address: str | None) -> None:
    """Build a list's edition for a day and send it to every subscriber, once.

    Sending the same list and date again sends nothing new; it only finishes
    what an interrupted send left (and retries deferred recipients whose time
    has come). With a broker configured the send is queued for the workers.
    """
    if to_address:
        send_test_copy(app, list_slug, date, to_address)
    elif dry_run:
        dry_run_send(app, list_slug, date)
    else:
        send_edition(app, list_slug, date)


def send_test_copy(app: App, list_slug: str, date: str | None, to_address: str) -> None:
    draft, _ = _edition_draft(app, list_slug, date)
    address, detail = operations.send_test_copy(app.settings, draft, to_address)
    where = f" ({detail})" if not app.settings.smtp_url else ""
    click.echo(f"test copy of {list_slug} {draft.day} sent to {address}{where}")


def dry_run_send(app: App, list_slug: str, date: str | None) -> None:
    draft, edition = _edition_draft(app, list_slug, date)
    click.echo(f"list {list_slug}, edition {draft.day}: {draft.subject!r}")
    for section in draft.sections:
        click.echo(f"  {section.name}: {len(section.articles)} articles")
    if edition is not None:
        with app.db.session() as session:
            counts = ledger.counts(session, edition.id)
        click.echo(
            f"already built (edition {edition.id}, {edition.status.value}): {_counts_text(counts)}"
        )
        return
    if not draft.sections:
        click.echo("no articles: the edition would be recorded as empty and nothing sent")
        return
    with app.db.session() as session:
        recipients = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .join(Subscriber)
            .where(
                Subscription.list_id == draft.mailing_list.id,
                Subscription.status == SubscriptionStatus.CONFIRMED,
                Subscriber.status == SubscriberStatus.ACTIVE,
                ~select(Suppression.id).where(Suppression.email == Subscriber.email).exists(),
            )
        )
    click.echo(f"would send to {recipients} subscribers (dry run: nothing stored or sent)")


def send_edition(app: App, list_slug: str, date: str | None) -> None:
    settings = app.settings
    operations.probe_smtp(settings)  # an unreachable server is reported before anything is built
    with app.db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        day = parse_date(date) or local_today(mailing_list.timezone)
        edition, created = build_edition(session, settings, mailing_list, day)
        edition_id, status = edition.id, edition.status
    if status == EditionStatus.EMPTY:
        click.echo(
            f"no articles for {list_slug} on {day}: edition {edition_id} recorded as empty, "
            "nothing sent"
        )
        return
    click.echo(
        f"edition {edition_id} ({list_slug}, {day}) {'built' if created else 'already built'}"
    )
    if status != EditionStatus.READY:
        click.echo(f"edition {edition_id} is {status.value}: nothing to send")
        return
    if settings.uses_broker:
        from digest.worker.tasks import fan_out

        batches = fan_out(app.db, edition_id)
        click.echo(
            f"queued {batches} batches for the workers; watch with `digest status {edition_id}`"
        )
        return
    total = _send_in_process(app, edition_id)
    click.echo(f"edition {edition_id}: {_report_text(total)}")
    if not settings.smtp_url and total.sent:
        outbox = Path(settings.outbox_dir).resolve() / f"{list_slug}-{day.isoformat()}"
        click.echo(f"messages written to {outbox}")
    if total.claimed == 0:
        click.echo("nothing new to send: every subscriber already has this edition")
    if total.error:
        raise DigestError(f"sending stopped: {total.error} (unsent rows are kept; run send again)")


def _send_in_process(app: App, edition_id: int) -> BatchReport:
    with app.db.session() as session:
        pending = sum(
            n
            for status, n in ledger.counts(session, edition_id).items()
            if status in {s.value for s in ledger.OPEN_STATUSES}
        )
    mailer = EditionMailer(app.settings)
    # A bar only where someone watches: in a log file it would be noise.
    with click.progressbar(
        length=pending,
        label="sending",
        file=sys.stderr,
        show_pos=True,
        hidden=not sys.stderr.isatty(),
    ) as bar:
        update: Callable[[BatchReport], None] = lambda r: bar.update(r.claimed)  # noqa: E731
        return send_until_done(
            app.db,
            mailer,
            edition_id,
            lambda: transport_for(app.settings),
            update,
            retries=IN_PROCESS_RETRIES,
        )


def _report_text(r: BatchReport) -> str:
    return (
        f"{r.sent} sent, {r.deferred} deferred, {r.bounced} bounced, {r.failed} failed, "
        f"{r.skipped} skipped"
    )


def _counts_text(counts: dict[str, int]) -> str:
    pending = counts["pending"] + counts["leased"]
    return (
        f"{counts['sent']} sent, {counts['deferred']} deferred, {counts['bounced']} bounced, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {pending} pending"
    )


@cli.command()
@click.argument("edition_id", type=int, required=False)
@click.option("--watch", is_flag=True, help="Follow EDITION live: progress, rate and ETA.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between updates.")
@pass_app
def status(app: App, edition_id: int | None, watch: bool, interval: float) -> None:
    """Show editions with their sent / deferred / bounced / failed / pending counts."""
    if watch:
        if edition_id is None:
            raise InputError("--watch needs an EDITION id (see `digest status`)")
        watch_edition(app.db, edition_id, interval)
        return
    with app.db.session() as session:
        query = select(Edition, MailingList.slug).join(MailingList).order_by(Edition.id.desc())
        if edition_id is not None:
            query = query.where(Edition.id == edition_id)
        rows = session.execute(query.limit(50)).all()
        if edition_id is not None and not rows:
            raise DigestError(f"unknown edition: {edition_id}")
        if not rows:
            click.echo("no editions yet: `digest send --list SLUG` builds and sends one")
        for edition, slug in rows:
            counts = ledger.counts(session, edition.id)
            click.echo(
                f"{edition.id:>5}  {slug:<16} {edition.edition_date}  {edition.status.value:<9} "
                f"{_counts_text(counts)}"
            )
            if edition.status_reason:
                click.echo(f"       reason: {edition.status_reason}")


def progress_line(counts: dict[str, int], rate: float, width: int = 30) -> str:
    """One line: a bar of final rows, the counts, the send rate and the time left."""
    total = sum(counts.values())
    final = sum(counts[s.value] for s in FINAL_DELIVERY_STATUSES)
    open_rows = total - final
    share = final / total if total else 1.0
    filled = int(share * width)
    eta = "--:--:--"
    if open_rows == 0:
        eta = "0:00:00"
    elif rate > 0:
        eta = str(dt.timedelta(seconds=int(open_rows / rate)))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {share:6.1%}  {_counts_text(counts)}  "
        f"{rate:,.0f} msg/s  ETA {eta}"
    )


def watch_edition(db: Database, edition_id: int, interval: float) -> None:
    """Redraw the edition's progress until it is done or cancelled (Ctrl-C stops watching)."""
    live = sys.stdout.isatty()
    samples: list[tuple[float, int]] = []
    try:
        while True:
            with db.session() as session:
                edition = session.get(Edition, edition_id)
                if edition is None:
                    raise DigestError(f"unknown edition: {edition_id}")
                counts = ledger.counts(session, edition_id)
                state, reason = edition.status, edition.status_reason
            handled = counts["sent"] + counts["bounced"] + counts["failed"] + counts["skipped"]
            samples = [*samples, (time.monotonic(), handled)][-10:]
            (t0, n0), (t1, n1) = samples[0], samples[-1]
            rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
            line = f"{state.value:<9} {progress_line(counts, rate)}"
            if reason:
                line += f"  ({reason})"
            click.echo(f"\r{line}\x1b[K" if live else line, nl=not live)
            if state not in (EditionStatus.READY, EditionStatus.PAUSED):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    if live:
        click.echo()


@cli.command()
@click.argument("edition_id", type=int)
@pass_app
def pause(app: App, edition_id: int) -> None:
    """Pause a send; workers stop after the batch they are on. `digest resume` continues it."""
    with app.db.session() as session:
        control.pause(session, edition_id)
    click.echo(f"edition {edition_id} paused")


@cli.command()
@click.argument("edition_id", type=int)
@pass_app
def resume(app: App, edition_id: int) -> None:
    """Continue a paused send from where it stopped (nobody gets it twice)."""
    with app.db.session() as session:
        control.resume(session, edition_id)
    click.echo(f"edition {edition_id} resumed")
    _continue(app, edition_id)


@cli.command()
@click.argument("edition_id", type=int)
@pass_app
def cancel(app: App, edition_id: int) -> None:
    """Stop a send for good: recipients not yet sent to are skipped."""
    with app.db.session() as session:
        _, skipped = control.cancel(session, edition_id)
    click.echo(f"edition {edition_id} cancelled; {skipped} unsent recipients skipped")


@cli.command("retry-failed")
@click.argument("edition_id", type=int)
@pass_app
def retry_failed(app: App, edition_id: int) -> None:
    """Send again to the recipients of an edition that failed, and only to them."""
    with app.db.session() as session:
        _, count = control.retry_failed(session, edition_id)
    click.echo(f"edition {edition_id}: {count} failed recipients queued again")
    if count:
        _continue(app, edition_id)


def _continue(app: App, edition_id: int) -> None:
    """Hand the edition to the workers, or send it here on the embedded default."""
    if app.settings.uses_broker:
        from digest.worker.tasks import fan_out

        click.echo(f"queued {fan_out(app.db, edition_id)} batches")
        return
    total = _send_in_process(app, edition_id)
    click.echo(f"edition {edition_id}: {_report_text(total)}")
    if total.error:
        raise DigestError(f"sending stopped: {total.error}")


# -- workers ------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (needs DIGEST_BROKER_URL). Extra options go to Celery,
    e.g. `digest worker --concurrency 4 -n mail1@%h`."""
    _celery(ctx, "worker")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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
    from digest.worker.app import app as celery_app

    celery_app.start([command, "--loglevel", "INFO", *ctx.args])


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, help="Requests served at once.")
@pass_app
def web(app: App, host: str, port: int, threads: int) -> None:
    """Serve the subscriber pages (subscribe, confirm, unsubscribe, preferences, archive),
    the operator API, the dashboard and /metrics, with the waitress WSGI server."""
    import waitress

    from digest.logs import configure_logging
    from digest.web import create_app

    app.db  # noqa: B018 - fail now, in one line, if the database is not set up
    configure_logging(app.settings)
    click.echo(f"serving on http://{host}:{port}/ (links in emails use {app.settings.base_url})")
    waitress.serve(create_app(app.settings), host=host, port=port, threads=threads)


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the settings and reach the database, the broker and the SMTP server (EHLO,
    STARTTLS, login): one line each; exit status 1 if anything needed does not work."""
    from digest.ops.doctor import report, run_checks

    if not report(run_checks(ctx.obj.config_file), click.echo):
        sys.exit(1)


# -- the demo ----------------------------------------------------------------------


@cli.command()
@pass_app
def demo(app: App) -> None:
    """Run everything on the bundled sample site, on this machine, with no server:
    set up the database, add the sample sections, feeds, lists and subscribers,
    ingest, preview and send today's digests to the outbox folder."""
    from digest.cli.demo import run_demo

    run_demo(app)


from digest.cli.tokens import tokens  # noqa: E402 - registered here so `digest --help` lists it

cli.add_command(tokens)


def main() -> None:
    cli(prog_name="digest")


__all__ = ["App", "Delivery", "DeliveryStatus", "cli", "main"]


if __name__ == "__main__":
    main()
