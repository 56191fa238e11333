"""Counting the fetches of tracked links: where a click leads, whether it counts, and whether a
person or a scanner made it.

A tracked link leads only to an article the link's edition carried: the token names the
article, the edition's stored content must list it, and the address is the one stored with
the edition when it was built (so a feed re-pointing an article later moves no mailed link).
One delivery's fetches of one link are counted once a minute (``COUNT_EVERY``): reloading a
link, or a script fetching it in a loop, adds no rows. Only a GET is recorded (a HEAD is
answered and forgotten), and a fetch never changes a subscription.

Mail scanners (Microsoft Defender's Safe Links, Mimecast, Proofpoint, Barracuda) fetch the
links of a message when it arrives, often all of them within a second. A fetch is marked as a
scanner's when it comes within ``click_scanner_delay_seconds`` of the message being accepted,
or when it is one of a burst: at least ``click_burst_links`` distinct links of one message
(fewer when the edition has fewer, never under 2) fetched within ``click_burst_seconds`` of
one another. Marked fetches are kept, so the rule can be audited, and left out of every figure
about readers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition.select import content_article_ids
from digest.errors import InputError, NotFoundError
from digest.mail.tracking import CLICK, OPEN, TrackedLink
from digest.render.utm import fill_utm, with_utm
from digest.store.models import Article, Click, Delivery, Edition, MailingList, utcnow

#: One delivery's fetches of one link (or of its open pixel) count once in this time.
COUNT_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ScannerRules:
    """When a fetch is a scanner's rather than a reader's."""

    delay: dt.timedelta = dt.timedelta(seconds=5)
    burst_links: int = 3
    burst_window: dt.timedelta = dt.timedelta(seconds=5)

    @classmethod
    def of(cls, settings: Settings) -> ScannerRules:
        return cls(
            delay=dt.timedelta(seconds=settings.click_scanner_delay_seconds),
            burst_links=settings.click_burst_links,
            burst_window=dt.timedelta(seconds=settings.click_burst_seconds),
        )


def edition_article_ids(edition: Edition) -> set[int]:
    """Every article the edition carried, as stored when it was built: those it showed and
    the other reports of its stories, linked under them ("also in")."""
    return {i for block in edition.content or [] for i in content_article_ids(block)}


def stored_url(edition: Edition, article_id: int) -> str | None:
    """The address the edition linked for the article when it was built; None if it kept
    none (an edition built before addresses were stored)."""
    for block in edition.content or []:
        url = (block.get("urls") or {}).get(str(article_id))
        if isinstance(url, str):
            return url
    return None


def target(session: Session, link: TrackedLink) -> str:
    """Where a tracked link leads: its article's address. NotFoundError if the edition or the
    article is gone, InputError if the edition did not carry the article (a token of ours can
    only name one it did) or the stored address is not a web address."""
    if link.purpose != CLICK:
        raise InputError("this link is not valid")
    edition = session.get(Edition, link.edition_id)
    if edition is None:
        raise NotFoundError("edition", link.edition_id)
    if link.article_id not in edition_article_ids(edition):
        raise InputError("this link is not valid")
    # The address the edition was built with (a feed may re-point an article since); editions
    # stored before the addresses were kept fall back to the article row.
    url = stored_url(edition, link.article_id) or session.scalar(
        select(Article.url).where(Article.id == link.article_id)
    )
    if url is None:
        raise NotFoundError("article", link.article_id)
    # Ingest keeps only http(s) links; checked again because this answer is a redirect.
    if urlsplit(url).scheme not in ("http", "https") or any(c in url for c in "\r\n"):
        raise InputError("this link is not valid")
    # The publisher's tracking tags, as the untracked link carries them.
    found = session.execute(
        select(MailingList.utm, MailingList.slug).where(MailingList.id == edition.list_id)
    ).first()
    if found is not None and found.utm:
        url = with_utm(url, fill_utm(found.utm, found.slug, edition.edition_date))
    return url


def record(
    session: Session,
    link: TrackedLink,
    rules: ScannerRules,
    now: dt.datetime | None = None,
) -> Click | None:
    """Count one GET of a tracked link (or of the open pixel) and mark it, and any fetch of
    the same burst, as a scanner's if the rules say so. Commits.

    Nothing is recorded for a delivery that is not this edition's or was never sent (a test
    copy's links name delivery 0).
    """
    now = now or utcnow()
    delivery = session.get(Delivery, link.delivery_id) if link.delivery_id else None
    if delivery is None or delivery.edition_id != link.edition_id or delivery.sent_at is None:
        return None
    article_id = link.article_id if link.purpose == CLICK else None
    if link.purpose == OPEN and link.article_id != 0:
        return None
    same_link = (
        Click.article_id == article_id if article_id is not None else Click.article_id.is_(None)
    )
    counted = session.scalar(
        select(Click.id)
        .where(Click.delivery_id == delivery.id, same_link, Click.at > now - COUNT_EVERY)
        .limit(1)
    )
    if counted is not None:
        return None  # fetched again within the minute: already counted
    click = Click(
        delivery_id=delivery.id,
        article_id=article_id,
        at=now,
        is_scanner=now - delivery.sent_at < rules.delay,
    )
    session.add(click)
    # Committed before the burst is counted: of two fetches racing in, the one counting last
    # sees both, so a burst is marked however its requests interleave.
    session.commit()
    if article_id is not None:
        _mark_burst(session, delivery, click, rules)
    return click


def prune(session: Session, retention_days: int, now: dt.datetime | None = None) -> int:
    """Delete clicks and opens older than ``retention_days`` (0: none); returns how many."""
    if retention_days <= 0:
        return 0
    before = (now or utcnow()) - dt.timedelta(days=retention_days)
    result = session.execute(delete(Click).where(Click.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def _mark_burst(session: Session, delivery: Delivery, click: Click, rules: ScannerRules) -> None:
    start, end = click.at - rules.burst_window, click.at + rules.burst_window
    in_window = (
        (Click.delivery_id == delivery.id)
        & Click.article_id.is_not(None)
        & (Click.at >= start)
        & (Click.at <= end)
    )
    links = session.scalar(select(func.count(distinct(Click.article_id))).where(in_window)) or 0
    edition = session.get_one(Edition, delivery.edition_id)
    threshold = max(2, min(rules.burst_links, len(edition_article_ids(edition))))
    if links >= threshold:
        session.execute(update(Click).where(in_window).values(is_scanner=True))
        session.commit()
