"""Which sections a list's readers click: the click-through of each section over recent
editions, and a list's sections ordered by it (``lists add --order-sections-by-clicks``).

A section's click-through is the share of the messages that carried it (delivered, in
editions sent in the window) whose reader clicked at least one of its articles. Scanner
fetches and opens are left out. Which section an article counted in is the one the edition
showed it under, read from the edition's stored content.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.edition.select import content_article_ids
from digest.store.models import Click, Delivery, DeliveryStatus, Edition, utcnow

#: How far back "recent" click-through looks when ordering sections.
RECENT_DAYS = 28
#: Readers who clicked (in the window, over all sections) below which the list's own order
#: stands: a handful of clicks says nothing about what readers prefer.
MIN_READERS = 20


@dataclass
class SectionRate:
    slug: str
    #: Messages delivered that carried the section.
    delivered: int = 0
    #: Of those, the ones whose reader clicked one of its articles.
    readers: int = 0
    #: Clicks on its articles by readers (a reader clicking twice counts twice).
    clicks: int = 0

    @property
    def rate(self) -> float:
        return self.readers / self.delivered if self.delivered else 0.0


def human_clicks(session: Session, edition_ids: Iterable[int]) -> list[tuple[int, int, int]]:
    """(edition, delivery, article) of every reader's click (not a scanner's, not an open)
    on messages of ``edition_ids``."""
    ids = list(edition_ids)
    if not ids:
        return []
    rows = session.execute(
        select(Delivery.edition_id, Click.delivery_id, Click.article_id)
        .join(Delivery, Delivery.id == Click.delivery_id)
        .where(
            Delivery.edition_id.in_(ids),
            Click.article_id.is_not(None),
            Click.is_scanner.is_(False),
        )
    ).all()
    return [(e, d, a) for e, d, a in rows if a is not None]


def section_of_articles(edition: Edition) -> dict[int, str]:
    """Each article of the edition and the section slug it was shown under (an "also in"
    report: the section of the story it was linked under)."""
    return {
        article_id: str(block["slug"])
        for block in edition.content or []
        for article_id in content_article_ids(block)
    }


def section_rates(
    session: Session,
    list_id: int,
    since: dt.datetime,
    until: dt.datetime | None = None,
) -> dict[str, SectionRate]:
    """Click-through per section of the list's editions with messages delivered in
    [since, until)."""
    until = until or utcnow()
    delivered = dict(
        session.execute(
            select(Delivery.edition_id, func.count())
            .join(Edition, Edition.id == Delivery.edition_id)
            .where(
                Edition.list_id == list_id,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.sent_at >= since,
                Delivery.sent_at < until,
            )
            .group_by(Delivery.edition_id)
        ).all()
    )
    editions = {
        e.id: e for e in session.scalars(select(Edition).where(Edition.id.in_(list(delivered))))
    }
    rates: dict[str, SectionRate] = {}
    sections_of: dict[int, dict[int, str]] = {}
    for edition_id, edition in editions.items():
        sections_of[edition_id] = section_of_articles(edition)
        for slug in dict.fromkeys(sections_of[edition_id].values()):
            rates.setdefault(slug, SectionRate(slug)).delivered += delivered[edition_id]
    readers: dict[str, set[int]] = defaultdict(set)
    for edition_id, delivery_id, article_id in human_clicks(session, editions):
        shown_in = sections_of[edition_id].get(article_id)
        if shown_in is None:
            continue
        readers[shown_in].add(delivery_id)
        rates[shown_in].clicks += 1
    for slug, who in readers.items():
        rates[slug].readers = len(who)
    return rates


def by_recent_clicks(
    session: Session,
    list_id: int,
    order: Sequence[tuple[str, str]],
    now: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """``order`` (the list's ``(slug, name)`` sections) sorted by recent click-through, best
    first; unchanged while fewer than ``MIN_READERS`` readers clicked in the window. Sections
    with no delivered messages in the window (new ones) keep their place relative to each
    other after those with figures; ties keep the list's order."""
    now = now or utcnow()
    rates = section_rates(session, list_id, now - dt.timedelta(days=RECENT_DAYS), now)
    readers = sum(r.readers for r in rates.values())
    if readers < MIN_READERS:
        return list(order)
    known = [s for s in order if s[0] in rates and rates[s[0]].delivered]
    unknown = [s for s in order if s not in known]
    return sorted(known, key=lambda s: -rates[s[0]].rate) + unknown
