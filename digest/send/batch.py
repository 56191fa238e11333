"""Sending an edition: claim a batch from the ledger, personalise, deliver, record each outcome.

Per recipient there is only what ``EditionMailer`` does cheaply (a token, a join of ready
segments, a signature) and the socket write. Outcomes are committed in small groups
(``commit_every`` messages or ``commit_interval`` seconds, whichever comes first), and a
heartbeat thread keeps the batch's lease alive while it works, so a lease can be short and a
dead worker's rows come back quickly.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import cast

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import ledger
from digest.edition.build import Draft, stored_draft
from digest.edition.state import TRANSPORT_ERROR
from digest.errors import DigestError, TransportError
from digest.mail.mime import Recipient
from digest.send.mailer import EditionMailer, mail_domain
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from digest.transports.base import Envelope, Outcome, Transport

log = logging.getLogger(__name__)

_NO_WAL_FLUSH = "SET LOCAL synchronous_commit TO off"


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = None

    def add(self, other: BatchReport) -> None:
        for name in ("claimed", "sent", "deferred", "bounced", "failed", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.error = other.error or self.error


@dataclass
class _Row:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    sections: list[str] | None
    reason_to_skip: str | None


@dataclass
class Batch:
    """What every message of one claimed batch shares: the edition, its draft, the
    transport and the lease, and the report the outcomes are counted in."""

    session: Session
    mailer: EditionMailer
    edition: Edition
    draft: Draft
    transport: Transport
    owner: str
    #: The outbox folder's name for this send ("daily-2026-11-24").
    label: str
    #: The domain Message-IDs are made in.
    domain: str
    #: One Date header for the batch: formatting it per message costs more than it is worth.
    date: str
    report: BatchReport
    lease: Heartbeat
    outcomes: OutcomeLog

    @property
    def settings(self) -> Settings:
        return self.mailer.settings


def send_batch(
    db: Database,
    mailer: EditionMailer,
    edition_id: int,
    transport: Transport,
    *,
    limit: int | None = None,
) -> BatchReport:
    """Claim up to one batch of due rows and send them over ``transport``.

    Returns what happened; ``claimed == 0`` means nothing is due (done, paused,
    or waiting for deferred retries). A transport failure stops the batch and
    gives its unsent rows back to the ledger; so does any other crash inside
    the batch, which is then raised.
    """
    settings = mailer.settings
    report = BatchReport()
    lease = dt.timedelta(seconds=settings.lease_seconds)
    # One connection for the whole batch: every outcome is committed on it,
    # without a trip through the pool (and its ping) per recipient.
    with db.engine.connect() as connection, db.sessionmaker(bind=connection) as session:
        edition = session.get(Edition, edition_id)
        # A task queued for an edition that was dropped (or rebuilt) since finds nothing.
        if edition is None or edition.status != EditionStatus.READY:
            return report
        owner, ids = ledger.claim(session, edition_id, limit or settings.batch_size, lease)
        report.claimed = len(ids)
        if not ids:
            ledger.finish_if_done(session, edition)
            return report
        remaining = list(ids)
        outcomes = OutcomeLog(
            session,
            settings.commit_every,
            settings.commit_interval,
            synchronous=settings.synchronous_commit != "off",
        )
        heartbeat = Heartbeat(db, edition_id, owner, ids, lease, settings.batch_stuck_seconds)
        heartbeat.start()
        try:
            draft = stored_draft(session, settings, edition)
            batch = Batch(
                session=session,
                mailer=mailer,
                edition=edition,
                draft=draft,
                transport=transport,
                owner=owner,
                label=f"{draft.mailing_list.slug}-{edition.edition_date.isoformat()}",
                domain=mail_domain(settings, draft.mailing_list),
                date=formatdate(usegmt=True),
                report=report,
                lease=heartbeat,
                outcomes=outcomes,
            )
            _send_rows(batch, _load_rows(session, edition, ids), remaining)
            outcomes.commit()
        except BaseException:
            # Whatever broke (a bug, a lost database, a signal), the rows this batch did not
            # finish go back to the ledger now rather than when the lease runs out; outcomes
            # not yet committed are kept if the database still takes them, else those rows
            # go back too (and are sent again: at most one commit group).
            heartbeat.stop()
            remaining.extend(outcomes.save_or_forget())
            ledger.release(session, owner, remaining)
            raise
        finally:
            heartbeat.stop()
        ledger.release(session, owner, remaining)
        ledger.finish_if_done(session, edition)
        log.info(
            "edition %s: batch of %s: %s sent, %s deferred, %s bounced, %s failed, %s skipped",
            edition_id,
            report.claimed,
            report.sent,
            report.deferred,
            report.bounced,
            report.failed,
            report.skipped,
            extra={"edition_id": edition_id, "batch_id": owner},
        )
    return report


class OutcomeLog:
    """Writes and commits outcomes in groups: after ``every`` messages or ``interval`` seconds
    since the oldest uncommitted one, whichever comes first. The group's UPDATEs go in one
    round trip at commit time: until the commit they would be lost in a crash anyway.

    A commit per message is what made the database, not SMTP, the limit of the send loop. The
    price of grouping: a worker killed between commits loses up to ``every`` recorded
    outcomes; those rows are still leased to it, so they come back when the lease runs out and
    are sent again. ``every = 1`` is a commit per message (a resend only of the message in
    flight).
    """

    def __init__(
        self, session: Session, every: int, interval: float, *, synchronous: bool = True
    ) -> None:
        self.session = session
        self.every = max(every, 1)
        self.interval = interval
        # SET LOCAL, not a session SET: it ends with the transaction, so it never leaks into
        # the pool, and it is safe behind a PgBouncer in transaction mode.
        self.asynchronous = not synchronous and session.get_bind().dialect.name == "postgresql"
        self.pending: list[dict[str, object]] = []
        self._oldest = 0.0

    def add(self, outcome: dict[str, object]) -> None:
        """One outcome to record; the group is written and committed once it is full."""
        if not self.pending:
            self._oldest = time.monotonic()
        self.pending.append(outcome)
        if len(self.pending) >= self.every or time.monotonic() - self._oldest >= self.interval:
            self.commit()

    def commit(self) -> None:
        """Write the group's outcomes (one round trip) and commit them."""
        if self.pending:
            ledger.record_all(self.session, self.pending)
            if self.asynchronous:
                # Read at COMMIT time, so setting it after the UPDATEs still applies.
                self.session.connection().exec_driver_sql(_NO_WAL_FLUSH)
        self.session.commit()
        self.pending.clear()

    def save_or_forget(self) -> list[int]:
        """After a crash in the batch: commit what was recorded if the database still lets us;
        else roll back and return the rows whose outcomes were lost."""
        lost = [cast(int, outcome["row_id"]) for outcome in self.pending]
        try:
            self.commit()
        except Exception:
            log.warning("batch: %s recorded outcomes lost; their rows will be resent", len(lost))
            self.session.rollback()
            self.pending.clear()
            return lost
        return []


class Heartbeat:
    """Keeps a batch's lease alive while the batch is working: a thread that extends the
    ``lease_until`` of the rows it still holds every third of the lease.

    So the lease can be short (a worker that dies loses its rows for at most one lease) while a
    batch may take as long as it needs: slowed by a rate limit, or by a slow server. A thread,
    not a check between messages, because one message can block (a stalled SMTP write) for
    longer than a lease. But a batch stuck on one message for ``stuck_after`` seconds is
    presumed hung: renewal stops, its rows go to another worker when the lease runs out, and
    the batch itself stops before its next message (``held`` turns false) rather than send
    rows that may now be someone else's.
    """

    def __init__(
        self,
        db: Database,
        edition_id: int,
        owner: str,
        ids: list[int],
        lease: dt.timedelta,
        stuck_after: float,
    ) -> None:
        self.db = db
        self.edition_id = edition_id
        self.owner = owner
        self.ids = ids
        self.lease = lease
        self.stuck_after = stuck_after
        self.every = lease.total_seconds() / 3
        now = time.monotonic()
        #: When the rows were last known to be ours until ``+ lease`` (the claim, a renewal).
        self.renewed_at = now
        self._progress_at = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{owner[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def progress(self) -> None:
        """The batch finished a message: it is not hung."""
        self._progress_at = time.monotonic()

    @property
    def held(self) -> bool:
        """Whether the lease is surely still ours: renewed less than a lease ago, less a third
        for the clocks of other hosts and the time the next message takes."""
        return time.monotonic() - self.renewed_at < self.lease.total_seconds() - self.every

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if time.monotonic() - self._progress_at > self.stuck_after:
                log.error(
                    "edition %s: batch stuck on one message for %.0f s; letting its lease go",
                    self.edition_id,
                    time.monotonic() - self._progress_at,
                    extra={"edition_id": self.edition_id, "batch_id": self.owner},
                )
                return
            started = time.monotonic()
            try:
                with self.db.engine.connect() as connection:
                    held = ledger.renew(
                        connection, self.edition_id, self.owner, self.ids, self.lease
                    )
            except Exception as exc:  # the database is away: try again next beat
                log.warning(
                    "edition %s: lease renewal failed: %s",
                    self.edition_id,
                    exc,
                    extra={"edition_id": self.edition_id, "batch_id": self.owner},
                )
                continue
            if not held:
                # None of the rows still to send is ours any more (the lease lapsed and another
                # batch took them over): this batch must not send them too.
                self.renewed_at = float("-inf")
                return
            self.renewed_at = started


def _send_rows(batch: Batch, rows: list[_Row], remaining: list[int]) -> None:
    """Send each row in turn, taking it off ``remaining`` once its outcome is recorded."""
    edition_id, settings = batch.edition.id, batch.settings
    streaks = _Streaks(batch.edition.transport_error_streak, batch.edition.refusal_streak)
    try:
        for row in rows:
            if not batch.lease.held:
                batch.report.error = "lease lost (the batch was stuck or the database away)"
                log.error(
                    "edition %s: batch stopped: its lease may have run out",
                    edition_id,
                    extra={"edition_id": edition_id, "batch_id": batch.owner},
                )
                return
            outcome = _send_one(batch, row)
            remaining.remove(row.delivery_id)
            batch.lease.progress()
            reason = streaks.after(batch.session, batch.edition, outcome, settings)
            if reason:
                _pause(batch.session, edition_id, reason)
                batch.report.error = reason
                return
    except TransportError as exc:
        batch.report.error = str(exc)
        log.warning(
            "edition %s: batch stopped: %s",
            edition_id,
            exc,
            extra={"edition_id": edition_id, "batch_id": batch.owner},
        )
        reason = streaks.after_transport_error(batch.session, batch.edition, str(exc), settings)
        if reason:
            _pause(batch.session, edition_id, reason)
        else:
            # Kept on the edition so `digest status` can say why it stopped.
            _set_ready_reason(batch.session, edition_id, f"{TRANSPORT_ERROR}{exc}")


def _send_one(batch: Batch, row: _Row) -> Outcome | None:
    """Send one row and record its outcome; None when nothing was sent (skipped, unbuildable)."""
    session, report, mailer = batch.session, batch.report, batch.mailer
    if row.reason_to_skip:
        batch.outcomes.add(
            ledger.outcome(row.delivery_id, DeliveryStatus.SKIPPED, error=row.reason_to_skip)
        )
        report.skipped += 1
        return None
    edition = batch.edition
    msg_id = mailer.message_id(edition.id, row.delivery_id, batch.domain)
    try:
        template = mailer.template_for(edition.id, batch.draft, row.sections)
        message = template.build(
            Recipient(
                row.email,
                row.name,
                mailer.personal_links(
                    row.subscriber_id,
                    edition.list_id,
                    template=template,
                    edition_id=edition.id,
                    delivery_id=row.delivery_id,
                ),
                msg_id,
            ),
            batch.date,
        )
    except DigestError as exc:
        batch.outcomes.add(ledger.outcome(row.delivery_id, DeliveryStatus.FAILED, error=str(exc)))
        report.failed += 1
        return None
    mailer.rate_limiter.wait(row.email.rpartition("@")[2])
    result = batch.transport.send(
        Envelope(mailer.return_path(template, row.delivery_id), row.email, batch.label), message
    )
    if result.outcome == Outcome.SENT:
        batch.outcomes.add(ledger.outcome(row.delivery_id, DeliveryStatus.SENT, message_id=msg_id))
        report.sent += 1
    elif result.outcome == Outcome.DEFERRED:
        attempts = _attempts(session, row.delivery_id) + 1
        if attempts >= batch.settings.max_attempts:
            batch.outcomes.add(
                ledger.outcome(
                    row.delivery_id, DeliveryStatus.FAILED, error=_why(result.code, result.detail)
                )
            )
            report.failed += 1
        else:
            retry_at = utcnow() + ledger.retry_delay(attempts, batch.settings.retry_base_seconds)
            batch.outcomes.add(
                ledger.outcome(
                    row.delivery_id,
                    DeliveryStatus.DEFERRED,
                    error=_why(result.code, result.detail),
                    retry_at=retry_at,
                )
            )
            report.deferred += 1
    elif result.outcome == Outcome.FAILED:
        # The server refused our message itself (too big, malformed): the address is fine,
        # so it is not suppressed, and `retry-failed` can send again once that is fixed.
        ledger.record(
            session, row.delivery_id, DeliveryStatus.FAILED, error=_why(result.code, result.detail)
        )
        report.failed += 1
    else:
        _bounce(batch, row, _why(result.code, result.detail))
        report.bounced += 1
    return result.outcome


@dataclass
class _Streaks:
    """The edition's runs of failures, updated in the database only when they change."""

    transport_errors: int
    refusals: int

    def after(
        self, session: Session, edition: Edition, outcome: Outcome | None, settings: Settings
    ) -> str | None:
        """Count one recipient's outcome; returns a pause reason when the run is too long."""
        if outcome is None:
            return None
        if outcome == Outcome.SENT:
            if self.transport_errors or self.refusals:
                self.transport_errors = self.refusals = 0
                _set_streaks(session, edition.id, transport_error_streak=0, refusal_streak=0)
                _set_ready_reason(session, edition.id, None)
            return None
        self.refusals = _bump(session, edition.id, "refusal_streak")
        if self.refusals >= settings.pause_after_refusals:
            return f"paused: {self.refusals} recipients refused in a row"
        return None

    def after_transport_error(
        self, session: Session, edition: Edition, error: str, settings: Settings
    ) -> str | None:
        self.transport_errors = _bump(session, edition.id, "transport_error_streak")
        if self.transport_errors >= settings.pause_after_errors:
            return f"paused: {self.transport_errors} transport errors in a row; last: {error}"
        return None


def _bump(session: Session, edition_id: int, column: str) -> int:
    """Add one to an edition's streak column atomically and return the new value."""
    field_ = getattr(Edition, column)
    value = session.execute(
        update(Edition)
        .where(Edition.id == edition_id)
        .values({column: field_ + 1})
        .returning(field_)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.commit()
    return int(value)


def _set_streaks(session: Session, edition_id: int, **values: int) -> None:
    session.execute(
        update(Edition)
        .where(Edition.id == edition_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _set_ready_reason(session: Session, edition_id: int, reason: str | None) -> None:
    session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.READY)
        .values(status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _pause(session: Session, edition_id: int, reason: str) -> None:
    session.execute(
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.READY)
        .values(status=EditionStatus.PAUSED, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    log.error("edition %s %s", edition_id, reason, extra={"edition_id": edition_id})


def _why(code: int | None, detail: str) -> str:
    return f"{code} {detail}".strip()


def _attempts(session: Session, delivery_id: int) -> int:
    return int(session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) or 0)


def _bounce(batch: Batch, row: _Row, reason: str) -> None:
    """A permanent refusal: the address is suppressed and the subscriber marked bounced."""
    session = batch.session
    if session.scalar(select(Suppression.id).where(Suppression.email == row.email)) is None:
        session.add(Suppression(email=row.email, reason=f"bounced: {reason}"[:500]))
    subscriber = session.get_one(Subscriber, row.subscriber_id)
    subscriber.status = SubscriberStatus.BOUNCED
    session.flush()
    batch.outcomes.add(ledger.outcome(row.delivery_id, DeliveryStatus.BOUNCED, error=reason))


def _load_rows(session: Session, edition: Edition, ids: Iterable[int]) -> list[_Row]:
    """The claimed rows with what sending needs, and whether each should now be skipped:
    an unsubscribe or suppression that landed after the ledger was written is honoured."""
    query = (
        select(
            Delivery.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.status,
            Subscription.status,
            Subscription.sections,
            Suppression.id,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .outerjoin(
            Subscription,
            and_(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.list_id == edition.list_id,
            ),
        )
        .outerjoin(Suppression, Suppression.email == Subscriber.email)
        .where(Delivery.id.in_(list(ids)))
        .order_by(Delivery.id)
    )
    rows = []
    for did, sid, email, name, sub_status, subn_status, sections, suppressed in session.execute(
        query
    ):
        reason = None
        if suppressed is not None:
            reason = "address suppressed"
        elif sub_status != SubscriberStatus.ACTIVE:
            reason = f"subscriber {sub_status}"
        elif subn_status != SubscriptionStatus.CONFIRMED:
            reason = "no longer subscribed to this list"
        rows.append(_Row(did, sid, email, name or "", sections, reason))
    return rows


def send_until_done(
    db: Database,
    mailer: EditionMailer,
    edition_id: int,
    transport_factory: Callable[[], Transport],
    on_batch: Callable[[BatchReport], None] | None = None,
    *,
    retries: int = 0,
    backoff: Callable[[int], float] = lambda attempt: 2.0**attempt,
) -> BatchReport:
    """Send batch after batch in this process until nothing is due (the embedded default).

    A transport failure is retried ``retries`` times after ``backoff(n)``
    seconds, on a fresh connection. Rows deferred for later, or waiting for a
    subscriber's own send time, stay in the ledger; sending the same edition
    again picks them up once they are due.
    """
    total = BatchReport()
    failures = 0
    while True:
        with transport_factory() as transport:
            report = send_batch(db, mailer, edition_id, transport)
        total.add(report)
        if on_batch:
            on_batch(report)
        if report.error:
            failures += 1
            if failures > retries or not is_sending(db, edition_id):
                return total
            time.sleep(backoff(failures))
            total.error = None
            continue
        failures = 0
        if report.claimed == 0:
            return total


def is_sending(db: Database, edition_id: int) -> bool:
    """Whether the edition is still to be sent (not paused, cancelled or done)."""
    with db.session() as session:
        edition = session.get(Edition, edition_id)
        return edition is not None and edition.status == EditionStatus.READY
