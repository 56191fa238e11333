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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from digest.audience import hard_bounce, skip_reason
from digest.config import Settings
from digest.edition import ledger, lifecycle
from digest.edition.build import Draft, stored_draft
from digest.edition.select import NOTHING_IN_SECTIONS
from digest.errors import DigestError, TransportError
from digest.mail.mime import Recipient
from digest.send.lease import Heartbeat
from digest.send.mailer import EditionMailer, mail_domain
from digest.send.outcomes import OutcomeLog, Streaks
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)
from digest.transports.base import Envelope, Outcome, Transport

log = logging.getLogger(__name__)

#: Seconds before a message the relay never answered is tried again (doubling with each
#: attempt, at most DIGEST_RETRY_BASE_SECONDS): soon, since a relay that drops connections
#: usually recovers in seconds, and its recipients should not wait for a 4xx's backoff.
UNANSWERED_RETRY_SECONDS = 5.0


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
            lifecycle.finish_if_done(session, edition)
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
        lifecycle.finish_if_done(session, edition)
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


def _send_rows(batch: Batch, rows: list[_Row], remaining: list[int]) -> None:
    """Send each row in turn, taking it off ``remaining`` once its outcome is recorded.

    A transport failure stops the batch, and its rows go back to the ledger at once (the
    caller releases ``remaining``) for the next batch or the task's quick retry. The row in
    flight goes back too, unless its message went out whole and no answer came: then it is
    recorded as an unanswered attempt (``_unanswered``).
    """
    edition_id, settings = batch.edition.id, batch.settings
    streaks = Streaks(
        batch.edition.transport_error_streak,
        batch.edition.refusal_streak,
        batch.edition.transport_errors_since,
    )
    row: _Row | None = None
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
            pause = streaks.after(batch.session, batch.edition, outcome, settings)
            if pause:
                lifecycle.auto_pause(batch.session, edition_id, pause.reason, pause.words)
                batch.report.error = pause.words
                return
    except TransportError as exc:
        batch.report.error = str(exc)
        if exc.unanswered and row is not None and row.delivery_id in remaining:
            _unanswered(batch, row, str(exc))
            remaining.remove(row.delivery_id)
        log.warning(
            "edition %s: batch stopped: %s",
            edition_id,
            exc,
            extra={"edition_id": edition_id, "batch_id": batch.owner},
        )
        pause = streaks.after_transport_error(batch.session, batch.edition, str(exc), settings)
        if pause:
            lifecycle.auto_pause(batch.session, edition_id, pause.reason, pause.words)
        else:
            # Kept on the edition so `digest status` can say why it stopped.
            lifecycle.note_transport_error(batch.session, edition_id, str(exc))


def _send_one(batch: Batch, row: _Row) -> Outcome | None:
    """Send one row and record its outcome; None when nothing was sent (skipped, unbuildable)."""
    session, report, mailer = batch.session, batch.report, batch.mailer
    # Their sections may have changed since the build: their choice now is what counts.
    sections = batch.draft.sections_for(row.sections)
    reason = row.reason_to_skip or (None if sections else NOTHING_IN_SECTIONS)
    if reason:
        batch.outcomes.add(ledger.outcome(row.delivery_id, DeliveryStatus.SKIPPED, error=reason))
        report.skipped += 1
        return None
    edition = batch.edition
    msg_id = mailer.message_id(edition.id, row.delivery_id, batch.domain)
    try:
        template = mailer.template_of(edition.id, batch.draft, sections)
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


def _unanswered(batch: Batch, row: _Row, error: str) -> None:
    """The relay took (or may have taken) the row's whole message and never answered.

    Sending it again may deliver a second copy (RFC 1047), sending it never may deliver none:
    like every MTA, Digest sends it again, and records the doubt on the row (``unanswered``),
    which ``digest status`` shows. The attempt counts, so a message the relay keeps taking
    without answering goes out at most DIGEST_MAX_ATTEMPTS times; and its retry waits a few
    seconds (``UNANSWERED_RETRY_SECONDS``, doubling), so while the relay is flaky the next
    batches' attempts fall on other rows rather than all on this one.
    """
    attempts = _attempts(batch.session, row.delivery_id) + 1
    if attempts >= batch.settings.max_attempts:
        batch.outcomes.add(
            ledger.outcome(row.delivery_id, DeliveryStatus.FAILED, error=error, unanswered=True)
        )
        batch.report.failed += 1
        return
    base = min(batch.settings.retry_base_seconds, UNANSWERED_RETRY_SECONDS)
    batch.outcomes.add(
        ledger.outcome(
            row.delivery_id,
            DeliveryStatus.DEFERRED,
            error=error,
            retry_at=utcnow() + ledger.retry_delay(attempts, base),
            unanswered=True,
        )
    )
    batch.report.deferred += 1


def _why(code: int | None, detail: str) -> str:
    return f"{code} {detail}".strip()


def _attempts(session: Session, delivery_id: int) -> int:
    return int(session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) or 0)


def _bounce(batch: Batch, row: _Row, reason: str) -> None:
    """A permanent refusal: the address is suppressed and the subscriber marked bounced."""
    session = batch.session
    hard_bounce(session, session.get(Subscriber, row.subscriber_id), row.email, reason)
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
    return [
        _Row(did, sid, email, name or "", sections, skip_reason(sub, subn, suppressed is not None))
        for did, sid, email, name, sub, subn, sections, suppressed in session.execute(query)
    ]


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
