"""The publisher's tracking tags on article links: a list's ``--utm`` template
(``utm_source=digest&utm_medium=email&utm_campaign={list}``) checked, its placeholders filled
from the list and the edition (never from feed text), and added to an article's URL.

Only article links get them: the unsubscribe, preferences and archive links are Digest's own.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit, urlunsplit

from digest.errors import InputError

__all__ = ["MAX_PAIRS", "MAX_UTM_LENGTH", "UTM_FIELDS", "check_utm", "fill_utm", "with_utm"]

#: Longest template stored (``MailingList.utm`` is VARCHAR(500)).
MAX_UTM_LENGTH = 500
#: Most key=value pairs a template may hold.
MAX_PAIRS = 12
#: The placeholders a value may use: the list's slug and the edition's date (YYYY-MM-DD).
UTM_FIELDS = ("{list}", "{date}")

_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
# Letters, digits and a few marks that need no escaping in a query, plus the placeholders:
# nothing an operator types can add a parameter, a fragment or a space to a link.
_VALUE = re.compile(r"(?:[A-Za-z0-9_.\-~+]|\{list\}|\{date\}){0,200}\Z")


def check_utm(template: str) -> str:
    """The template as stored (surrounding space dropped); InputError naming what is wrong."""
    text = template.strip()
    if len(text) > MAX_UTM_LENGTH:
        raise InputError(f"--utm is too long: at most {MAX_UTM_LENGTH} characters")
    if not text:
        return ""
    pairs = text.split("&")
    if len(pairs) > MAX_PAIRS:
        raise InputError(f"--utm holds at most {MAX_PAIRS} key=value pairs")
    seen: set[str] = set()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _KEY.match(key):
            raise InputError(
                f"--utm takes key=value pairs joined by &, keys of letters, digits, _ . -: "
                f"not {pair[:40]!r}"
            )
        if not _VALUE.match(value):
            raise InputError(
                f"--utm value of {key} may hold letters, digits, _ . - ~ + and "
                f"{' '.join(UTM_FIELDS)}: not {value[:40]!r}"
            )
        if key in seen:
            raise InputError(f"--utm names {key} twice")
        seen.add(key)
    return text


def fill_utm(template: str, list_slug: str, day: dt.date) -> list[tuple[str, str]]:
    """The (key, value) pairs of a checked template for one list's edition of ``day``."""
    values = {"{list}": list_slug, "{date}": day.isoformat()}
    pairs = []
    for pair in template.split("&") if template else []:
        key, _, value = pair.partition("=")
        # One pass: a slug can hold no brace, but nothing filled in is read again anyway.
        pairs.append((key, re.sub(r"\{list\}|\{date\}", lambda m: values[m.group(0)], value)))
    return pairs


def with_utm(url: str, pairs: list[tuple[str, str]]) -> str:
    """``url`` with the pairs added to its query: its own parameters kept in their order, one
    of the same name replaced (the tag says where this visit came from), its fragment kept.
    A URL that is not http(s), or cannot be parsed, is left as it is."""
    if not pairs:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme not in ("http", "https"):
        return url
    ours = {key for key, _ in pairs}
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[0] not in ours]
    # Keys and values are of characters a query carries as they are (``check_utm``), and a
    # slug is too: no quoting needed, and none added to the publisher's own parameters.
    query = "&".join([*kept, *(f"{key}={value}" for key, value in pairs)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
