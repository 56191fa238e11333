"""The operator's changes to sections, sources, lists and subscribers, checked before stored."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.edition.select import SUBJECT_FIELDS, zone
from digest.errors import CsvRowError, InputError, NotFoundError
from digest.feedback.privacy import is_forgotten
from digest.ingest.fetch import is_http_url, local_path
from digest.ingest.run import IDENTITIES
from digest.ingest.text import one_line
from digest.store.models import (
    ListSection,
    MailingList,
    Section,
    Source,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)

# ASCII digits only: \d would also take Arabic-Indic ones, which nothing downstream reads.
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SEND_AT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# C0 and C1 controls (NUL among them: PostgreSQL refuses it in text) and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Most articles per section a list may ask for: more would not be a digest.
MAX_PER_SECTION = 500


def _shown(value: str, limit: int = 64) -> str:
    """``value`` quoted for an error message, cut so a megabyte of input stays one short line."""
    return repr(value[:limit] + "..." if len(value) > limit else value)


def check_text(value: str, what: str, limit: int) -> str:
    """``value`` if it fits its column (``limit`` characters) and holds no control character
    or lone surrogate; else an InputError naming ``what``. Applied before anything is stored,
    so the CLI and the API refuse the same input with the same words."""
    if _CONTROL.search(value):
        raise InputError(f"{what} contains a control character (NUL, newline, ...)")
    if len(value) > limit:
        raise InputError(f"{what} is {len(value):,} characters long; at most {limit} fit")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode (a lone surrogate)") from exc
    return value


def check_slug(slug: str) -> str:
    # fullmatch: with match and "$", "news\n" would pass.
    if not _SLUG.fullmatch(slug):
        raise InputError(f"bad slug {_shown(slug)}: use lower-case letters, digits and '-'")
    return slug


def normalise_email(raw: str) -> str:
    """The address in the form it is stored and compared in, or InputError saying why not.

    Only ASCII addresses are accepted (internationalised domains are turned
    into their ASCII form), so every address can go into a header as it is.
    """
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {_shown(raw.strip())}: {exc}") from exc
    return str(result.ascii_email or result.normalized).lower()


def get_section(session: Session, slug: str) -> Section:
    # A malformed slug names nothing; asking the database would pass it NUL bytes and worse.
    if not _SLUG.fullmatch(slug):
        raise NotFoundError("section", _shown(slug))
    section = session.scalars(select(Section).where(Section.slug == slug)).first()
    if section is None:
        raise NotFoundError("section", slug)
    return section


def get_list(session: Session, slug: str) -> MailingList:
    if not _SLUG.fullmatch(slug):
        raise NotFoundError("list", _shown(slug))
    found = session.scalars(select(MailingList).where(MailingList.slug == slug)).first()
    if found is None:
        raise NotFoundError("list", slug)
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


def add_source(
    session: Session,
    location: str,
    section_slug: str,
    name: str | None = None,
    *,
    category_map: dict[str, str] | None = None,
    identity: str | None = None,
    allow_private: bool | None = None,
) -> tuple[Source, bool]:
    """Register a feed by URL (http, https, file) or local path; returns (source, created).

    Options left as None keep an existing source's setting (or the default).
    """
    location = check_text(location.strip(), "the feed's URL", 2000)
    if name is not None:
        check_text(name, "the source's name", 200)
    try:
        path = local_path(location)
    except ValueError as exc:  # urlsplit: "http://[::1" and the like
        raise InputError(f"not a URL: {_shown(location)} ({exc})") from exc
    if path is not None:
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long for the file system, and the like
            raise InputError(f"cannot use {_shown(str(path))} as a feed file: {exc}") from exc
        if not found:
            raise InputError(f"no such feed file: {_shown(str(path), 200)}")
        # Stored absolute, so ingest works from any working directory.
        location = str(path.resolve()) if "://" not in location else location
        check_text(location, "the feed file's absolute path", 2000)
    elif not is_http_url(location):
        raise InputError(
            f"a source is an http(s):// or file:// URL or a path, not {_shown(location)}"
        )
    section = get_section(session, section_slug)
    if category_map:
        for category in category_map:
            check_text(category, "a category in the category map", 100)
        for slug in set(category_map.values()):
            get_section(session, slug)  # a typo in the map is caught now, not at ingest
    if identity is not None and identity not in IDENTITIES:
        raise InputError(f"identity must be one of {', '.join(IDENTITIES)}, not {identity!r}")
    source = session.scalars(select(Source).where(Source.url == location)).first()
    created = source is None
    if source is None:
        source = Source(
            url=location,
            # The fallback is cut too: a 2,000-character URL does not fit the name's column.
            name=one_line(name or (path.stem if path else location), 200),
            section_id=section.id,
        )
        session.add(source)
    else:
        source.section_id = section.id
        if name:
            source.name = one_line(name, 200)
    if category_map is not None:
        source.category_map = category_map
    if identity is not None:
        source.identity = identity
    if allow_private is not None:
        source.allow_private = allow_private
    session.flush()
    return source, created


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
        zone(timezone)
    if send_at is not None and not _SEND_AT.fullmatch(send_at):
        raise InputError(f"--send-at must be HH:MM (24-hour), not {send_at!r}")
    if per_section is not None and not 1 <= per_section <= MAX_PER_SECTION:
        raise InputError(f"--per-section must be 1 to {MAX_PER_SECTION}, not {per_section}")
    if language is not None:
        language = check_language(language)
    if subject:
        check_subject_template(subject)
    if template_dir:
        template_dir = check_template_dir(template_dir)
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
    if created:
        session.add(mailing_list)
    mailing_list.list_sections = [
        ListSection(section_id=s.id, position=i) for i, s in enumerate(sections)
    ]
    session.flush()
    return mailing_list, created


def check_language(code: str) -> str:
    """A language code Babel knows (``en``, ``ur``, ``pt-BR``), in canonical form."""
    try:
        return str(Locale.parse(code.strip().replace("-", "_"))).replace("_", "-")
    except (UnknownLocaleError, ValueError) as exc:
        raise InputError(
            f"unknown language: {_shown(code, 20)} (use a code such as en, ur, ar)"
        ) from exc


def check_subject_template(template: str) -> None:
    """Refuse a subject template with a placeholder Digest does not fill (a typo would
    otherwise reach every subscriber's inbox as ``{top headlines}``)."""
    unknown = sorted(set(re.findall(r"\{[^{}]*\}", template)) - set(SUBJECT_FIELDS))
    if unknown:
        raise InputError(
            f"--subject: unknown placeholder {', '.join(unknown)}; use {', '.join(SUBJECT_FIELDS)}"
        )


def check_template_dir(path: str) -> str:
    """An existing folder, as an absolute path (workers may run from another directory)."""
    try:
        folder = Path(path).expanduser().resolve()
        found = folder.is_dir()
    except (RuntimeError, OSError, ValueError) as exc:  # "~nobody", a name too long, a loop
        raise InputError(f"--template-dir: cannot use {_shown(path)}: {exc}") from exc
    if not found:
        raise InputError(f"--template-dir: no such folder: {_shown(path, 200)}")
    return check_text(str(folder), "--template-dir's absolute path", 1000)


def subscribe(
    session: Session,
    mailing_list: MailingList,
    email: str,
    name: str = "",
    *,
    source: str = "operator",
) -> tuple[Subscriber, bool]:
    """Add ``email`` to the list as a confirmed subscriber (the operator vouches for consent).

    Returns (subscriber, newly subscribed). An address that unsubscribed or
    bounced stays so: re-adding it must be the subscriber's own choice.
    """
    address = normalise_email(email)
    if is_forgotten(session, address):
        raise InputError(f"{address} asked to be forgotten and stays suppressed")
    clean_name = one_line(name, 200)
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, name=clean_name, status=SubscriberStatus.ACTIVE)
        session.add(subscriber)
        session.flush()
    elif clean_name and not subscriber.name:
        subscriber.name = clean_name
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.list_id == mailing_list.id, Subscription.subscriber_id == subscriber.id
        )
    ).first()
    if subscription is not None:
        return subscriber, False
    now = utcnow()
    session.add(
        Subscription(
            list_id=mailing_list.id,
            subscriber_id=subscriber.id,
            status=SubscriptionStatus.CONFIRMED,
            source=source[:100],
            created_at=now,
            confirmed_at=now,
        )
    )
    session.flush()
    return subscriber, True


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    errors: list[CsvRowError] = field(default_factory=list)


def read_subscriber_csv(path: Path) -> Iterator[tuple[int, str, str] | CsvRowError]:
    """(line, email, name) per data row of a CSV with an ``email`` and optional ``name`` column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "email" not in fields:
        raise InputError(f"{path}: the first line must name the columns, with an 'email' column")
    reader.fieldnames = fields
    for row in reader:
        line = reader.line_num
        if None in row:
            yield CsvRowError(line, "more fields than the header names")
            continue
        yield line, (row.get("email") or "").strip(), (row.get("name") or "").strip()


def import_subscribers(session: Session, mailing_list: MailingList, path: Path) -> ImportReport:
    """Import every good row; bad rows are reported with their line numbers and skipped."""
    report = ImportReport()
    for item in read_subscriber_csv(path):
        if isinstance(item, CsvRowError):
            report.errors.append(item)
            continue
        line, email, name = item
        if not email:
            report.errors.append(CsvRowError(line, "no email address"))
            continue
        try:
            with session.begin_nested():
                _, added = subscribe(
                    session, mailing_list, email, name, source=f"csv import {path.name}"
                )
        except InputError as exc:
            report.errors.append(CsvRowError(line, str(exc)))
            continue
        if added:
            report.added += 1
        else:
            report.already += 1
    return report


def list_subscribers(
    session: Session, mailing_list: MailingList
) -> list[tuple[Subscriber, Subscription]]:
    rows = session.execute(
        select(Subscriber, Subscription)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == mailing_list.id)
        .order_by(Subscriber.email)
    )
    return [(subscriber, subscription) for subscriber, subscription in rows]
