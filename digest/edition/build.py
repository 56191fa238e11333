"""Building an edition: the day's articles chosen once, stored, and its ledger written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.edition.ledger import create_ledger
from digest.edition.select import (
    ArticleView,
    SectionBlock,
    date_label,
    edition_window,
    format_subject,
    group_sections,
    preheader,
)
from digest.ingest.text import cut_at_word
from digest.store.models import Article, Edition, EditionStatus, ListSection, MailingList, Section

DEFAULT_SUBJECT = "{site} — {date}: {top headline}"


@dataclass(frozen=True)
class Draft:
    """An edition's content before (or without) it is stored: what preview and dry-run show."""

    mailing_list: MailingList
    day: dt.date
    sections: list[SectionBlock]
    subject: str
    preheader: str

    @property
    def article_count(self) -> int:
        return sum(len(s.articles) for s in self.sections)


def section_order(session: Session, mailing_list: MailingList) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Section.slug, Section.name)
        .join(ListSection, ListSection.section_id == Section.id)
        .where(ListSection.list_id == mailing_list.id)
        .order_by(ListSection.position)
    ).all()
    return [(slug, name) for slug, name in rows]


def _views(session: Session, query_filter: object) -> list[ArticleView]:
    rows = session.execute(
        select(Article, Section.slug).join(Section).where(query_filter)  # type: ignore[arg-type]
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
        )
        for a, slug in rows
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
    ids = [i for block in edition.content for i in block["article_ids"]]
    by_id = {a.id: a for a in _views(session, Article.id.in_(ids))}
    sections = [
        SectionBlock(
            block["slug"],
            names.get(block["slug"], block["slug"]),
            [by_id[i] for i in block["article_ids"] if i in by_id],
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
) -> tuple[Edition, bool]:
    """The (list, day) edition, built and its ledger written if it did not exist yet.

    Returns the edition and whether this call created it. Calling it twice,
    even at the same moment from two processes, creates one edition: the
    unique (list, date) constraint decides, and the loser reads the winner's.
    ``check`` sees the draft first and may refuse it by raising (a broken template
    is reported before anything is stored); an existing edition still to be sent
    is checked again, since templates may have changed since its build.
    """
    existing = _find(session, mailing_list.id, day)
    if existing is not None:
        if existing.status == EditionStatus.READY and check is not None:
            check(stored_draft(session, settings, existing))
        return existing, False
    draft = draft_edition(session, settings, mailing_list, day)
    if check is not None:
        check(draft)
    edition = Edition(
        list_id=mailing_list.id,
        edition_date=day,
        status=EditionStatus.READY if draft.sections else EditionStatus.EMPTY,
        subject=draft.subject,
        preheader=draft.preheader,
        content=[
            {"slug": s.slug, "article_ids": [a.id for a in s.articles], "more": s.more}
            for s in draft.sections
        ],
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


def _find(session: Session, list_id: int, day: dt.date) -> Edition | None:
    return session.scalars(
        select(Edition).where(Edition.list_id == list_id, Edition.edition_date == day)
    ).first()
