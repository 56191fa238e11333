"""One edition as every face shows it: ``EditionSummary`` is computed here once (counts, rows
held for a time zone, the operator's state label, why it stopped, the next retry, who joined
since the build), and the CLI, the dashboard and the API only format it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.edition import ledger
from digest.edition.select import local_today
from digest.edition.state import edition_state
from digest.store.models import (
    FINAL_DELIVERY_STATUSES,
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
    #: The stored status: empty, ready, paused, cancelled, done.
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


def summarize(
    session: Session,
    edition: Edition,
    mailing_list: MailingList,
    now: dt.datetime,
    *,
    count_late: bool = True,
) -> EditionSummary:
    """The summary of ``edition``. Late joiners are counted only for a recent edition
    (yesterday's, today's or a later day's): only those are worth sending to newcomers, and
    the anti-join over a big list is not free."""
    counts = ledger.counts(session, edition.id)
    held = ledger.held_count(session, edition.id, now) if counts["pending"] else 0
    next_retry = ledger.next_retry(session, edition.id) if counts["deferred"] else None
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
    )
