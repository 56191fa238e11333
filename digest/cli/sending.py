"""The daily job and the hold on a send: ``ingest``, ``preview``, ``send``, ``status``,
``pause``, ``resume``, ``cancel``, ``retry-failed`` and ``edition rebuild|drop``. Each asks
the core; none of them builds a mailer or asks whether there is a broker."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.context import ROW_ID, App, NumberArgs, parse_date, pass_app
from digest.cli.output import counts_text, plural, progress_line, report_text
from digest.errors import DigestError, InputError
from digest.service.core import BatchReport, Draft, EditionSummary, NotYetError, parse_since
from digest.service.dispatch import Dispatched

if TYPE_CHECKING:
    from digest.service.core import SourceReport


@click.command()
@click.option("--force", is_flag=True, help="Also fetch sources that are backing off after errors.")
@pass_app
def ingest(app: App, force: bool) -> None:
    """Fetch every due source and store new articles; exits 1 if any source failed (the
    others are still ingested), as `subscribers import` does for a bad row."""
    app.require_schema()  # one line, not a traceback, if the database is not set up
    reports = app.core.ingest(force=force)
    print_ingest(reports)
    failed = [r for r in reports if r.failed]
    if failed and len(failed) == len(reports):
        raise click.ClickException("every source failed")
    if failed:
        # A cron job or a script sees a broken feed by the exit status, not only in the table.
        raise click.ClickException(
            f"{plural(len(failed), 'source')} of {len(reports)} failed or backing off: "
            "`digest sources list` shows their errors"
        )


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


def edition_draft(
    app: App, list_slug: str, date: str | None, since: str | None = None
) -> tuple[Draft, int | None]:
    """The stored edition's content if it was built, else today's draft; not stored."""
    app.require_schema()  # checks the schema first
    return app.core.draft(list_slug, parse_date(date), since=_since(since))


def _since(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_since(value)
    except InputError as exc:
        raise InputError(f"--{exc}") from exc


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
@click.option("--list", "list_slug", help="The list to send (or --due).")
@click.option("--date", help="Edition date YYYY-MM-DD (default: today in the list's time zone).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; store and send nothing.")
@click.option(
    "--to",
    "to_address",
    metavar="ADDRESS",
    help="Send one test copy to ADDRESS only, without touching the ledger.",
)
@click.option(
    "--send-early",
    is_flag=True,
    help="Send a day that has not started yet in the list's time zone, with the articles "
    "there are now (refused otherwise: later ones would never be in it).",
)
@click.option(
    "--include-late",
    is_flag=True,
    help="Also send an edition already built to those who subscribed since it was built.",
)
@click.option(
    "--since",
    metavar="YYYY-MM-DD[THH:MM]",
    help="For a list's first edition only: offer the articles published since this time, in "
    "the list's time zone, instead of those of the last day. Every later edition starts where "
    "the one before it ended, so this is refused once the list has an earlier edition.",
)
@click.option(
    "--due",
    is_flag=True,
    help="Instead of --list: send every list whose send time has passed today, retry the "
    "deferred recipients due and sweep, once (for cron, where no `digest run` runs).",
)
@click.option(
    "--retry-now",
    is_flag=True,
    help="Try the edition's deferred recipients now instead of at their next try (each try "
    "still counts toward DIGEST_MAX_ATTEMPTS).",
)
@pass_app
def send(
    app: App,
    list_slug: str | None,
    date: str | None,
    dry_run: bool,
    to_address: str | None,
    send_early: bool,
    include_late: bool,
    since: str | None,
    due: bool,
    retry_now: bool,
) -> None:
    """Build a list's edition for a day and send it to every subscriber, once.

    Sending the same list and date again sends nothing new; it only finishes
    what an interrupted send left (and retries deferred recipients whose time
    has come). With a broker configured the send is queued for the workers.
    """
    if due:
        if (
            list_slug
            or date
            or dry_run
            or to_address
            or send_early
            or include_late
            or since
            or retry_now
        ):
            raise InputError("--due takes no other option: it sends every list that is due")
        from digest.cli.run import send_due_now

        send_due_now(app)
        return
    if not list_slug:
        raise InputError("name the list to send with --list (or send every due list: --due)")
    if retry_now:
        if dry_run or to_address or send_early or include_late or since:
            raise InputError("--retry-now takes only --list and --date")
        retry_deferred_now(app, list_slug, date)
    elif to_address:
        send_test_copy(app, list_slug, date, to_address)
    elif dry_run:
        dry_run_send(app, list_slug, date, since)
    else:
        send_edition(
            app, list_slug, date, send_early=send_early, include_late=include_late, since=since
        )


def send_test_copy(app: App, list_slug: str, date: str | None, to_address: str) -> None:
    draft, _ = edition_draft(app, list_slug, date)
    address, detail = app.core.send_test(draft, to_address)
    where = f" ({detail})" if not app.settings.smtp_url else ""
    click.echo(f"test copy of {list_slug} {draft.day} sent to {address}{where}")


def dry_run_send(app: App, list_slug: str, date: str | None, since: str | None = None) -> None:
    from digest.service.identity import identity_warnings

    draft, edition_id = edition_draft(app, list_slug, date, since)
    # Render for real: a broken template is found now, not by the send.
    app.core.mailer.check(draft)
    # Before anything reaches an inbox is the moment to hear about a default From or footer
    # (once the input is known to be good: a mistyped date is one line, not four).
    for line in identity_warnings(app.settings):
        click.echo(f"warning: {line}", err=True)
    click.echo(f"list {list_slug}, edition {draft.day}: {draft.subject!r}")
    if draft.window is not None:
        click.echo(f"  {draft.window_text}")
    for section in draft.sections:
        click.echo(f"  {section.name}: {plural(len(section.articles), 'article')}")
    if edition_id is not None:
        summary = app.core.summary(edition_id)
        click.echo(
            f"already built (edition {edition_id}, {summary.label}): {counts_text(summary.counts)}"
        )
        _say_late(summary.late, list_slug, draft.day.isoformat())
        return
    if not app.core.has_started(draft):
        click.echo(
            f"{draft.day} has not started yet in {draft.mailing_list.timezone}: `send` builds "
            "it on the day (or now, with --send-early)"
        )
    if not draft.sections:
        click.echo("no articles: the edition would be recorded as empty and nothing sent")
        return
    recipients = app.core.catalog.eligible_count(list_slug)
    quiet = app.core.readers_without_news(draft)
    click.echo(
        f"would send to {plural(recipients - quiet, 'subscriber')} (dry run: nothing stored or "
        "sent)"
    )
    if quiet:
        click.echo(
            f"  and not to {plural(quiet, 'subscriber')} whose sections have nothing today "
            "(--when-empty skip)"
        )


def send_edition(
    app: App,
    list_slug: str,
    date: str | None,
    *,
    send_early: bool = False,
    include_late: bool = False,
    since: str | None = None,
) -> None:
    app.require_schema()  # checks the schema first
    day = parse_date(date)
    start_at = _since(since)
    try:
        with _progress(app) as on_batch:
            start = app.core.start(
                list_slug,
                day,
                on_batch,
                send_early=send_early,
                include_late=include_late,
                since=start_at,
            )
    except NotYetError as exc:
        raise InputError(f"{exc} (--send-early sends what there is now)") from exc
    if start.empty:
        click.echo(
            f"no articles for {list_slug} on {start.day}: edition {start.edition_id} recorded "
            "as empty, nothing sent (it is built again when the day has articles)"
        )
        return
    built = "built" if start.created else "already built"
    click.echo(f"edition {start.edition_id} ({list_slug}, {start.day}) {built}")
    if start.included:
        click.echo(f"added {plural(start.included, 'subscriber')} who joined since the build")
    if start.dispatched is None:
        if start.status == "held":
            click.echo(
                f"edition {start.edition_id} is held for review: it goes when approved "
                f"(`digest review approve {start.edition_id}`)"
            )
        else:
            click.echo(f"edition {start.edition_id} is {start.status}: nothing to send")
        _say_late(start.late, list_slug, start.day.isoformat())
        return
    _say_dispatched(app, start.edition_id, start.dispatched, list_slug, start.day.isoformat())
    _say_late(start.late, list_slug, start.day.isoformat())


def retry_deferred_now(app: App, list_slug: str, date: str | None) -> None:
    """`send --retry-now`: the deferred recipients of the list's edition are tried now."""
    app.require_schema()  # checks the schema first
    summary = app.core.edition_of(list_slug, parse_date(date))
    with _progress(app) as on_batch:
        count, dispatched = app.core.retry_now(summary.id, on_batch)
    if not count:
        click.echo(f"edition {summary.id} ({list_slug}, {summary.day}) has nobody deferred")
        return
    click.echo(
        f"edition {summary.id} ({list_slug}, {summary.day}): "
        f"{plural(count, 'deferred recipient')} to be tried now"
    )
    if dispatched is None:
        click.echo(
            f"edition {summary.id} is {summary.label}: `digest resume {summary.id}` sends them"
        )
        return
    _say_dispatched(app, summary.id, dispatched, list_slug, summary.day.isoformat())


def when_words(at: dt.datetime, tz_name: str, now: dt.datetime | None = None) -> str:
    """A naive UTC time in the list's zone and in UTC: ``14:35 Asia/Karachi (09:35 UTC)``,
    with the date when it is not today there."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone: dt.tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone, tz_name = dt.UTC, "UTC"
    utc = at.replace(tzinfo=dt.UTC)
    local = utc.astimezone(zone)
    today = (now or dt.datetime.now(dt.UTC)).astimezone(zone).date()
    day = "" if local.date() == today else f"{local:%Y-%m-%d} "
    if tz_name == "UTC":
        return f"{day}{local:%H:%M} UTC"
    utc_day = "" if utc.date() == local.date() else f"{utc:%Y-%m-%d} "
    return f"{day}{local:%H:%M} {tz_name} ({utc_day}{utc:%H:%M} UTC)"


def deferred_words(row: EditionSummary) -> str | None:
    """``1 deferred, next try at 14:35 Asia/Karachi (09:35 UTC)``, or None."""
    if not row.counts["deferred"] or row.next_retry is None:
        return None
    return (
        f"{row.counts['deferred']:,} deferred, next try at "
        f"{when_words(row.next_retry, row.timezone)}"
    )


def _say_late(late: int, list_slug: str, day: str) -> None:
    if late:
        joined = plural(late, "subscriber") + (" has" if late == 1 else " have")
        click.echo(
            f"{joined} joined since this edition was built and will not get it; "
            f"`digest send --list {list_slug} --date {day} --include-late` sends it to them"
        )


def _say_dispatched(
    app: App, edition_id: int, dispatched: Dispatched, list_slug: str = "", day: str = ""
) -> None:
    """What happened to the rows handed on: queued for the workers, or sent here; and who is
    left for later (deferred by the server, held for their own time zone)."""
    summary = app.core.summary(edition_id)
    retry = f"`digest send --list {summary.list_slug} --date {summary.day} --retry-now`"
    deferred = deferred_words(summary)
    if dispatched.mode == "queued":
        queued = f"queued {plural(dispatched.batches, 'batch')} for the workers"
        silent = _silent_workers(app)
        if silent:
            click.echo(f"{queued}, but {silent}")
        else:
            click.echo(f"{queued}; watch with `digest status {edition_id} --watch`")
        if deferred:
            click.echo(f"{deferred} ({retry} tries now)")
        return
    total = dispatched.report or BatchReport()
    click.echo(f"edition {edition_id}: {report_text(total)}")
    if not app.settings.smtp_url and total.sent and list_slug:
        outbox = Path(app.settings.outbox_dir).resolve() / f"{list_slug}-{day}"
        click.echo(f"messages written to {outbox}")
    if deferred:
        click.echo(f"{deferred} ({retry} tries now)")
    if summary.held:
        click.echo(
            f"{plural(summary.held, 'recipient')} held for their own time zone's send "
            "time: the sweep, or `send` again then, sends them"
        )
    if total.claimed == 0 and not deferred and not summary.held:
        if summary.open:
            click.echo(f"nothing due here now: {counts_text(summary.counts)}")
        elif summary.counts["failed"]:
            click.echo(
                f"nothing new to send: {counts_text(summary.counts)}; "
                f"`digest retry-failed {edition_id}` tries the failed again"
            )
        else:
            click.echo("nothing new to send: every subscriber in its ledger already has it")
    if total.error:
        raise DigestError(f"sending stopped: {total.error} (unsent rows are kept; run send again)")


def _silent_workers(app: App) -> str | None:
    """``no worker has answered for 12 minutes...`` when no worker is there to take what was
    just queued; None when one answers, or that cannot be told (not a Redis broker)."""
    try:
        workers = app.core.workers()
    except DigestError as exc:
        return f"the workers could not be checked ({exc})"
    if workers is None or workers.answering:
        return None
    return workers.words()


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
    app.require_schema()  # checks the schema first
    summaries = app.core.overview(edition_id)
    if not summaries:
        click.echo("no editions yet: `digest send --list SLUG` builds and sends one")
        return
    click.echo(STATUS_HEADER)
    for row in summaries:
        click.echo(status_line(row))
        for note in status_notes(row):
            click.echo(f"{'':7}{note}")


#: Columns of `digest status`: the counts are numbers under their names, not prose.
STATUS_COLUMNS = ("sent", "deferred", "bounced", "failed", "skipped", "pending")
STATUS_HEADER = f"{'ID':>5}  {'LIST':<16} {'DATE':<10}  {'STATE':<9} " + " ".join(
    f"{name.upper():>9}" for name in STATUS_COLUMNS
)


def status_line(row: EditionSummary) -> str:
    counts = dict(row.counts, pending=row.counts["pending"] + row.counts["leased"])
    return f"{row.id:>5}  {row.list_slug:<16} {row.day!s:<10}  {row.label:<9} " + " ".join(
        f"{counts[name]:>9,}" for name in STATUS_COLUMNS
    )


def status_notes(row: EditionSummary) -> list[str]:
    """Why an edition is where it is, and what the operator can do about it."""
    notes = []
    if row.reason:
        notes.append(f"reason: {row.reason}")
    if row.held:
        notes.append(f"{plural(row.held, 'recipient')} held for their own time zone's send time")
    if row.waiting:
        notes.append(f"{row.waiting}: is `digest worker` running? (`digest doctor` checks)")
    if row.counts["deferred"] and row.next_retry is not None:
        notes.append(
            f"{plural(row.counts['deferred'], 'recipient')} deferred by the server; next try at "
            f"{when_words(row.next_retry, row.timezone)}; `digest send --list {row.list_slug} "
            f"--date {row.day} --retry-now` tries now"
        )
    if row.unanswered:
        notes.append(
            f"{plural(row.unanswered, 'recipient')} may get a second copy: the connection was "
            "lost after their message went out, before the server answered, so it is sent again"
        )
    if row.nothing_for:
        notes.append(
            f"{plural(row.nothing_for, 'reader')} got no mail: their sections had nothing "
            "(skipped, as the list's --when-empty skip says)"
        )
    if row.label == "failed" and row.paused:
        notes.append(f"fix the cause, then `digest resume {row.id}`")
    elif row.label == "failed" and row.counts["failed"]:
        notes.append(f"`digest retry-failed {row.id}` tries the failed recipients again")
    elif row.label == "failed":
        notes.append(f"`digest send --list {row.list_slug} --date {row.day}` continues it")
    if row.late:
        joined = plural(row.late, "subscriber") + (" has" if row.late == 1 else " have")
        notes.append(
            f"{joined} joined since the build: `digest send --list {row.list_slug} "
            f"--date {row.day} --include-late`"
        )
    return notes


def watch_edition(app: App, edition_id: int, interval: float) -> None:
    """Redraw the edition's progress until it is done or cancelled (Ctrl-C stops watching)."""
    live = sys.stdout.isatty()
    samples: list[tuple[float, int]] = []
    app.require_schema()  # checks the schema first
    try:
        while True:
            summary = app.core.summary(edition_id)
            counts, reason = summary.counts, summary.reason
            handled = counts["sent"] + counts["bounced"] + counts["failed"] + counts["skipped"]
            samples = [*samples, (time.monotonic(), handled)][-10:]
            (t0, n0), (t1, n1) = samples[0], samples[-1]
            rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
            line = f"{summary.label:<9} {progress_line(counts, rate)}"
            for note in (reason, summary.waiting):
                if note:
                    line += f"  ({note})"
            click.echo(f"\r{line}\x1b[K" if live else line, nl=not live)
            if not (summary.sending or summary.paused):
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
    app.require_schema()  # checks the schema first
    app.core.pause(edition_id)
    click.echo(f"edition {edition_id} paused")


@click.command(cls=NumberArgs)
@EDITION
@pass_app
def resume(app: App, edition_id: int) -> None:
    """Continue a paused send from where it stopped (nobody gets it twice)."""
    app.require_schema()  # checks the schema first
    with _progress(app) as on_batch:
        dispatched = app.core.resume(edition_id, on_batch)
    click.echo(f"edition {edition_id} resumed")
    _say_dispatched(app, edition_id, dispatched)


@click.command(cls=NumberArgs)
@EDITION
@pass_app
def cancel(app: App, edition_id: int) -> None:
    """Stop a send for good: recipients not yet sent to are skipped."""
    app.require_schema()  # checks the schema first
    skipped = app.core.cancel(edition_id)
    click.echo(f"edition {edition_id} cancelled; {plural(skipped, 'unsent recipient')} skipped")


@click.command("retry-failed", cls=NumberArgs)
@EDITION
@pass_app
def retry_failed(app: App, edition_id: int) -> None:
    """Send again to the recipients of an edition that failed, and only to them."""
    app.require_schema()  # checks the schema first
    with _progress(app) as on_batch:
        count, dispatched = app.core.retry_failed(edition_id, on_batch)
    click.echo(f"edition {edition_id}: {plural(count, 'failed recipient')} queued again")
    if dispatched is not None:
        _say_dispatched(app, edition_id, dispatched)


@click.group()
def edition() -> None:
    """Fix an edition nobody has received yet: build it again, or drop it.

    Both are refused once anyone was sent the edition, or is being sent it, or was tried
    (a server deferred or refused it): then only `digest cancel` stops it.
    """


@edition.command("rebuild")
@EDITION
@click.option(
    "--send-early",
    is_flag=True,
    help="Allow it for a day that has not started yet in the list's time zone.",
)
@pass_app
def edition_rebuild(app: App, edition_id: int, send_early: bool) -> None:
    """Build EDITION's day again from the articles there are now, and send it."""
    app.require_schema()  # checks the schema first
    try:
        with _progress(app) as on_batch:
            start = app.core.rebuild_edition(edition_id, on_batch, send_early=send_early)
    except NotYetError as exc:
        raise InputError(f"{exc} (--send-early rebuilds it anyway)") from exc
    day = start.day.isoformat()
    if start.empty:
        click.echo(
            f"edition {edition_id} dropped; {start.list_slug} {day} has no articles: "
            f"edition {start.edition_id} recorded as empty, nothing sent"
        )
        return
    # SQLite may give the new edition the old one's id (the old row is gone).
    as_new = f" as edition {start.edition_id}" if start.edition_id != edition_id else ""
    click.echo(f"edition {edition_id} rebuilt{as_new} ({start.list_slug}, {day})")
    if start.dispatched is not None:
        _say_dispatched(app, start.edition_id, start.dispatched, start.list_slug, day)


@edition.command("drop")
@EDITION
@pass_app
def edition_drop(app: App, edition_id: int) -> None:
    """Delete EDITION and its unsent ledger rows; its day can then be sent afresh."""
    app.require_schema()  # checks the schema first
    slug, day, rows = app.core.drop_edition(edition_id)
    click.echo(
        f"edition {edition_id} ({slug}, {day}) dropped with {plural(rows, 'unsent recipient')}"
        f"; `digest send --list {slug} --date {day}` builds it again"
    )
