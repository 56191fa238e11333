"""Sections and mailing lists: adding, changing, switching off and removing them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.audience import normalise_email
from digest.errors import InputError, NotFoundError
from digest.ingest.text import one_line
from digest.service.catalog.validation import (
    MAX_PER_SECTION,
    check_language,
    check_send_at,
    check_slug,
    check_subject_template,
    check_template_dir,
    check_text,
    check_zone,
    closest,
    is_slug,
    shown,
)
from digest.store.models import (
    ConsentEvent,
    Edition,
    ListSection,
    MailingList,
    Section,
    Subscription,
)

__all__ = [
    "add_list",
    "add_section",
    "check_list_enabled",
    "get_list",
    "get_section",
    "remove_list",
    "set_list_enabled",
    "set_list_public",
    "set_list_review",
]

#: What a list with review does at the send time with an edition nobody approved.
UNREVIEWED = ("send", "hold")
#: Most hours ahead of the send time an edition may be built for review.
MAX_REVIEW_HOURS = 23


def get_section(session: Session, slug: str) -> Section:
    # A malformed slug names nothing; asking the database would pass it NUL bytes and worse.
    if not is_slug(slug):
        raise NotFoundError("section", shown(slug))
    section = session.scalars(select(Section).where(Section.slug == slug)).first()
    if section is None:
        raise NotFoundError("section", slug, closest(session, Section.slug, slug))
    return section


def get_list(session: Session, slug: str) -> MailingList:
    if not is_slug(slug):
        raise NotFoundError("list", shown(slug))
    found = session.scalars(select(MailingList).where(MailingList.slug == slug)).first()
    if found is None:
        raise NotFoundError("list", slug, closest(session, MailingList.slug, slug))
    return found


def add_section(session: Session, slug: str, name: str) -> tuple[Section, bool]:
    """Create the section, or rename it if it exists; returns (section, created)."""
    check_slug(slug)
    name = one_line(check_text(name, "the section's name", 200), 200)
    if not name:
        raise InputError("a section needs a name")
    existing = session.scalars(select(Section).where(Section.slug == slug)).first()
    if existing:
        existing.name = name
        return existing, False
    section = Section(slug=slug, name=name)
    session.add(section)
    session.flush()
    return section, True


def check_list_enabled(mailing_list: MailingList) -> None:
    """Refuse to send a disabled list's edition, in one line that says how to send it."""
    if not mailing_list.enabled:
        raise InputError(
            f"list {mailing_list.slug} is disabled: nothing is sent to it "
            f"(`digest lists enable {mailing_list.slug}` to send again)"
        )


def set_list_enabled(session: Session, slug: str, enabled: bool) -> MailingList:
    """Stop or restart a list's sends; its editions, ledger and subscribers are kept."""
    mailing_list = get_list(session, slug)
    mailing_list.enabled = enabled
    session.flush()
    return mailing_list


def set_list_public(session: Session, slug: str, public: bool) -> MailingList:
    """Show or hide a list on the public index page; its own subscribe page keeps working."""
    mailing_list = get_list(session, slug)
    mailing_list.public = public
    session.flush()
    return mailing_list


def _check_review(review_hours: int | None, unreviewed: str | None) -> None:
    if review_hours is not None and not 0 <= review_hours <= MAX_REVIEW_HOURS:
        raise InputError(f"--review-hours must be 0 to {MAX_REVIEW_HOURS}, not {review_hours}")
    if unreviewed is not None and unreviewed not in UNREVIEWED:
        raise InputError(f"--unreviewed must be send or hold, not {shown(unreviewed)}")


def _review_settings(
    mailing_list: MailingList,
    review: bool | None,
    review_hours: int | None,
    unreviewed: str | None,
) -> None:
    if review is not None:
        mailing_list.review = review
    if review_hours is not None:
        mailing_list.review_hours = review_hours
    if unreviewed is not None:
        mailing_list.unreviewed = unreviewed


def set_list_review(
    session: Session,
    slug: str,
    *,
    review: bool | None = None,
    review_hours: int | None = None,
    unreviewed: str | None = None,
) -> MailingList:
    """Change a list's review settings (None: unchanged): ``review`` on or off,
    ``review_hours`` (0 to 23) before the send time its edition is built and held, and what
    an unapproved edition does at the send time, ``unreviewed``: "send" (as built) or "hold"
    (until approved). An edition already held stays held until approved or released."""
    _check_review(review_hours, unreviewed)
    mailing_list = get_list(session, slug)
    _review_settings(mailing_list, review, review_hours, unreviewed)
    return mailing_list


def remove_list(session: Session, slug: str) -> MailingList:
    """Delete a list that holds no history: no edition, subscription or consent record.

    A list that was ever sent or subscribed to is history a publisher must keep (what was
    sent to whom, who consented to what): it can be disabled and hidden instead.
    """
    mailing_list = get_list(session, slug)
    held = {
        "editions": _count(session, Edition, Edition.list_id == mailing_list.id),
        "subscriptions": _count(session, Subscription, Subscription.list_id == mailing_list.id),
        "consent records": _count(session, ConsentEvent, ConsentEvent.list_id == mailing_list.id),
    }
    history = ", ".join(f"{n} {what}" for what, n in held.items() if n)
    if history:
        raise InputError(
            f"list {slug} has {history}: that history is kept, so it cannot be removed; "
            f"`digest lists disable {slug}` stops its sends and `digest lists hide {slug}` "
            "takes it off the public page"
        )
    # Its sections go with it: the relationship cascades.
    session.delete(mailing_list)
    session.flush()
    return mailing_list


def _count(session: Session, model: type[Any], *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def add_list(
    session: Session,
    slug: str,
    name: str,
    section_slugs: list[str],
    *,
    timezone: str | None = None,
    send_at: str | None = None,
    per_section: int | None = None,
    from_address: str | None = None,
    from_name: str | None = None,
    language: str | None = None,
    subject: str | None = None,
    template_dir: str | None = None,
    order_sections_by_clicks: bool | None = None,
    review: bool | None = None,
    review_hours: int | None = None,
    unreviewed: str | None = None,
) -> tuple[MailingList, bool]:
    """Create or update a list; its sections appear in the digest in the order given.

    ``subject`` is the subject template (``{site}``, ``{date}``, ``{top headline}``,
    ``{list}``; empty restores the default), ``template_dir`` a folder whose
    ``email/digest.html`` and ``email/digest.txt`` replace the default ones
    (empty: back to the default)."""
    check_slug(slug)
    check_text(name, "the list's name", 200)
    for label, value, limit in (
        ("--timezone", timezone, 64),
        ("--send-at", send_at, 5),
        ("--from-address", from_address, 320),
        ("--from-name", from_name, 200),
        ("--language", language, 16),
        ("--subject", subject, 300),
        ("--template-dir", template_dir, 1000),
    ):
        if value is not None:
            check_text(value, label, limit)
    if not section_slugs:
        raise InputError("a list needs at least one section (--sections a,b,c)")
    if len(set(section_slugs)) != len(section_slugs):
        raise InputError("a section is named twice in --sections")
    sections = [get_section(session, s) for s in section_slugs]
    if timezone is not None:
        check_zone(timezone)
    if send_at is not None:
        check_send_at(send_at)
    if per_section is not None and not 1 <= per_section <= MAX_PER_SECTION:
        raise InputError(f"--per-section must be 1 to {MAX_PER_SECTION}, not {per_section}")
    if language is not None:
        language = check_language(language)
    if subject:
        check_subject_template(subject)
    if template_dir:
        template_dir = check_template_dir(template_dir)
    _check_review(review_hours, unreviewed)
    found = session.scalars(select(MailingList).where(MailingList.slug == slug)).first()
    created = found is None
    mailing_list = found or MailingList(slug=slug)
    mailing_list.name = one_line(name, 200) or slug
    if timezone is not None:
        mailing_list.timezone = timezone
    if send_at is not None:
        mailing_list.send_at = send_at
    if per_section is not None:
        mailing_list.per_section = per_section
    if from_address is not None:
        mailing_list.from_address = normalise_email(from_address)
    if from_name is not None:
        mailing_list.from_name = one_line(from_name, 200)
    if language is not None:
        mailing_list.language = language
    if subject is not None:
        mailing_list.subject_template = one_line(subject, 300) or None
    if template_dir is not None:
        mailing_list.template_dir = template_dir or None
    if order_sections_by_clicks is not None:
        mailing_list.order_sections_by_clicks = order_sections_by_clicks
    _review_settings(mailing_list, review, review_hours, unreviewed)
    if created:
        session.add(mailing_list)
    mailing_list.list_sections = [
        ListSection(section_id=s.id, position=i) for i, s in enumerate(sections)
    ]
    session.flush()
    return mailing_list, created
