"""The daily job and the hold on a send: ``ingest``, ``preview``, ``send``, ``status``,
``pause``, ``resume``, ``cancel`` and ``retry-failed``. Each asks the core; none of them
builds a mailer or asks whether there is a broker."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import func, select

from digest.cli.context import ROW_ID, App, NumberArgs, parse_date, pass_app
from digest.cli.output import counts_text, plural, progress_line, report_text
from digest.edition import ledger
from digest.edition.build import Draft
from digest.errors import DigestError, InputError
from digest.ingest import SourceReport
from digest.send.batch import BatchReport
from digest.service.dispatch import Dispatched
from digest.store.models import (
    Edition,
    EditionStatus,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)


@click.command()
@click.option("--force", is_flag=True, help="Also fetch sources that are backing off after errors.")
@pass_app
def ingest(app: App, force: bool) -> None:
    """Fetch every due source and store new articles; exits 1 only if every source failed."""
    app.db  # noqa: B018 - one line, not a traceback, if the database is not set up
    reports = app.core.ingest(force=force)
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
        f"ingested {plural(len(reports), 'source')}: {plural(new, 'new article')}, "
        f"{failed} failed" + (f", {waiting} backing off" if waiting else "")
    )


def edition_draft(app: App, list_slug: str, date: str | None) -> tuple[Draft, Edition | None]:
    """The stored edition's content if it was built, else today's draft; not stored."""
    app.db  # noqa: B018 - checks the schema first
    return app.core.draft(list_slug, parse_date(date))


@click.command()
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
    draft, _ = edition_draft(app, list_slug, date)
    html = app.core.preview_html(draft)
    path = out or Path(f"preview-{list_slug}-{draft.day.isoformat()}.html")
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


@click.command()
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
    draft, _ = edition_draft(app, list_slug, date)
    address, detail = app.core.send_test(draft, to_address)
    where = f" ({detail})" if not app.settings.smtp_url else ""
    click.echo(f"test copy of {list_slug} {draft.day} sent to {address}{where}")


def dry_run_send(app: App, list_slug: str, date: str | None) -> None:
    draft, edition = edition_draft(app, list_slug, date)
    # Render for real: a broken template is found now, not by the send.
    app.core.mailer.check(draft)
    click.echo(f"list {list_slug}, edition {draft.day}: {draft.subject!r}")
    for section in draft.sections:
        click.echo(f"  {section.name}: {plural(len(section.articles), 'article')}")
    if edition is not None:
        counts = app.core.counts(edition.id)
        click.echo(
            f"already built (edition {edition.id}, {edition.status.value}): {counts_text(counts)}"
        )
        return
    if not draft.sections:
        click.echo("no articles: the edition would be recorded as empty and nothing sent")
        return
    with app.db.session() as session:
        recipients = int(
            session.scalar(
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
            or 0
        )
    click.echo(
        f"would send to {plural(recipients, 'subscriber')} (dry run: nothing stored or sent)"
    )


def send_edition(app: App, list_slug: str, date: str | None) -> None:
    app.db  # noqa: B018 - checks the schema first
    day = parse_date(date)
    with _progress(app) as on_batch:
        start = app.core.start(list_slug, day, on_batch)
    if start.status == EditionStatus.EMPTY:
        click.echo(
            f"no articles for {list_slug} on {start.day}: edition {start.edition_id} recorded "
            "as empty, nothing sent"
        )
        return
    built = "built" if start.created else "already built"
    click.echo(f"edition {start.edition_id} ({list_slug}, {start.day}) {built}")
    if start.dispatched is None:
        click.echo(f"edition {start.edition_id} is {start.status.value}: nothing to send")
        return
    _say_dispatched(app, start.edition_id, start.dispatched, list_slug, start.day.isoformat())


def _say_dispatched(
    app: App, edition_id: int, dispatched: Dispatched, list_slug: str = "", day: str = ""
) -> None:
    """What happened to the rows handed on: queued for the workers, or sent here."""
    if dispatched.mode == "queued":
        click.echo(
            f"queued {plural(dispatched.batches, 'batch')} for the workers; "
            f"watch with `digest status {edition_id} --watch`"
        )
        return
    total = dispatched.report or BatchReport()
    click.echo(f"edition {edition_id}: {report_text(total)}")
    if not app.settings.smtp_url and total.sent and list_slug:
        outbox = Path(app.settings.outbox_dir).resolve() / f"{list_slug}-{day}"
        click.echo(f"messages written to {outbox}")
    if total.claimed == 0:
        click.echo("nothing new to send: every subscriber already has this edition")
    if total.error:
        raise DigestError(f"sending stopped: {total.error} (unsent rows are kept; run send again)")


@contextmanager
def _progress(app: App) -> Iterator[Callable[[BatchReport], None]]:
    """A progress bar fed by each batch's report; only where someone watches (in a log file
    it would be noise), and only for sends in this process."""
    hidden = app.settings.uses_broker or not sys.stderr.isatty()
    with click.progressbar(
        length=0, label="sending", file=sys.stderr, show_pos=True, hidden=hidden
    ) as bar:

        def on_batch(report: BatchReport) -> None:
            bar.length = (bar.length or 0) + report.claimed
            bar.update(report.claimed)

        yield on_batch


@click.command(cls=NumberArgs)
@click.argument("edition_id", type=ROW_ID, required=False, metavar="[EDITION]")
@click.option("--watch", is_flag=True, help="Follow EDITION live: progress, rate and ETA.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds between updates.",
)
@pass_app
def status(app: App, edition_id: int | None, watch: bool, interval: float) -> None:
    """Show editions with their sent / deferred / bounced / failed / pending counts."""
    if watch:
        if edition_id is None:
            raise InputError("--watch needs an EDITION id (see `digest status`)")
        watch_edition(app, edition_id, interval)
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
                f"{counts_text(counts)}"
            )
            if edition.status_reason:
                click.echo(f"       reason: {edition.status_reason}")


def watch_edition(app: App, edition_id: int, interval: float) -> None:
    """Redraw the edition's progress until it is done or cancelled (Ctrl-C stops watching)."""
    live = sys.stdout.isatty()
    samples: list[tuple[float, int]] = []
    db = app.db
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


EDITION = click.argument("edition_id", type=ROW_ID, metavar="EDITION")


@click.command(cls=NumberArgs)
@EDITION
@pass_app
def pause(app: App, edition_id: int) -> None:
    """Pause a send; workers stop after the batch they are on. `digest resume` continues it."""
    app.db  # noqa: B018 - checks the schema first
    app.core.pause(edition_id)
    click.echo(f"edition {edition_id} paused")


@click.command(cls=NumberArgs)
@EDITION
@pass_app
def resume(app: App, edition_id: int) -> None:
    """Continue a paused send from where it stopped (nobody gets it twice)."""
    app.db  # noqa: B018 - checks the schema first
    with _progress(app) as on_batch:
        dispatched = app.core.resume(edition_id, on_batch)
    click.echo(f"edition {edition_id} resumed")
    _say_dispatched(app, edition_id, dispatched)


@click.command(cls=NumberArgs)
@EDITION
@pass_app
def cancel(app: App, edition_id: int) -> None:
    """Stop a send for good: recipients not yet sent to are skipped."""
    app.db  # noqa: B018 - checks the schema first
    skipped = app.core.cancel(edition_id)
    click.echo(f"edition {edition_id} cancelled; {plural(skipped, 'unsent recipient')} skipped")


@click.command("retry-failed", cls=NumberArgs)
@EDITION
@pass_app
def retry_failed(app: App, edition_id: int) -> None:
    """Send again to the recipients of an edition that failed, and only to them."""
    app.db  # noqa: B018 - checks the schema first
    with _progress(app) as on_batch:
        count, dispatched = app.core.retry_failed(edition_id, on_batch)
    click.echo(f"edition {edition_id}: {plural(count, 'failed recipient')} queued again")
    if dispatched is not None:
        _say_dispatched(app, edition_id, dispatched)
