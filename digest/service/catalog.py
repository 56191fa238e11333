"""The operator's changes to sections, sources, lists and subscribers, checked before stored."""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

from babel import Locale, UnknownLocaleError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from digest.audience import EMAIL_MAX_LENGTH, add_confirmed, clean_name, normalise_email
from digest.config import Settings
from digest.edition.select import SUBJECT_FIELDS, zone
from digest.errors import CsvRowError, FeedError, InputError, NotFoundError
from digest.ingest.fetch import any_address, fetch, is_http_url, local_path, public_only
from digest.ingest.parse import parse_feed
from digest.ingest.run import IDENTITIES
from digest.ingest.text import one_line
from digest.service import csvio
from digest.service.csvio import csv_safe_cell, read_subscriber_csv
from digest.store.db import Database
from digest.store.models import (
    Article,
    ConsentEvent,
    Edition,
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

# Re-exported: the CSV faces (CLI export, API) reach them through the catalog.
__all__ = ["ImportReport", "csv_safe_cell", "import_subscribers", "read_subscriber_csv"]

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


def get_section(session: Session, slug: str) -> Section:
    # A malformed slug names nothing; asking the database would pass it NUL bytes and worse.
    if not _SLUG.fullmatch(slug):
        raise NotFoundError("section", _shown(slug))
    section = session.scalars(select(Section).where(Section.slug == slug)).first()
    if section is None:
        raise NotFoundError("section", slug, _closest(session, Section.slug, slug))
    return section


def get_list(session: Session, slug: str) -> MailingList:
    if not _SLUG.fullmatch(slug):
        raise NotFoundError("list", _shown(slug))
    found = session.scalars(select(MailingList).where(MailingList.slug == slug)).first()
    if found is None:
        raise NotFoundError("list", slug, _closest(session, MailingList.slug, slug))
    return found


def _closest(session: Session, column: InstrumentedAttribute[str], name: str) -> list[str]:
    """The existing name a typo most likely meant (the tables hold tens of names, not more)."""
    return difflib.get_close_matches(name, session.scalars(select(column)).all(), n=1)


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
    location, path = check_location(location)
    if name is not None:
        check_text(name, "the source's name", 200)
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


def check_location(location: str) -> tuple[str, Path | None]:
    """A feed's location as it is stored (a path made absolute) and, for a file, its path;
    InputError for anything that is neither an http(s) URL nor a readable feed file. Called
    before anything is fetched or written."""
    location = check_text(location.strip(), "the feed's URL", 2000)
    if "://" in location and urlsplit_or_none(location) is None:
        raise InputError(f"not a URL: {_shown(location)}")
    path = local_path(location)
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
    return location, path


def urlsplit_or_none(location: str) -> SplitResult | None:
    """``urlsplit`` of a location, or None where it cannot be split ("http://[::1")."""
    try:
        return urlsplit(location)
    except ValueError:
        return None


def find_source(session: Session, location: str) -> Source | None:
    """The source stored for ``location`` (a path is compared in its absolute form)."""
    path = local_path(location.strip())
    if path is not None and "://" not in location:
        location = str(path.resolve())
    return session.scalars(select(Source).where(Source.url == location.strip())).first()


def get_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFoundError("source", source_id)
    return source


def set_source_enabled(session: Session, source_id: int, enabled: bool) -> Source:
    """Stop or restart fetching a source; its articles and their editions stay as they are."""
    source = get_source(session, source_id)
    source.enabled = enabled
    if enabled:
        # A source switched back on is fetched at the next run, not after an old backoff.
        source.next_fetch_at = None
    session.flush()
    return source


def remove_source(session: Session, source_id: int) -> tuple[Source, int]:
    """Delete a source; returns (the source as it was, articles kept).

    Its articles stay (editions and the archive point at them), detached from any source,
    so a story already sent is never lost, and re-adding the feed does not send it again.
    """
    source = get_source(session, source_id)
    kept = _count(session, Article, Article.source_id == source.id)
    session.execute(update(Article).where(Article.source_id == source.id).values(source_id=None))
    session.delete(source)
    session.flush()
    return source, kept


def private_address(location: str) -> str | None:
    """The loopback, private or link-local address an http(s) source's host names or resolves
    to, or None (a public host, a file, or a name that does not resolve now)."""
    if not is_http_url(location):
        return None
    host = urlsplit(location).hostname or ""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in sorted(addresses, key=str):
        if not public_only(address):
            return str(address)
    return None


@dataclass(frozen=True)
class FeedCheck:
    """What one fetch and parse of a feed found, without storing anything."""

    items: int = 0
    newest_at: dt.datetime | None = None
    newest_headline: str = ""
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"could not read the feed: {self.error}"
        if not self.items:
            return "0 items: the feed is readable but empty (or truncated)"
        when = self.newest_at.strftime("%Y-%m-%d %H:%M") if self.newest_at else "?"
        return f"{self.items} items, newest {when} UTC: {self.newest_headline}"


def check_feed(settings: Settings, location: str, *, allow_private: bool = False) -> FeedCheck:
    """Fetch and parse ``location`` once, as ingest would, and say what it holds."""
    try:
        result = fetch(
            location,
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            allowed=any_address if allow_private else public_only,
        )
        if result.body is None:
            return FeedCheck(error=f"HTTP {result.status} without a body")
        items = parse_feed(result.body, location, utcnow())
    except FeedError as exc:
        return FeedCheck(error=exc.reason)
    if not items:
        return FeedCheck()
    newest = max(items, key=lambda item: item.published_at)
    return FeedCheck(len(items), newest.published_at, newest.headline)


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
    session.execute(delete(ListSection).where(ListSection.list_id == mailing_list.id))
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
    if order_sections_by_clicks is not None:
        mailing_list.order_sections_by_clicks = order_sections_by_clicks
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
    """Add ``email`` to the list as a confirmed subscriber (see ``audience.add_confirmed``)."""
    return add_confirmed(session, mailing_list, email, name, source=source)


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    errors: list[CsvRowError] = field(default_factory=list)


#: Distinct addresses written to the database at a time: memory stays flat in the file's size,
#: and each statement is big enough that the per-statement cost vanishes.
IMPORT_CHUNK_ROWS = 20_000

_STAGE = "digest_import_stage"


class _Stage:
    """A temporary table of (email, name) rows merged into subscribers and subscriptions with
    a few set-based statements per chunk, in the caller's transaction."""

    def __init__(self, session: Session, list_id: int, source: str) -> None:
        self.session = session
        self.list_id = list_id
        self.source = source[:100]
        self.postgres = session.get_bind().dialect.name == "postgresql"
        # The driver's own connection: COPY (psycopg) and executemany (sqlite3) are where the
        # speed is, and they run in the same transaction as the session.
        self.raw: Any = session.connection().connection.driver_connection
        session.execute(
            text(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
                "(email TEXT NOT NULL, name TEXT NOT NULL)"
            )
        )

    def merge(self, rows: dict[str, str]) -> int:
        """Write one chunk of distinct (address, name); returns how many were newly subscribed."""
        session = self.session
        # TRUNCATE, not DELETE: nothing vacuums a temporary table, and the dead rows of every
        # earlier chunk would be scanned again by each later one.
        session.execute(text(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} {_STAGE}"))
        cursor = self.raw.cursor()
        try:
            if self.postgres:
                with cursor.copy(f"COPY {_STAGE} (email, name) FROM STDIN") as copy:
                    for row in rows.items():
                        copy.write_row(row)
            else:
                insert = f"INSERT INTO {_STAGE} (email, name) VALUES (?, ?)"
                cursor.executemany(insert, rows.items())
        finally:
            cursor.close()
        now = utcnow()
        # A name only fills an empty one: an operator's file never overwrites a name the
        # subscriber gave. "WHERE true" lets SQLite tell ON CONFLICT from a join constraint.
        session.execute(
            text(
                "INSERT INTO subscribers (email, name, status, created_at) "
                f"SELECT email, name, :active, :now FROM {_STAGE} WHERE true "
                "ON CONFLICT (email) DO UPDATE SET name = excluded.name "
                "WHERE subscribers.name = '' AND excluded.name <> ''"
            ),
            {"active": SubscriberStatus.ACTIVE.value, "now": now},
        )
        # Only active subscribers: one who unsubscribed or bounced is not signed up again by
        # an operator's file, not even to another list. The lookup is a subquery per staged
        # row, not a join: mid-import the table has no statistics, and PostgreSQL would hash
        # all of subscribers for every chunk (quadratic in the file's size).
        # OFFSET 0 keeps PostgreSQL from inlining the subquery into the WHERE as well, which
        # would run each lookup twice.
        fence = " OFFSET 0" if self.postgres else ""
        added = session.execute(
            text(
                "INSERT INTO subscriptions "
                "(list_id, subscriber_id, status, source, created_at, confirmed_at) "
                "SELECT :list_id, found.id, :confirmed, :source, :now, :now FROM ("
                "SELECT (SELECT s.id FROM subscribers AS s "
                "WHERE s.email = st.email AND s.status = :active) AS id "
                f"FROM {_STAGE} AS st{fence}) AS found WHERE found.id IS NOT NULL "
                "ON CONFLICT (list_id, subscriber_id) DO NOTHING"
            ),
            {
                "list_id": self.list_id,
                "confirmed": SubscriptionStatus.CONFIRMED.value,
                "source": self.source,
                "now": now,
                "active": SubscriberStatus.ACTIVE.value,
            },
        )
        return int(added.rowcount)  # type: ignore[attr-defined]

    def drop(self) -> None:
        self.session.execute(text(f"DROP TABLE IF EXISTS {_STAGE}"))


def import_subscribers(
    target: Session | Database,
    mailing_list: MailingList | int,
    source: Path | str | IO[bytes] | IO[str],
    *,
    source_label: str | None = None,
    chunk_rows: int = IMPORT_CHUNK_ROWS,
) -> ImportReport:
    """Import every good row of a subscriber CSV; bad rows are reported with their line
    numbers and skipped.

    ``source`` is a path or an open binary (or text) stream, read once as a stream.
    ``source_label`` names it in the subscriptions' consent source ("csv import LABEL") and,
    for a stream, in messages; it defaults to the file's name. A new address becomes an active
    subscriber with a confirmed subscription; an existing one keeps its status and name (a
    name only fills an empty one); an address that unsubscribed or bounced is not subscribed
    again and counts as already there, as does a repeat within the file. Everything happens
    in one transaction: given a Database, its own; given a Session, the caller's, so an error
    that ends the import (the InputError of an unreadable file) leaves nothing behind once
    the caller rolls back.
    """
    if isinstance(target, Database):
        with target.session() as session:
            return import_subscribers(
                session, mailing_list, source, source_label=source_label, chunk_rows=chunk_rows
            )
    session = target
    if isinstance(mailing_list, int):
        found = session.get(MailingList, mailing_list)
        if found is None:
            raise NotFoundError("list", mailing_list)
        mailing_list = found
    if source_label is None:
        source_label = (
            Path(source).name
            if isinstance(source, str | Path)
            else Path(str(getattr(source, "name", "") or "upload.csv")).name
        )
    session.flush()
    report = ImportReport()
    rows = csvio.read_subscriber_csv(source, label=source_label)
    stage: _Stage | None = None
    # Distinct addresses of the chunk, with the first non-empty name given for each.
    chunk: dict[str, str] = {}
    chunk_good = 0
    for item in rows:
        if isinstance(item, CsvRowError):
            report.errors.append(item)
            continue
        line, email, name = item
        if not email:
            report.errors.append(CsvRowError(line, "no email address"))
            continue
        if len(email) > EMAIL_MAX_LENGTH:
            report.errors.append(
                CsvRowError(line, f"invalid email address: {len(email)} characters is too long")
            )
            continue
        try:
            address = normalise_email(email)
        except InputError as exc:
            report.errors.append(CsvRowError(line, str(exc)))
            continue
        chunk_good += 1
        clean = clean_name(name) if name else ""
        if not chunk.get(address):
            chunk[address] = clean
        if len(chunk) >= chunk_rows:
            stage = stage or _Stage(session, mailing_list.id, f"csv import {source_label}")
            added = stage.merge(chunk)
            report.added += added
            report.already += chunk_good - added
            chunk, chunk_good = {}, 0
    if chunk:
        stage = stage or _Stage(session, mailing_list.id, f"csv import {source_label}")
        added = stage.merge(chunk)
        report.added += added
        report.already += chunk_good - added
    if stage is not None:
        stage.drop()
        # The rows changed under the ORM: objects already loaded must be read again.
        session.expire_all()
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
