"""What makes two feed items the same story: the canonical form of their URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only say how a reader arrived, never which story it is.
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_NAMES = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid"})


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The story's URL with tracking parameters and fragment removed; None if not http(s).

    Relative links are resolved against ``base`` (the feed's own URL).
    """
    url = (url or "").strip()
    if not url:
        return None
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        port = parts.port  # a malformed port or IPv6 literal raises ValueError
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{netloc}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING_PREFIXES) and key.lower() not in _TRACKING_NAMES
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def http_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` resolved against ``base`` if it is http(s), else None; otherwise left as written.

    For images and other links that are shown, not compared: a signed image
    URL must keep its query exactly.
    """
    url = (url or "").strip()
    if not url or any(c in url for c in "\r\n\t\x00"):
        return None
    try:
        resolved = urljoin(base, url) if base else url
        parts = urlsplit(resolved)
        parts.port  # noqa: B018 - a malformed port raises ValueError here, not later
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return resolved[:2000]


# Schemes whose identifiers are unique beyond one feed by construction.
_GLOBAL_GUID = re.compile(
    r"^(https?://[^/\s]+\.[^/\s]+|tag:[^\s,]+\.[^\s,]+,|urn:[a-z0-9-]+:\S)", re.I
)


def guid_is_global(guid: str) -> bool:
    """True when a guid names the story beyond its own feed: a URL, a tag: or a urn: URI.

    Bare guids ("42", "post-7") are only unique within the feed that wrote
    them: two feeds' "42" are two different stories.
    """
    return bool(_GLOBAL_GUID.match(guid))


def guid_key(guid: str | None, source_id: int) -> str | None:
    """The guid as stored: global ones as written, the others scoped to their source."""
    if not guid:
        return None
    return guid if guid_is_global(guid) else f"source:{source_id}:{guid}"
