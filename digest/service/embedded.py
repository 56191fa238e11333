"""The embedded default's scheduled work: each job of the table (``digest.service.jobs``) as an
action on a ``Digest``, for ``digest run`` (every interval) and ``digest send --due`` (once),
with the lines an operator reads about what each did.

Beat queues the same jobs as Celery tasks; here they run in this process: ingest fetches,
the due-send check builds and sends, and the sweep sends the rows nobody is working on
(deferred recipients whose retry time has come, rows held for a subscriber's own time zone,
rows given back by a stopped send). A send started here goes through ``StoppableTransport``,
so stopping ``digest run`` ends it before its next message, and the batch gives its unsent
rows back to the ledger at once (``send_batch`` releases them on any exception).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from types import TracebackType
from typing import Self

from sqlalchemy import select

from digest.config import Settings
from digest.edition.select import zone
from digest.send import schedule
from digest.send.batch import BatchReport
from digest.service.core import Digest
from digest.service.dispatch import (
    Dispatched,
    IngestOne,
    InProcessDispatcher,
    NotifyOne,
    OnBatch,
    SendAll,
)
from digest.service.jobs import INGEST, JOBS, SEND_DUE, SWEEP
from digest.service.notices import Notice
from digest.service.scheduler import Action, Scheduled
from digest.store.models import Edition, EditionStatus, MailingList, utcnow
from digest.transports import Envelope, SendResult, Transport, transport_for

#: Lists named in the first line and the idle line; the others are counted.
LISTS_SHOWN = 5


class Stopping(Exception):
    """The process is stopping: a send ends before its next message. Not a DigestError (the
    operator did nothing wrong) and not a TransportError (it must not count as the relay's
    failure, pause the edition or be retried)."""

    def __init__(self, label: str) -> None:
        super().__init__(f"{label}: stopped before its next message")
        self.label = label


class StoppableTransport:
    """A transport that refuses to start another message once ``stop`` is set."""

    def __init__(self, inner: Transport, stop: threading.Event) -> None:
        self.inner = inner
        self.stop = stop

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        if self.stop.is_set():
            raise Stopping(envelope.label)
        return self.inner.send(envelope, message)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> Self:
        self.inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inner.__exit__(exc_type, exc, tb)


class ReportingDispatcher(InProcessDispatcher):
    """Sends in this process, as the CLI does, and keeps each send's report for the thread (the
    job) that asked: core calls return edition ids, and a job's line says what it sent."""

    def __init__(self, send_all: SendAll, ingest_one: IngestOne, notify_one: NotifyOne) -> None:
        super().__init__(send_all, ingest_one, notify_one)
        self._local = threading.local()

    def send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        dispatched = super().send(edition_id, rows, on_batch)
        self._reports().append((edition_id, dispatched.report or BatchReport()))
        return dispatched

    def take(self) -> dict[int, BatchReport]:
        """This thread's reports since the last ``take``, summed per edition."""
        reports = self._reports()
        totals: dict[int, BatchReport] = {}
        for edition_id, report in reports:
            totals.setdefault(edition_id, BatchReport()).add(report)
        reports.clear()
        return totals

    def _reports(self) -> list[tuple[int, BatchReport]]:
        if not hasattr(self._local, "reports"):
            self._local.reports = []
        reports: list[tuple[int, BatchReport]] = self._local.reports
        return reports


def embedded_core(
    settings: Settings, stop: threading.Event
) -> tuple[Digest, ReportingDispatcher | None]:
    """A core whose in-process sends end, rows given back, once ``stop`` is set, and its
    reporting dispatcher (None on a broker: the workers send, and report nothing here)."""
    core: Digest | None = None

    def send_all(edition_id: int, on_batch: OnBatch | None) -> BatchReport:
        assert core is not None
        return core.send_all(edition_id, on_batch)

    def ingest_one(source_id: int) -> object:
        assert core is not None
        return core.ingest_source(source_id)

    def notify_one(notice: Notice) -> None:
        assert core is not None
        core.send_notice(notice)

    reporting = (
        None if settings.uses_broker else ReportingDispatcher(send_all, ingest_one, notify_one)
    )
    core = Digest(
        settings,
        transport_factory=lambda: StoppableTransport(transport_for(settings), stop),
        dispatcher=reporting,
    )
    return core, reporting


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}" + ("" if number == 1 else "s")


def _counts(counts: dict[str, int]) -> str:
    shown = dict(counts, pending=counts.get("pending", 0) + counts.get("leased", 0))
    names = ("sent", "deferred", "bounced", "failed", "skipped", "pending")
    return ", ".join(f"{shown[n]:,} {n}" for n in names if shown.get(n)) or "nothing due yet"


def _every(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def _span(delta: dt.timedelta) -> str:
    # Rounded up: "in 1 min" a minute and 50 seconds ahead would be read as too soon.
    minutes = max(math.ceil(delta.total_seconds() / 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class EmbeddedJobs:
    """The table's jobs on ``core``; remembers what it already said, so a line is news.

    The due sends and the sweep take turns (one lock): a freshly built edition looks stalled
    to the sweep until its first claim, and the two would otherwise race for its rows.
    """

    def __init__(self, core: Digest, reporting: ReportingDispatcher | None) -> None:
        self.core = core
        self.reporting = reporting
        self._sending = threading.Lock()
        #: (list id, day) whose empty edition was already reported.
        self._said_empty: set[tuple[int, dt.date]] = set()
        #: On a broker: each edition's counts when last reported by the sweep.
        self._sweep_counts: dict[int, dict[str, int]] = {}
        #: Editions reported in a failed state (``send --due`` exits 1 for them).
        self.failed: set[int] = set()

    def actions(self) -> dict[str, Action]:
        return {INGEST.name: self.ingest, SEND_DUE.name: self.send_due, SWEEP.name: self.sweep}

    def scheduled(self) -> list[Scheduled]:
        """Every job of the table with its action here, in the table's order."""
        actions = self.actions()
        missing = [job.name for job in JOBS if job.name not in actions]
        if missing:
            raise LookupError(f"no embedded action for job {', '.join(missing)}")
        return [Scheduled(job, actions[job.name]) for job in JOBS]

    # -- the jobs ---------------------------------------------------------------------------
    def ingest(self, now: dt.datetime) -> list[str]:
        if self.core.settings.uses_broker:
            self.core.ingest_due(now)
            return []
        reports = self.core.ingest()
        new = sum(r.new for r in reports)
        failed = [r for r in reports if r.error]
        if not new and not failed:
            return []
        line = f"ingest: {_count(new, 'new article')} from {_count(len(reports), 'source')}"
        if failed:
            names = "; ".join(f"{r.name[:40]}: {(r.error or '')[:80]}" for r in failed[:3])
            more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
            line += f"; {len(failed)} failed ({names}{more})"
        return [line]

    def send_due(self, now: dt.datetime) -> list[str]:
        return self._send_due(now, say_empty=True)

    def _send_due(self, now: dt.datetime, *, say_empty: bool) -> list[str]:
        due = schedule.due_lists(self.core.db, now) if say_empty else []
        with self._sending:
            self._take()
            try:
                started = self.core.send_due(now)
            except Stopping as exc:
                return [self._stopped(exc)]
            reports = self._take()
        how = " queued for the workers" if self.reporting is None else ""
        lines = [self._edition_line(eid, reports.get(eid), how) for eid in started]
        return lines + self._empty(due)

    def sweep(self, now: dt.datetime) -> list[str]:
        with self._sending:
            self._take()
            try:
                resumed = self.core.sweep(now)
            except Stopping as exc:
                return [self._stopped(exc)]
            reports = self._take()
        if self.reporting is not None:
            return [
                self._edition_line(edition_id, report, " continued")
                for edition_id, report in reports.items()
                if report.claimed
            ]
        lines = []
        for edition_id in resumed:
            counts = self.core.counts(edition_id)
            # A send that keeps failing is swept again and again: say so when it changes.
            if counts != self._sweep_counts.get(edition_id):
                self._sweep_counts[edition_id] = counts
                lines.append(self._edition_line(edition_id, None, " requeued by the sweep"))
        return lines

    def due_once(self, now: dt.datetime | None = None) -> list[str]:
        """``send --due``: the due sends, then the sweep (due retries), once each (``now``:
        default the present). An empty day is not reported: from cron, that would be a line
        every minute until it has articles."""
        now = now or utcnow()
        return self._send_due(now, say_empty=False) + self.sweep(now)

    def _take(self) -> dict[int, BatchReport]:
        return self.reporting.take() if self.reporting is not None else {}

    # -- lines ------------------------------------------------------------------------------
    def plan(self, now: dt.datetime) -> str:
        """The first line: what runs how often, and when each list next sends."""
        jobs = ", ".join(f"{job.does} every {_every(job.every)}" for job in JOBS)
        return f"scheduling {jobs}; {self.next_sends(now)}"

    def next_sends(self, now: dt.datetime) -> str:
        """When each enabled list sends next: "daily 2026-01-06 07:00 Asia/Karachi (in 3 h)"."""
        due = set(schedule.due_lists(self.core.db, now))
        with self.core.db.session() as session:
            lists = session.execute(
                select(MailingList.id, MailingList.slug, MailingList.timezone, MailingList.send_at)
                .where(MailingList.enabled)
                .order_by(MailingList.slug)
            ).all()
            recent = now.date() - dt.timedelta(days=1)
            built = set(
                session.execute(
                    select(Edition.list_id, Edition.edition_date).where(
                        Edition.edition_date >= recent, Edition.status != EditionStatus.EMPTY
                    )
                ).all()
            )
        if not lists:
            return "no lists to send yet (`digest lists add`)"
        utc_now = now.replace(tzinfo=dt.UTC)
        shown = []
        for list_id, slug, tz_name, send_at in lists[:LISTS_SHOWN]:
            tz = zone(tz_name)
            local = utc_now.astimezone(tz)
            hour, minute = (int(part) for part in send_at.split(":"))
            at = dt.datetime.combine(local.date(), dt.time(hour, minute), tzinfo=tz)
            if (list_id, local.date()) in built or (
                local >= at and (list_id, local.date()) not in due
            ):
                # Sent today already, or made after today's time: tomorrow.
                at = dt.datetime.combine(
                    local.date() + dt.timedelta(days=1), dt.time(hour, minute), tzinfo=tz
                )
            elif (list_id, local.date()) in due:
                shown.append(f"{slug} now (due since {send_at} {tz_name})")
                continue
            # Subtracted in UTC: two times of one zone subtract as wall clocks, DST ignored.
            wait = at.astimezone(dt.UTC) - utc_now
            shown.append(f"{slug} {at:%Y-%m-%d %H:%M} {tz_name} (in {_span(wait)})")
        more = f" and {len(lists) - LISTS_SHOWN} more" if len(lists) > LISTS_SHOWN else ""
        return "next sends: " + ", ".join(shown) + more

    def _edition_line(self, edition_id: int, report: BatchReport | None, how: str = "") -> str:
        """What a run did to an edition: what it sent here (``report``), or on a broker the
        edition's counts. ``how``: " continued", " queued for the workers", ..."""
        summary = self.core.overview(edition_id)[0]
        if report is None:
            counts = _counts(summary.counts)
        else:
            counts = _counts(
                {
                    "sent": report.sent,
                    "deferred": report.deferred,
                    "bounced": report.bounced,
                    "failed": report.failed,
                    "skipped": report.skipped,
                }
            )
        line = f"{summary.list_slug} {summary.day}: edition {summary.id}{how}: {counts}"
        if summary.held:
            line += f"; {summary.held:,} held for their own time zone's send time"
        if summary.label == "failed" or (report is not None and report.error):
            self.failed.add(edition_id)
            reason = (report.error if report is not None else None) or summary.reason
            line += f"; FAILED: {reason or 'see `digest status`'}"
        return line

    def _empty(self, due: list[tuple[int, dt.date]]) -> list[str]:
        """Each due list whose day has no articles yet, once a day: otherwise 07:00 passes
        without a word."""
        fresh = [key for key in due if key not in self._said_empty]
        if not fresh:
            return []
        with self.core.db.session() as session:
            rows = session.execute(
                select(MailingList.id, MailingList.slug, Edition.edition_date)
                .join(Edition, Edition.list_id == MailingList.id)
                .where(Edition.status == EditionStatus.EMPTY)
                .where(MailingList.id.in_([list_id for list_id, _ in fresh]))
            ).all()
        lines = []
        for list_id, slug, day in rows:
            if (list_id, day) in fresh:
                self._said_empty.add((list_id, day))
                lines.append(
                    f"{slug} {day}: no articles yet, nothing sent; built again every "
                    f"{_every(SEND_DUE.every)} until the day has some"
                )
        return lines

    @staticmethod
    def _stopped(exc: Stopping) -> str:
        return f"{exc.label}: send stopped by the shutdown; its unsent rows are back in the ledger"
