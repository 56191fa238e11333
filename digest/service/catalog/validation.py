"""Checks every operator input goes through before anything is stored, so the CLI, the API
and the web app refuse the same input with the same words."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from babel import Locale, UnknownLocaleError
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from digest.audience import normalise_email
from digest.edition.select import SUBJECT_FIELDS, zone
from digest.errors import InputError
from digest.ingest.fetch import is_http_url, local_path
from digest.ingest.run import IDENTITIES, parse_category_map
from digest.ingest.text import one_line

__all__ = [
    "IDENTITIES",
    "MAX_PER_SECTION",
    "check_email",
    "check_language",
    "check_location",
    "check_send_at",
    "check_slug",
    "check_subject_template",
    "check_template_dir",
    "check_text",
    "check_zone",
    "closest",
    "is_http_url",
    "is_slug",
    "one_line",
    "parse_category_map",
    "shown",
    "urlsplit_or_none",
]

# ASCII digits only: \d would also take Arabic-Indic ones, which nothing downstream reads.
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SEND_AT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# C0 and C1 controls (NUL among them: PostgreSQL refuses it in text) and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Most articles per section a list may ask for: more would not be a digest.
MAX_PER_SECTION = 500


def shown(value: str, limit: int = 64) -> str:
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
        raise InputError(f"bad slug {shown(slug)}: use lower-case letters, digits and '-'")
    return slug


def is_slug(value: str) -> bool:
    """Whether ``value`` can be a slug at all (a malformed one names nothing: asking the
    database would pass it NUL bytes and worse)."""
    return _SLUG.fullmatch(value) is not None


def check_send_at(value: str) -> str:
    if not _SEND_AT.fullmatch(value):
        raise InputError(f"--send-at must be HH:MM (24-hour), not {value!r}")
    return value


def check_zone(name: str) -> str:
    """An IANA time zone name Digest can use, or InputError."""
    zone(name)
    return name


def closest(session: Session, column: InstrumentedAttribute[str], name: str) -> list[str]:
    """The existing name a typo most likely meant (the tables hold tens of names, not more)."""
    return difflib.get_close_matches(name, session.scalars(select(column)).all(), n=1)


def check_location(location: str) -> tuple[str, Path | None]:
    """A feed's location as it is stored (a path made absolute) and, for a file, its path;
    InputError for anything that is neither an http(s) URL nor a readable feed file. Called
    before anything is fetched or written."""
    location = check_text(location.strip(), "the feed's URL", 2000)
    if "://" in location and urlsplit_or_none(location) is None:
        raise InputError(f"not a URL: {shown(location)}")
    path = local_path(location)
    if path is not None:
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long for the file system, and the like
            raise InputError(f"cannot use {shown(str(path))} as a feed file: {exc}") from exc
        if not found:
            raise InputError(f"no such feed file: {shown(str(path), 200)}")
        # Stored absolute, so ingest works from any working directory.
        location = str(path.resolve()) if "://" not in location else location
        check_text(location, "the feed file's absolute path", 2000)
    elif not is_http_url(location):
        raise InputError(
            f"a source is an http(s):// or file:// URL or a path, not {shown(location)}"
        )
    return location, path


def urlsplit_or_none(location: str) -> SplitResult | None:
    """``urlsplit`` of a location, or None where it cannot be split ("http://[::1")."""
    try:
        return urlsplit(location)
    except ValueError:
        return None


def check_language(code: str) -> str:
    """A language code Babel knows (``en``, ``ur``, ``pt-BR``), in canonical form."""
    try:
        return str(Locale.parse(code.strip().replace("-", "_"))).replace("_", "-")
    except (UnknownLocaleError, ValueError) as exc:
        raise InputError(
            f"unknown language: {shown(code, 20)} (use a code such as en, ur, ar)"
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
        raise InputError(f"--template-dir: cannot use {shown(path)}: {exc}") from exc
    if not found:
        raise InputError(f"--template-dir: no such folder: {shown(path, 200)}")
    return check_text(str(folder), "--template-dir's absolute path", 1000)


def check_email(address: str) -> str:
    """An email address in the form it is stored in (``audience.normalise_email``)."""
    return normalise_email(address)
