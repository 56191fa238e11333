"""Building an edition: the day's articles chosen once, stored, and its ledger written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition import lifecycle
from digest.edition.ledger import create_ledger
from digest.edition.select import (
    ArticleView,
    SectionBlock,
    also_in,
    content_article_ids,
    date_label,
    edition_window,
    format_subject,
    group_sections,
    local_today,
    preheader,
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
    Section,
    SoftBounce,
    Source,
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
    session: Session, settings: Settings, mailing_list: MailingList, day: dt.date
) -> Draft:
    """Choose the articles of ``day`` (in the list's time zone) without storing anything."""
    start, end = edition_window(day, mailing_list.timezone)
    order = section_order(session, mailing_list)
    slugs = [slug for slug, _ in order]
    articles = _views(
        session,
        (Article.published_at >= start) & (Article.published_at < end) & Section.slug.in_(slugs),
    )
    sections = group_sections(articles, order, mailing_list.per_section)
    return _draft(settings, mailing_list, day, sections)


#: Longest subject stored (``Edition.subject`` is VARCHAR(500)).
SUBJECT_LENGTH = 500


def _draft(
    settings: Settings, mailing_list: MailingList, day: dt.date, sections: list[SectionBlock]
) -> Draft:
    top = sections[0].articles[0].headline if sections else ""
    subject = format_subject(
        mailing_list.subject_template or DEFAULT_SUBJECT,
        site=settings.site_name,
        date_label=date_label(day, mailing_list.language or "en"),
        top_headline=top,
        list_name=mailing_list.name,
    )
    # A template may repeat {top headline} (500 characters each): keep to the column's size.
    subject = cut_at_word(subject, SUBJECT_LENGTH)
    return Draft(mailing_list, day, sections, subject, preheader(sections, skip=top))


def stored_draft(session: Session, settings: Settings, edition: Edition) -> Draft:
    """The draft an edition was built from, read back from the ids it stored.

    The articles are the ones chosen at build time, even if later ingests
    added more that day: every subscriber of one edition reads the same digest.
    """
    mailing_list = session.get_one(MailingList, edition.list_id)
    names = dict(section_order(session, mailing_list))
    ids = [i for block in edition.content for i in content_article_ids(block)]
    by_id = {a.id: a for a in _views(session, Article.id.in_(ids))}

    def shown(block: dict[str, Any], article_id: int) -> ArticleView:
        others = block.get("also_in", {}).get(str(article_id), [])
        article = by_id[article_id]
        found = [by_id[i] for i in others if i in by_id]
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
    return Draft(mailing_list, edition.edition_date, sections, edition.subject, edition.preheader)


def build_edition(
    session: Session,
    settings: Settings,
    mailing_list: MailingList,
    day: dt.date,
    *,
    check: Callable[[Draft], None] | None = None,
    today: dt.date | None = None,
) -> tuple[Edition, bool]:
    """The (list, day) edition, built and its ledger written if it did not exist yet.

    Returns the edition and whether this call wrote its ledger. Calling it twice,
    even at the same moment from two processes, creates one edition: the
    unique (list, date) constraint decides, and the loser reads the winner's.
    ``check`` sees the draft first and may refuse it by raising (a broken template
    is reported before anything is stored); an existing edition still to be sent
    is checked again, since templates may have changed since its build.

    An empty edition is a record that the day had no articles, not a verdict: nobody got
    it, so once the day has articles it is built again in place. And an empty edition is
    never stored for a day that has not started yet in the list's zone (``today``, default
    the list's today): tomorrow's articles have simply not arrived.
    """
    existing = _find(session, mailing_list.id, day)
    if existing is not None and existing.status != EditionStatus.EMPTY:
        if existing.status == EditionStatus.READY and check is not None:
            check(stored_draft(session, settings, existing))
        return existing, False
    draft = draft_edition(session, settings, mailing_list, day)
    if existing is not None:
        if not draft.sections:
            return existing, False
        if check is not None:
            check(draft)
        return _fill_empty(session, settings, existing, draft)
    if not draft.sections and day > (today or local_today(mailing_list.timezone)):
        raise InputError(
            f"no articles for {mailing_list.slug} on {day} yet: nothing stored (the edition "
            "is built when its articles are there)"
        )
    if check is not None:
        check(draft)
    edition = Edition(
        list_id=mailing_list.id,
        edition_date=day,
        status=EditionStatus.READY if draft.sections else EditionStatus.EMPTY,
        subject=draft.subject,
        preheader=draft.preheader,
        content=_content(draft),
    )
    try:
        with session.begin_nested():
            session.add(edition)
            session.flush()
            if edition.status == EditionStatus.READY:
                create_ledger(session, edition)
    except IntegrityError:
        winner = _find(session, mailing_list.id, day)
        if winner is None:
            raise
        return winner, False
    session.commit()
    return edition, True


def _content(draft: Draft) -> list[dict[str, Any]]:
    """What an edition stores: per section, its articles' ids in order, how many more it
    had, and for a story told once the ids of its other reports (``also_in``: the shown
    article's id, as a JSON key, to theirs), present only when some story has any."""
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
        content.append(block)
    return content


def _fill_empty(
    session: Session, settings: Settings, edition: Edition, draft: Draft
) -> tuple[Edition, bool]:
    """Turn a stored empty edition into a ready one with ``draft``'s articles and its ledger.

    The UPDATE is conditional on the row still being empty, so of two processes doing this
    at once exactly one writes the ledger; the other reads the winner's edition.
    """
    filled = lifecycle.fill_empty(
        session,
        edition.id,
        subject=draft.subject,
        preheader=draft.preheader,
        content=_content(draft),
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
    session.delete(edition)
    session.flush()
    return edition, int(removed.rowcount or 0)  # type: ignore[attr-defined]


def _find(session: Session, list_id: int, day: dt.date) -> Edition | None:
    return session.scalars(
        select(Edition).where(Edition.list_id == list_id, Edition.edition_date == day)
    ).first()
