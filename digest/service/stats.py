"""What an edition did, for editors: one query function per report, each returning a
dataclass that ``digest stats`` and the dashboard both show.

Counted per edition:

- delivered: messages the receiving server accepted and that did not bounce later;
- hard bounces: refused at once (5xx) or reported by a bounce later;
- soft bounces: recipients still being retried (4xx), or whose latest soft bounce report
  (``soft_bounces``) was about this edition;
- complaints and unsubscribes: of this edition's recipients, between its first message and
  the next edition of the list (an unsubscribe from the list or from everything; a complaint
  suppresses the address);
- readers: recipients who clicked at least one article (scanner fetches left out), and the
  click-through per section and per article (readers who clicked it / delivered);
- opens: recipients whose pixel was fetched, when DIGEST_TRACK_OPENS is on. Unreliable:
  Apple Mail Privacy Protection fetches every image of every message, and so do scanners.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.orm import Session

from digest.audience import ConsentAction
from digest.edition.popularity import human_clicks, section_of_articles, section_rates
from digest.errors import NotFoundError
from digest.store.models import (
    Article,
    Click,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    MailingList,
    Section,
    SoftBounce,
    Subscriber,
    Suppression,
    utcnow,
)

#: Consent actions that end a subscription to one list, and the one that ends every one (a
#: complaint ends every one too, but is counted as a complaint).
LEAVE_LIST = (ConsentAction.UNSUBSCRIBE.value, ConsentAction.LEAVE.value)
LEAVE_ALL = ConsentAction.UNSUBSCRIBE_ALL.value
#: At most this many bars in the "sends over time" chart.
TIME_BUCKETS = 40


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class ArticleStats:
    id: int
    headline: str
    section: str
    readers: int = 0
    clicks: int = 0
    rate: float = 0.0


@dataclass
class SectionStats:
    slug: str
    name: str
    articles: int
    readers: int = 0
    clicks: int = 0
    rate: float = 0.0


@dataclass
class EditionStats:
    edition_id: int
    list_slug: str
    list_name: str
    day: dt.date
    subject: str
    status: str
    recipients: int
    delivered: int
    hard_bounces: int
    soft_bounces: int
    failed: int
    skipped: int
    waiting: int
    complaints: int
    unsubscribes: int
    #: Recipients who clicked at least one article (scanners left out).
    readers: int
    clicks: int
    scanner_clicks: int
    #: Recipients whose open pixel was fetched: unreliable (Apple Mail fetches them all).
    opens: int
    sections: list[SectionStats] = field(default_factory=list)
    articles: list[ArticleStats] = field(default_factory=list)
    #: (start of the interval, messages accepted in it), in order.
    sends_over_time: list[tuple[dt.datetime, int]] = field(default_factory=list)
    #: The width of each interval of ``sends_over_time``.
    interval: dt.timedelta = dt.timedelta(minutes=1)

    @property
    def click_rate(self) -> float:
        return share(self.readers, self.delivered)

    @property
    def open_rate(self) -> float:
        return share(self.opens, self.delivered)


def edition_stats(session: Session, edition_id: int) -> EditionStats:
    """The figures of one edition; NotFoundError if there is none."""
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise NotFoundError("edition", edition_id)
    mailing_list = session.get_one(MailingList, edition.list_id)
    statuses: Counter[str] = Counter(
        {
            status.value: n
            for status, n in session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.edition_id == edition_id)
                .group_by(Delivery.status)
            )
        }
    )
    delivered = statuses[DeliveryStatus.SENT.value]
    start, end = _window(session, edition)
    recipients = select(Delivery.subscriber_id).where(
        Delivery.edition_id == edition_id, Delivery.sent_at.is_not(None)
    )
    stats = EditionStats(
        edition_id=edition.id,
        list_slug=mailing_list.slug,
        list_name=mailing_list.name,
        day=edition.edition_date,
        subject=edition.subject,
        status=edition.status.value,
        recipients=sum(statuses.values()),
        delivered=delivered,
        hard_bounces=statuses[DeliveryStatus.BOUNCED.value],
        soft_bounces=_soft_bounces(session, edition_id),
        failed=statuses[DeliveryStatus.FAILED.value],
        skipped=statuses[DeliveryStatus.SKIPPED.value],
        waiting=sum(
            statuses[s.value]
            for s in (DeliveryStatus.PENDING, DeliveryStatus.LEASED, DeliveryStatus.DEFERRED)
        ),
        complaints=_complaints(session, edition_id, start, end),
        unsubscribes=_unsubscribes(session, edition.list_id, recipients, start, end),
        readers=0,
        clicks=0,
        scanner_clicks=_scanner_clicks(session, edition_id),
        opens=_opens(session, edition_id),
    )
    _clicks(session, edition, stats)
    stats.sends_over_time, stats.interval = _sends_over_time(session, edition_id)
    return stats


def _window(session: Session, edition: Edition) -> tuple[dt.datetime, dt.datetime | None]:
    """From the edition's first message to the next edition's first message (if any)."""
    first = session.scalar(
        select(func.min(Delivery.sent_at)).where(Delivery.edition_id == edition.id)
    )
    start = first or edition.created_at
    later = (
        select(Edition.id)
        .where(Edition.list_id == edition.list_id, Edition.edition_date > edition.edition_date)
        .scalar_subquery()
    )
    end = session.scalar(
        select(func.min(Delivery.sent_at)).where(
            Delivery.edition_id.in_(later), Delivery.sent_at > start
        )
    )
    return start, end


def _soft_bounces(session: Session, edition_id: int) -> int:
    retrying = set(
        session.scalars(
            select(Delivery.subscriber_id).where(
                Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.DEFERRED
            )
        )
    )
    reported = set(
        session.scalars(
            select(SoftBounce.subscriber_id).where(SoftBounce.last_edition_id == edition_id)
        )
    )
    return len(retrying | reported)


def _complaints(
    session: Session, edition_id: int, start: dt.datetime, end: dt.datetime | None
) -> int:
    query = (
        select(func.count(distinct(Suppression.id)))
        .join(Subscriber, Subscriber.email == Suppression.email)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(
            Delivery.edition_id == edition_id,
            Delivery.sent_at.is_not(None),
            Suppression.reason.like("complaint%"),
            Suppression.created_at >= start,
        )
    )
    if end is not None:
        query = query.where(Suppression.created_at < end)
    return session.scalar(query) or 0


def _unsubscribes(
    session: Session,
    list_id: int,
    recipients: object,
    start: dt.datetime,
    end: dt.datetime | None,
) -> int:
    query = select(func.count(distinct(ConsentEvent.subscriber_id))).where(
        ConsentEvent.subscriber_id.in_(recipients),  # type: ignore[arg-type]
        or_(
            (ConsentEvent.action.in_(LEAVE_LIST)) & (ConsentEvent.list_id == list_id),
            ConsentEvent.action == LEAVE_ALL,
        ),
        ConsentEvent.at >= start,
    )
    if end is not None:
        query = query.where(ConsentEvent.at < end)
    return session.scalar(query) or 0


def _scanner_clicks(session: Session, edition_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Click)
            .join(Delivery, Delivery.id == Click.delivery_id)
            .where(
                Delivery.edition_id == edition_id,
                Click.article_id.is_not(None),
                Click.is_scanner.is_(True),
            )
        )
        or 0
    )


def _opens(session: Session, edition_id: int) -> int:
    return (
        session.scalar(
            select(func.count(distinct(Click.delivery_id)))
            .join(Delivery, Delivery.id == Click.delivery_id)
            .where(
                Delivery.edition_id == edition_id,
                Click.article_id.is_(None),
                Click.is_scanner.is_(False),
            )
        )
        or 0
    )


def _clicks(session: Session, edition: Edition, stats: EditionStats) -> None:
    """Readers, clicks and click-through per section and per article, in the digest's order."""
    shown_in = section_of_articles(edition)
    names = dict(session.execute(select(Section.slug, Section.name)).all())
    articles = {
        a.id: a for a in session.scalars(select(Article).where(Article.id.in_(list(shown_in))))
    }
    per_article: dict[int, ArticleStats] = {}
    per_section: dict[str, SectionStats] = {}
    for block in edition.content or []:
        slug = str(block["slug"])
        ids = [int(i) for i in block.get("article_ids", [])]
        per_section[slug] = SectionStats(slug, names.get(slug, slug), len(ids))
        for article_id in ids:
            article = articles.get(article_id)
            headline = article.headline if article else f"(article {article_id} removed)"
            per_article[article_id] = ArticleStats(article_id, headline, per_section[slug].name)
    readers: set[int] = set()
    by_article: dict[int, set[int]] = defaultdict(set)
    by_section: dict[str, set[int]] = defaultdict(set)
    for _, delivery_id, article_id in human_clicks(session, [edition.id]):
        stats.clicks += 1
        readers.add(delivery_id)
        by_article[article_id].add(delivery_id)
        if article_id in per_article:
            per_article[article_id].clicks += 1
        if (section_slug := shown_in.get(article_id)) is not None:
            by_section[section_slug].add(delivery_id)
            per_section[section_slug].clicks += 1
    stats.readers = len(readers)
    for article_id, row in per_article.items():
        row.readers = len(by_article[article_id])
        row.rate = share(row.readers, stats.delivered)
    for slug, section in per_section.items():
        section.readers = len(by_section[slug])
        section.rate = share(section.readers, stats.delivered)
    stats.sections = list(per_section.values())
    stats.articles = list(per_article.values())


def _sends_over_time(
    session: Session, edition_id: int
) -> tuple[list[tuple[dt.datetime, int]], dt.timedelta]:
    """Messages accepted per interval, the interval a whole number of minutes chosen so the
    send fits in at most ``TIME_BUCKETS`` bars."""
    times = sorted(
        t
        for t in session.scalars(
            select(Delivery.sent_at).where(
                Delivery.edition_id == edition_id, Delivery.sent_at.is_not(None)
            )
        )
        if t is not None
    )
    minute = dt.timedelta(minutes=1)
    if not times:
        return [], minute
    first = times[0].replace(second=0, microsecond=0)
    span = times[-1] - first
    interval = minute * max(1, -(-int(span / minute + 1) // TIME_BUCKETS))
    counts: Counter[int] = Counter(int((t - first) / interval) for t in times)
    last = max(counts)
    return [(first + interval * i, counts[i]) for i in range(last + 1)], interval


@dataclass
class WeeklySection:
    slug: str
    name: str
    delivered: int
    readers: int
    clicks: int
    rate: float


@dataclass
class WeeklyList:
    slug: str
    name: str
    delivered: int
    sections: list[WeeklySection]


@dataclass
class WeeklyReport:
    since: dt.datetime
    until: dt.datetime
    lists: list[WeeklyList]


def weekly_report(
    session: Session, list_slug: str | None = None, now: dt.datetime | None = None
) -> WeeklyReport:
    """Which sections readers clicked over the last 7 days, per list (or only ``list_slug``),
    best click-through first."""
    until = now or utcnow()
    since = until - dt.timedelta(days=7)
    query = select(MailingList).order_by(MailingList.slug)
    if list_slug is not None:
        query = query.where(MailingList.slug == list_slug)
    lists = list(session.scalars(query))
    if list_slug is not None and not lists:
        raise NotFoundError("list", list_slug)
    names = dict(session.execute(select(Section.slug, Section.name)).all())
    report = WeeklyReport(since, until, [])
    for mailing_list in lists:
        rates = section_rates(session, mailing_list.id, since, until)
        delivered = (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .join(Edition, Edition.id == Delivery.edition_id)
                .where(
                    Edition.list_id == mailing_list.id,
                    Delivery.status == DeliveryStatus.SENT,
                    Delivery.sent_at >= since,
                    Delivery.sent_at < until,
                )
            )
            or 0
        )
        sections = [
            WeeklySection(
                r.slug, names.get(r.slug, r.slug), r.delivered, r.readers, r.clicks, r.rate
            )
            for r in rates.values()
        ]
        sections.sort(key=lambda s: (-s.rate, -s.readers, s.slug))
        report.lists.append(WeeklyList(mailing_list.slug, mailing_list.name, delivered, sections))
    return report
