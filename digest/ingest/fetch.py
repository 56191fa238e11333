"""Getting a feed's bytes: from a local path, a file:// URL or over HTTP(S) with limits.

feedparser is never handed a URL: it would fetch without a size cap and
follow redirects on its own. We fetch, it parses bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest.errors import FeedError

USER_AGENT = "DigestBot/0.1 (+newsletter digest mailer; feed fetcher)"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchResult:
    """What one fetch produced. ``body`` is None when the server said 304 Not Modified."""

    body: bytes | None
    status: int | None
    etag: str | None = None
    last_modified: str | None = None
    # The URL the body came from after redirects: relative links resolve against it.
    final_url: str | None = None


def local_path(location: str) -> Path | None:
    """The filesystem path a source location names, or None for an http(s) URL."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme in ("http", "https"):
        return None
    return Path(location)


def fetch(
    location: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 20.0,
    max_bytes: int = 10 * 1024 * 1024,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch one feed; raise FeedError with the reason when it cannot be had."""
    path = local_path(location)
    if path is not None:
        return _read_file(location, path, max_bytes)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "application/rss+xml, application/atom+xml, "
        "application/feed+json, application/xml;q=0.9, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own_client = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    )
    try:
        with http.stream("GET", location, headers=headers) as response:
            if response.status_code == 304:
                return FetchResult(None, 304, etag, last_modified, str(response.url))
            if response.status_code >= 400:
                raise FeedError(location, f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(location, f"body larger than {max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(location, f"body larger than {max_bytes} bytes")
                chunks.append(chunk)
            return FetchResult(
                b"".join(chunks),
                response.status_code,
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                str(response.url),
            )
    except httpx.TooManyRedirects as exc:
        raise FeedError(location, f"more than {MAX_REDIRECTS} redirects") from exc
    except httpx.TimeoutException as exc:
        raise FeedError(location, "timed out") from exc
    except httpx.HTTPError as exc:
        raise FeedError(location, f"fetch failed: {exc}") from exc
    finally:
        if own_client:
            http.close()


def _read_file(location: str, path: Path, max_bytes: int) -> FetchResult:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FeedError(location, f"file larger than {max_bytes} bytes")
        return FetchResult(path.read_bytes(), None, final_url=path.resolve().as_uri())
    except FileNotFoundError as exc:
        raise FeedError(location, "no such file") from exc
    except OSError as exc:
        raise FeedError(location, f"cannot read: {exc.strerror}") from exc
