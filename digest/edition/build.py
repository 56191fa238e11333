"""Building an edition: its window's articles chosen once, stored, and its ledger written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import lifecycle
from digest.edition.ledger import create_ledger
from digest.edition.select import (
    ArticleView,
    SectionBlock,
    Window,
    also_in,
    content_article_ids,
    date_label,
    edition_window,
    format_subject,
    group_sections,
    headlines,
    local_instant,
    local_today,
    variant_sections,
    window_label,
)
from digest.errors import DigestError, InputError, NotFoundError
from digest.ingest.text import cut_at_word
from digest.store.models import (
    Article,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ListSection,
    MailingList,
    ReviewEvent,
    Section,
    SoftBounce,
    Source,
    utcnow,
)

DEFAULT_SUBJECT = "{site} — {date}: {top headline}"


@dataclass(frozen=True)
class Draft:
    """An edition's content before (or without) it is stored: what preview and dry-run show."""

    mailing_list: MailingList
    day: dt.date
    sections: list[SectionBlock]
    subject: str
    preheader: str
    #: The span of publication times it offers (None: a draft made without one, in tests).
    window: Window | None = None
    #: Every article it offers: those shown, and those counted in a section's "more".
    offered: tuple[int, ...] = ()
    #: Every section the list carries, with articles today or not (a reader's choice is read
    #: against them: one naming none of them is stale). Empty: those of ``sections``.
    list_sections: tuple[str, ...] = ()
    #: The editor's note that opens the digest (plain text; empty: none).
    note: str = ""

    @property
    def window_text(self) -> str:
        """The window as an operator reads it, in the list's time zone."""
        if self.window is None:
            return "no window"
        return window_label(self.window, self.mailing_list.timezone)

    def sections_for(self, wanted: list[str] | None) -> list[SectionBlock]:
        """The sections a reader who chose ``wanted`` gets (empty: no mail for them today)."""
        carried = self.list_sections or tuple(s.slug for s in self.sections)
        return variant_sections(self.sections, wanted, carried, self.mailing_list.when_empty)


def variant_draft(settings: Settings, draft: Draft, sections: list[SectionBlock]) -> Draft:
    """``draft`` as the readers of ``sections`` get it: its subject and preview line made from
    their sections' headlines, not the whole edition's."""
    if sections == draft.sections:
        return draft
    made = _draft(settings, draft.mailing_list, draft.day, sections, draft.window, draft.offered)
    return replace(made, list_sections=draft.list_sections, note=draft.note)


def section_order(session: Session, mailing_list: MailingList) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Section.slug, Section.name)
        .join(ListSection, ListSection.section_id == Section.id)
        .where(ListSection.list_id == mailing_list.id)
        .order_by(ListSection.position)
    ).all()
    order = [(slug, name) for slug, name in rows]
    if mailing_list.order_sections_by_clicks:
        from digest.edition.popularity import by_recent_clicks

        order = by_recent_clicks(session, mailing_list.id, order)
    return order


def _views(session: Session, query_filter: object) -> list[ArticleView]:
    rows = session.execute(
        select(Article, Section.slug, Source.name)
        .join(Section, Section.id == Article.section_id)
        .outerjoin(Source, Source.id == Article.source_id)
        .where(query_filter)  # type: ignore[arg-type]
    ).all()
    return [
        ArticleView(
            id=a.id,
            section_slug=slug,
            headline=a.headline,
            teaser=a.teaser,
            url=a.url,
            published_at=a.published_at,
            image_url=a.image_url,
            source_id=a.source_id,
            source_name=source_name or "",
            feed_position=a.feed_position,
        )
        for a, slug, source_name in rows
    ]


def draft_edition(
    session: Session,
    settings: Settings,
    mailing_list: MailingList,
    day: dt.date,
    *,
    now: dt.datetime | None = None,
    since: dt.datetime | None = None,
    kept_start: dt.datetime | None = None,
) -> Draft:
    """Choose the articles the list's edition of ``day`` would offer if built at ``now``
    (naive UTC, default now), without storing anything: see ``edition_window``. ``since`` is
    the operator's start of a list's first edition (naive: the list's local time)."""
    window = list_window(session, mailing_list, day, now or utcnow(), since, kept_start)
    order = section_order(session, mailing_list)
    articles = _window_articles(session, mailing_list.id, day, window, [s for s, _ in order])
    sections = group_sections(articles, order, mailing_list.per_section)
    offered = tuple(sorted(a.id for a in articles))
    made = _draft(settings, mailing_list, day, sections, window, offered)
    return replace(made, list_sections=tuple(slug for slug, _ in order))


def list_window(
    session: Session,
    mailing_list: MailingList,
    day: dt.date,
    now: dt.datetime,
    since: dt.datetime | None = None,
    kept_start: dt.datetime | None = None,
) -> Window:
    """The window of the list's edition of ``day`` built at ``now``, from the windows of its
    editions of the dates around it (the edition of ``day`` itself, if stored, is not one)."""
    around = (Edition.list_id == mailing_list.id, Edition.edition_date != day)
    previous = session.execute(
        select(Edition.edition_date, Edition.window_end)
        .where(*around, Edition.edition_date < day)
        .order_by(Edition.edition_date.desc())
        .limit(1)
    ).first()
    next_start = session.scalar(
        select(Edition.window_start)
        .where(*around, Edition.edition_date > day)
        .order_by(Edition.edition_date)
        .limit(1)
    )
    first_start = session.scalar(select(func.min(Edition.window_start)).where(*around))
    tz_name = mailing_list.timezone
    since_utc = None
    if since is not None:
        if previous is not None:
            raise InputError(
                f"--since is for a list's first edition: {mailing_list.slug}'s edition of {day} "
                f"starts where its edition of {previous.edition_date} ended"
            )
        since_utc = local_instant(since, tz_name)
    window = edition_window(
        day,
        tz_name,
        now,
        previous_end=previous.window_end if previous is not None else None,
        next_start=next_start,
        first_start=first_start,
        kept_start=kept_start,
        since=since_utc,
    )
    if since_utc is not None and window.empty:
        raise InputError(
            f"--since {since:%Y-%m-%d %H:%M} is not before the end of {mailing_list.slug}'s "
            f"edition of {day}: nothing would be in it"
        )
    return window


def _window_articles(
    session: Session, list_id: int, day: dt.date, window: Window, slugs: list[str]
) -> list[ArticleView]:
    """The articles of ``slugs`` in ``window`` that no other edition of the list offered."""
    if window.empty:
        return []
    offered: set[int] = set()
    legacy = []
    # Only an edition that ended after the earliest time taken can have offered any of them.
    for ids, start, end, built in session.execute(
        select(
            Edition.offered_ids, Edition.window_start, Edition.window_end, Edition.created_at
        ).where(
            Edition.list_id == list_id,
            Edition.edition_date != day,
            Edition.window_end > window.earliest,
        )
    ):
        if ids is not None:
            offered.update(ids)
        else:
            # Stored before windows were (migration 0011): it offered its calendar day's
            # articles that were in when it was built; those published later that day never
            # went out, and are the next edition's.
            legacy.append(
                (Article.published_at >= start)
                & (Article.published_at < end)
                & (Article.first_seen_at <= built)
            )
    if legacy:
        offered.update(session.scalars(select(Article.id).where(or_(*legacy))))
    candidates = _views(
        session,
        (Article.published_at >= window.earliest)
        & (Article.published_at < window.end)
        & Section.slug.in_(slugs),
    )
    return [a for a in candidates if a.id not in offered]


#: Longest subject stored (``Edition.subject`` is VARCHAR(500)).
SUBJECT_LENGTH = 500


def _draft(
    settings: Settings,
    mailing_list: MailingList,
    day: dt.date,
    sections: list[SectionBlock],
    window: Window | None = None,
    offered: tuple[int, ...] = (),
) -> Draft:
    top, preview = headlines(sections)
    subject = format_subject(
        mailing_list.subject_template or DEFAULT_SUBJECT,
        site=settings.site_name,
        date_label=date_label(day, mailing_list.language or "en"),
        top_headline=top,
        list_name=mailing_list.name,
    )
    # A template may repeat {top headline} (500 characters each): keep to the column's size.
    subject = cut_at_word(subject, SUBJECT_LENGTH)
    return Draft(mailing_list, day, sections, subject, preview, window, offered)


def stored_draft(session: Session, settings: Settings, edition: Edition) -> Draft:
    """The draft an edition was built from, read back from the ids it stored.

    The articles are the ones chosen at build time, even if later ingests
    added more that day: every subscriber of one edition reads the same digest.
    """
    mailing_list = session.get_one(MailingList, edition.list_id)
    names = dict(section_order(session, mailing_list))
    ids = [i for block in edition.content for i in content_article_ids(block)]
    by_id = {a.id: a for a in _views(session, Article.id.in_(ids))}

    def as_built(block: dict[str, Any], article_id: int) -> ArticleView:
        # The address stored with the edition, not today's: every render of one edition
        # links where its first did.
        article = by_id[article_id]
        url = (block.get("urls") or {}).get(str(article_id))
        return replace(article, url=url) if url and url != article.url else article

    def shown(block: dict[str, Any], article_id: int) -> ArticleView:
        others = block.get("also_in", {}).get(str(article_id), [])
        article = as_built(block, article_id)
        # The editor's teaser, if one was written in review, instead of the feed's.
        teaser = block.get("teasers", {}).get(str(article_id))
        if teaser is not None:
            article = replace(article, teaser=teaser)
        found = [as_built(block, i) for i in others if i in by_id]
        return replace(article, also_in=also_in(article, found, names)) if found else article

    sections = [
        SectionBlock(
            block["slug"],
            names.get(block["slug"], block["slug"]),
            [shown(block, i) for i in block["article_ids"] if i in by_id],
            more=block.get("more", 0),
        )
        for block in edition.content
    ]
    sections = [s for s in sections if s.articles]
    return Draft(
        mailing_list,
        edition.edition_date,
        sections,
        edition.subject,
        edition.preheader,
        Window(edition.window_start, edition.window_end, edition.window_start),
        tuple(edition.offered_ids or ()),
        tuple(names),
        edition.note or "",
    )


def refresh_headings(session: Session, settings: Settings, edition: Edition) -> Draft:
    """After an editor changed the edition's content: its subject and preheader made again
    from what it now shows (the top story may have been dropped or moved), and the draft
    every message of it is rendered from. Not committed."""
    current = stored_draft(session, settings, edition)
    fresh = _draft(settings, current.mailing_list, current.day, current.sections, current.window)
    edition.subject = fresh.subject
    edition.preheader = fresh.preheader
    return replace(current, subject=fresh.subject, preheader=fresh.preheader)


def build_edition(
    session: Session,
    settings: Settings,
    mailing_list: MailingList,
    day: dt.date,
    *,
    check: Callable[[Draft], None] | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    since: dt.datetime | None = None,
    kept_start: dt.datetime | None = None,
    hold: bool = False,
) -> tuple[Edition, bool]:
    """The (list, day) edition, built at ``now`` (naive UTC, default now) and its ledger
    written if it did not exist yet.

    Returns the edition and whether this call wrote its ledger. Calling it twice,
    even at the same moment from two processes, creates one edition: builds of one list
    take turns (``lock_list``), and the unique (list, date) constraint stands behind that.
    ``check`` sees the draft first and may refuse it by raising (a broken template
    is reported before anything is stored); an existing edition still to be sent
    is checked again, since templates may have changed since its build.

    What it holds is its window's (``edition_window``): the articles since the list's
    previous edition, up to now. ``since`` (naive: the list's local time) starts a list's
    first edition, and is refused once there is an earlier one; ``kept_start`` is the start
    of the edition this one replaces (a rebuild), kept when there is no earlier one.

    An empty edition is a record that its window had no articles, not a verdict: nobody got
    it, so once there are articles it is built again in place, its window now ending at
    that build. And an empty edition is never stored for a day that has not started yet in
    the list's zone (``today``, default the list's today): tomorrow's articles have simply
    not arrived.

    ``hold`` builds it held for an editor's review (``EditionStatus.HELD``): its ledger is
    written, and no batch sends it until it is released (``lifecycle.release``).
    """
    now = now or utcnow()
    existing = _find(session, mailing_list.id, day)
    if existing is None or existing.status == EditionStatus.EMPTY:
        # Taken only when something may be written: the scheduler asks every minute.
        lock_list(session, mailing_list.id)
        existing = _find(session, mailing_list.id, day)
    if existing is not None and existing.status != EditionStatus.EMPTY:
        if since is not None:
            raise InputError(
                f"{mailing_list.slug}'s edition of {day} is already built: --since only "
                "chooses where a list's first edition starts"
            )
        if existing.status in (EditionStatus.READY, EditionStatus.HELD) and check is not None:
            check(stored_draft(session, settings, existing))
        return existing, False
    if existing is not None:
        kept_start = existing.window_start
    draft = draft_edition(
        session, settings, mailing_list, day, now=now, since=since, kept_start=kept_start
    )
    if existing is not None:
        if not draft.sections:
            return existing, False
        if check is not None:
            check(draft)
        return _fill_empty(session, existing, draft, hold=hold)
    if not draft.sections and day > (today or local_today(mailing_list.timezone, now)):
        raise InputError(
            f"no articles for {mailing_list.slug} on {day} yet: nothing stored (the edition "
            "is built when its articles are there)"
        )
    if check is not None:
        check(draft)
    assert draft.window is not None
    built = EditionStatus.HELD if hold else EditionStatus.READY
    edition = Edition(
        list_id=mailing_list.id,
        edition_date=day,
        status=built if draft.sections else EditionStatus.EMPTY,
        subject=draft.subject,
        preheader=draft.preheader,
        content=_content(draft),
        window_start=draft.window.start,
        window_end=draft.window.end,
        offered_ids=list(draft.offered),
    )
    try:
        with session.begin_nested():
            session.add(edition)
            session.flush()
            if edition.status != EditionStatus.EMPTY:
                create_ledger(session, edition)
    except IntegrityError:
        winner = _find(session, mailing_list.id, day)
        if winner is None:
            raise
        return winner, False
    session.commit()
    return edition, True


def lock_list(session: Session, list_id: int) -> None:
    """Make this transaction the only one changing the list's editions until it ends.

    An edition's window is read from its neighbours' windows; two builds of different dates
    at once would both start where the last stored one ended, and overlap. PostgreSQL: a
    row lock on the list (FOR NO KEY UPDATE, so subscriptions to it can still be added).
    SQLite: its one write lock, taken at once by a write that changes nothing (reads take no
    lock there, and a transaction that read first cannot upgrade after another one's commit).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(MailingList)
            .where(MailingList.id == list_id)
            .values(id=MailingList.id)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(
            select(MailingList.id).where(MailingList.id == list_id).with_for_update(key_share=True)
        )


def _content(draft: Draft) -> list[dict[str, Any]]:
    """What an edition stores: per section, its articles' ids in order, how many more it
    had, for a story told once the ids of its other reports (``also_in``: the shown
    article's id, as a JSON key, to theirs), present only when some story has any, and the
    address of every article it links (``urls``: id, as a JSON key, to URL)."""
    content = []
    for s in draft.sections:
        block: dict[str, Any] = {
            "slug": s.slug,
            "article_ids": [a.id for a in s.articles],
            "more": s.more,
        }
        others = {str(a.id): [o.id for o in a.also_in] for a in s.articles if a.also_in}
        if others:
            block["also_in"] = others
        # Where each link led when the edition was made: a feed that later re-points an
        # article must not change where links already mailed go (digest.feedback.clicks).
        urls = {str(a.id): a.url for a in s.articles}
        urls.update((str(o.id), o.url) for a in s.articles for o in a.also_in)
        block["urls"] = urls
        content.append(block)
    return content


def _fill_empty(
    session: Session, edition: Edition, draft: Draft, *, hold: bool = False
) -> tuple[Edition, bool]:
    """Turn a stored empty edition into a ready one with ``draft``'s articles, its window
    (ending at this build) and its ledger.

    The UPDATE is conditional on the row still being empty, so of two processes doing this
    at once exactly one writes the ledger; the other reads the winner's edition.
    """
    assert draft.window is not None
    filled = lifecycle.fill_empty(
        session,
        edition.id,
        hold=hold,
        subject=draft.subject,
        preheader=draft.preheader,
        content=_content(draft),
        window_start=draft.window.start,
        window_end=draft.window.end,
        offered_ids=list(draft.offered),
    )
    session.expire(edition)
    if not filled:
        return edition, False
    create_ledger(session, edition)
    session.commit()
    return edition, True


def drop_edition(session: Session, edition_id: int) -> tuple[Edition, int]:
    """Delete an edition nobody has received, with its pending ledger rows.

    Allowed only while every row is pending or skipped: once a row is leased, sent,
    deferred, bounced or failed, someone may have the message (or a server has it queued),
    and the record of that must stay. Returns the (deleted) edition and the rows removed.
    """
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise NotFoundError("edition", edition_id)
    # The next build of the list reads the windows around it: it waits for this to be over.
    lock_list(session, edition.list_id)
    untouched = (DeliveryStatus.PENDING, DeliveryStatus.SKIPPED)
    removed = session.execute(
        delete(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.status.in_(untouched))
        .execution_options(synchronize_session=False)
    )
    # Counted after the DELETE, not before: a batch that claimed rows in between has
    # leased them, the DELETE left them, and they are found here.
    kept = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition_id)
    )
    if kept:
        session.rollback()
        raise DigestError(
            f"edition {edition_id} was already sent, or tried, to some recipients ({kept}): "
            "it cannot be dropped or rebuilt (`digest cancel` stops it)"
        )
    session.execute(
        update(SoftBounce)
        .where(SoftBounce.last_edition_id == edition_id)
        .values(last_edition_id=None)
        .execution_options(synchronize_session=False)
    )
    # Its review history goes with it (SQLite does not enforce the cascade by itself).
    session.execute(
        delete(ReviewEvent)
        .where(ReviewEvent.edition_id == edition_id)
        .execution_options(synchronize_session=False)
    )
    session.delete(edition)
    session.flush()
    return edition, int(removed.rowcount or 0)  # type: ignore[attr-defined]


def _find(session: Session, list_id: int, day: dt.date) -> Edition | None:
    # Fresh from the database: after waiting for the list's lock, what another build stored
    # (or filled) meanwhile is what counts, not what this session read before.
    return session.scalars(
        select(Edition)
        .where(Edition.list_id == list_id, Edition.edition_date == day)
        .execution_options(populate_existing=True)
    ).first()
