"""Sections and mailing lists: adding, changing, switching off and removing them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.audience import normalise_email
from digest.edition.select import WHEN_EMPTY
from digest.errors import InputError, NotFoundError
from digest.ingest.text import one_line
from digest.render.utm import MAX_UTM_LENGTH, check_utm
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
    "LIST_SETTINGS",
    "WHEN_EMPTY",
    "add_list",
    "add_section",
    "check_list_enabled",
    "edit_list",
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


#: The list settings ``add_list`` and ``edit_list`` take besides name and sections.
LIST_SETTINGS = (
    "timezone",
    "send_at",
    "per_section",
    "from_address",
    "from_name",
    "language",
    "subject",
    "template_dir",
    "order_sections_by_clicks",
    "when_empty",
    "utm",
    "review",
    "review_hours",
    "unreviewed",
)


def add_list(
    session: Session,
    slug: str,
    name: str,
    section_slugs: list[str],
    **settings: Any,
) -> tuple[MailingList, bool]:
    """Create or update a list; its sections appear in the digest in the order given.

    The settings are those of ``LIST_SETTINGS`` (None: unchanged, or the default for a new
    list): ``subject`` is the subject template (``{site}``, ``{date}``, ``{top headline}``,
    ``{list}``; empty restores the default), ``template_dir`` a folder whose
    ``email/digest.html`` and ``email/digest.txt`` replace the default ones (empty: back to
    the default), ``when_empty`` what a reader whose sections have nothing gets (``skip``:
    no mail that day; ``all``: the whole edition), ``utm`` the tracking tags added to article
    links (empty: none)."""
    check_slug(slug)
    check_text(name, "the list's name", 200)
    if not section_slugs:
        raise InputError("a list needs at least one section (--sections a,b,c)")
    found = session.scalars(select(MailingList).where(MailingList.slug == slug)).first()
    created = found is None
    mailing_list = found or MailingList(slug=slug)
    _apply(session, mailing_list, name, section_slugs, settings)
    if created:
        session.add(mailing_list)
    session.flush()
    return mailing_list, created


def edit_list(
    session: Session,
    slug: str,
    *,
    name: str | None = None,
    section_slugs: list[str] | None = None,
    **settings: Any,
) -> tuple[MailingList, list[str]]:
    """Change only the given settings of an existing list (None: left as it is); returns the
    list and the names of the settings given. NotFoundError for an unknown list."""
    mailing_list = get_list(session, slug)
    given = [key for key, value in settings.items() if value is not None]
    if name is not None:
        given.insert(0, "name")
    if section_slugs is not None:
        given.insert(0, "sections")
    if not given:
        raise InputError("nothing to change: give a setting to change (`digest lists edit --help`)")
    _apply(session, mailing_list, name, section_slugs, settings)
    session.flush()
    return mailing_list, given


def _apply(
    session: Session,
    mailing_list: MailingList,
    name: str | None,
    section_slugs: list[str] | None,
    settings: dict[str, Any],
) -> None:
    """Check every given value first, then set them: a refused command changes nothing."""
    unknown = set(settings) - set(LIST_SETTINGS)
    if unknown:
        raise TypeError(f"unknown list settings: {sorted(unknown)}")
    value = {key: settings.get(key) for key in LIST_SETTINGS}
    if name is not None:
        check_text(name, "the list's name", 200)
    for label, key, limit in (
        ("--timezone", "timezone", 64),
        ("--send-at", "send_at", 5),
        ("--from-address", "from_address", 320),
        ("--from-name", "from_name", 200),
        ("--language", "language", 16),
        ("--subject", "subject", 300),
        ("--template-dir", "template_dir", 1000),
        ("--when-empty", "when_empty", 8),
        ("--utm", "utm", MAX_UTM_LENGTH),
    ):
        given = value[key]
        if given is not None:
            if not isinstance(given, str):
                raise InputError(f"{label} takes text, not {type(given).__name__}")
            check_text(given, label, limit)
    sections = None
    if section_slugs is not None:
        if not section_slugs:
            raise InputError("a list needs at least one section (--sections a,b,c)")
        if len(set(section_slugs)) != len(section_slugs):
            raise InputError("a section is named twice in --sections")
        sections = [get_section(session, s) for s in section_slugs]
    if value["timezone"] is not None:
        check_zone(value["timezone"])
    if value["send_at"] is not None:
        check_send_at(value["send_at"])
    per_section = value["per_section"]
    if per_section is not None and not (
        isinstance(per_section, int) and 1 <= per_section <= MAX_PER_SECTION
    ):
        raise InputError(f"--per-section must be 1 to {MAX_PER_SECTION}, not {per_section}")
    if value["language"] is not None:
        value["language"] = check_language(value["language"])
    if value["subject"]:
        check_subject_template(value["subject"])
    if value["template_dir"]:
        value["template_dir"] = check_template_dir(value["template_dir"])
    if value["when_empty"] is not None and value["when_empty"] not in WHEN_EMPTY:
        raise InputError(
            f"--when-empty must be {' or '.join(WHEN_EMPTY)}, not {shown(value['when_empty'])}"
        )
    if value["utm"] is not None:
        value["utm"] = check_utm(value["utm"])
    _check_review(value["review_hours"], value["unreviewed"])

    if name is not None:
        mailing_list.name = one_line(name, 200) or mailing_list.slug
    if value["timezone"] is not None:
        mailing_list.timezone = value["timezone"]
    if value["send_at"] is not None:
        mailing_list.send_at = value["send_at"]
    if per_section is not None:
        mailing_list.per_section = per_section
    if value["from_address"] is not None:
        mailing_list.from_address = normalise_email(value["from_address"])
    if value["from_name"] is not None:
        mailing_list.from_name = one_line(value["from_name"], 200)
    if value["language"] is not None:
        mailing_list.language = value["language"]
    if value["subject"] is not None:
        mailing_list.subject_template = one_line(value["subject"], 300) or None
    if value["template_dir"] is not None:
        mailing_list.template_dir = value["template_dir"] or None
    if value["order_sections_by_clicks"] is not None:
        mailing_list.order_sections_by_clicks = value["order_sections_by_clicks"]
    if value["when_empty"] is not None:
        mailing_list.when_empty = value["when_empty"]
    if value["utm"] is not None:
        mailing_list.utm = value["utm"] or None
    _review_settings(mailing_list, value["review"], value["review_hours"], value["unreviewed"])
    if sections is not None:
        mailing_list.list_sections = [
            ListSection(section_id=s.id, position=i) for i, s in enumerate(sections)
        ]
