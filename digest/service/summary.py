"""One edition as every face shows it: ``EditionSummary`` is computed here once (counts, rows
held for a time zone, the operator's state label, why it stopped, the next retry, who joined
since the build, whether it waits for a worker, who may have a second copy), and the CLI,
the dashboard and the API only format it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.edition import ledger
from digest.edition.select import NOTHING_IN_SECTIONS, local_today
from digest.edition.state import edition_state
from digest.service.workers import span_words
from digest.store.models import (
    FINAL_DELIVERY_STATUSES,
    DeliveryStatus,
    Edition,
    EditionStatus,
    MailingList,
)

__all__ = ["LATE_STATES", "EditionSummary", "summarize"]

#: Edition states whose ledger late subscribers can still join.
LATE_STATES = (EditionStatus.READY, EditionStatus.PAUSED, EditionStatus.DONE)
_OPEN = tuple(s.value for s in ledger.OPEN_STATUSES)
_FINAL = tuple(s.value for s in FINAL_DELIVERY_STATUSES)


@dataclass(frozen=True)
class EditionSummary:
    """One edition as an operator reads it."""

    id: int
    list_slug: str
    list_name: str
    day: dt.date
    #: The stored status: empty, held, ready, paused, cancelled, done.
    status: str
    #: The operator's name for the state: scheduled, sending, paused, done, failed, ...
    label: str
    #: Why it stopped, in words (None: it did not).
    reason: str | None
    #: Ledger rows per delivery status, every status present.
    counts: dict[str, int]
    #: Pending rows waiting for their subscriber's own send time.
    held: int
    #: Subscribers who joined since the build and are not in the ledger.
    late: int
    #: When the earliest deferred recipient is tried again (naive UTC).
    next_retry: dt.datetime | None
    subject: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    #: The list's time zone (times are shown in it and in UTC).
    timezone: str = "UTC"
    #: Recipients whose message went out at least once without the server answering (the
    #: connection was lost after the final dot): they may have a second copy.
    unanswered: int = 0
    #: On a broker: since when its due rows have gone unclaimed (naive UTC), once that is
    #: longer than DIGEST_WAITING_AFTER_SECONDS; None otherwise (or while a worker holds some).
    waiting_since: dt.datetime | None = None
    #: Seconds of that wait, as of the summary.
    waiting_for: float | None = None
    #: Of the skipped rows, readers whose chosen sections had nothing in it (no mail for them).
    nothing_for: int = 0
    #: Who approved it in review, and when (naive UTC); None: not approved (or no review).
    approved_by: str | None = None
    approved_at: dt.datetime | None = None

    @property
    def in_review(self) -> bool:
        """Held for an editor's review: nothing is sent until it is released."""
        return self.status == EditionStatus.HELD.value

    @property
    def review_words(self) -> str | None:
        """``awaiting review``, ``approved by NAME, sends at the send time``,
        ``approved by NAME``, or None for an edition nobody reviewed."""
        if self.in_review:
            if self.approved_by:
                return f"approved by {self.approved_by}, sends at the send time"
            return "awaiting review"
        return f"approved by {self.approved_by}" if self.approved_by else None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def final(self) -> int:
        """Rows that have their outcome (sent, bounced, failed, skipped)."""
        return sum(self.counts[s] for s in _FINAL)

    @property
    def open(self) -> int:
        """Rows still to be sent (pending, leased, deferred)."""
        return sum(self.counts[s] for s in _OPEN)

    @property
    def percent(self) -> int:
        return int(100 * self.final / self.total) if self.total else 100

    @property
    def sending(self) -> bool:
        """Batches may still claim its rows (stored status ready)."""
        return self.status == EditionStatus.READY.value

    @property
    def paused(self) -> bool:
        return self.status == EditionStatus.PAUSED.value

    @property
    def empty(self) -> bool:
        return self.status == EditionStatus.EMPTY.value

    @property
    def waiting(self) -> str | None:
        """``waiting: no worker has taken it for 12 minutes``, or None."""
        if self.waiting_for is None:
            return None
        return f"waiting: no worker has taken it for {span_words(self.waiting_for)}"


def summarize(
    session: Session,
    edition: Edition,
    mailing_list: MailingList,
    now: dt.datetime,
    *,
    count_late: bool = True,
    waiting_after: float | None = None,
) -> EditionSummary:
    """The summary of ``edition``. Late joiners are counted only for a recent edition
    (yesterday's, today's or a later day's): only those are worth sending to newcomers, and
    the anti-join over a big list is not free. ``waiting_after`` (seconds; None: no broker,
    this process sends) is how long due rows may go unclaimed before it is waiting."""
    counts, unanswered = ledger.tally(session, edition.id)
    held = ledger.held_count(session, edition.id, now) if counts["pending"] else 0
    next_retry = ledger.next_retry(session, edition.id) if counts["deferred"] else None
    waiting_since = waiting_for = None
    if waiting_after is not None and edition.status == EditionStatus.READY:
        since = ledger.unclaimed_since(session, edition, now)
        if since is not None and (now - since).total_seconds() >= waiting_after:
            waiting_since, waiting_for = since, (now - since).total_seconds()
    nothing_for = 0
    if counts["skipped"]:
        nothing_for = ledger.reason_count(
            session, edition.id, DeliveryStatus.SKIPPED, NOTHING_IN_SECTIONS
        )
    late = 0
    recent = local_today(mailing_list.timezone, now) - dt.timedelta(days=1)
    if count_late and edition.status in LATE_STATES and edition.edition_date >= recent:
        late = ledger.late_count(session, edition)
    return EditionSummary(
        id=edition.id,
        list_slug=mailing_list.slug,
        list_name=mailing_list.name,
        day=edition.edition_date,
        status=edition.status.value,
        label=edition_state(edition.status, counts, edition.stop_reason, held),
        reason=edition.status_reason,
        counts=counts,
        held=held,
        late=late,
        next_retry=next_retry,
        subject=edition.subject,
        created_at=edition.created_at,
        completed_at=edition.completed_at,
        timezone=mailing_list.timezone,
        unanswered=unanswered,
        waiting_since=waiting_since,
        waiting_for=waiting_for,
        nothing_for=nothing_for,
        approved_by=edition.approved_by,
        approved_at=edition.approved_at,
    )
