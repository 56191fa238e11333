"""fetch(): a real HTTP server on loopback, conditional GETs, size caps and errors; local files."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.errors import FeedError
from digest.ingest.fetch import USER_AGENT, fetch

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback</title>'
    b"<item><title>Served</title><link>https://news.example/served</link></item>"
    b"</channel></rss>"
)
ETAG = '"feed-v1"'
BIG = b"x" * 5000


class _Handler(BaseHTTPRequestHandler):
    """Serves /feed.xml with an ETag, /big with and without Content-Length, /error as 500."""

    seen_headers: list[dict[str, str]] = []  # noqa: RUF012 - shared log across requests

    def do_GET(self) -> None:
        _Handler.seen_headers.append(dict(self.headers.items()))
        if self.path == "/feed.xml":
            if self.headers.get("If-None-Match") == ETAG:
                self.send_response(304)
                self.send_header("ETag", ETAG)
                self.end_headers()
                return
            self._send(200, FEED, etag=ETAG)
        elif self.path == "/big":
            self._send(200, BIG)
        elif self.path == "/big-undeclared":
            # HTTP/1.0 with no Content-Length: the body runs until the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(BIG)
        elif self.path == "/error":
            self._send(500, b"boom")
        elif self.path == "/gone":
            self._send(404, b"not here")
        else:
            self._send(404, b"unknown")

    def _send(self, status: int, body: bytes, etag: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


@pytest.fixture
def server() -> Iterator[str]:
    """A ThreadingHTTPServer on a free loopback port; yields its base URL, shut down after."""
    _Handler.seen_headers = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_fetch_returns_body_status_and_etag(server: str) -> None:
    """A plain GET gives the body, status 200, the server's ETag and the final URL."""
    result = fetch(f"{server}/feed.xml", timeout=5)
    assert result.body == FEED
    assert result.status == 200
    assert result.etag == ETAG
    assert result.final_url == f"{server}/feed.xml"
    assert _Handler.seen_headers[-1]["User-Agent"] == USER_AGENT
    assert "If-None-Match" not in _Handler.seen_headers[-1]


def test_fetch_with_etag_gets_not_modified(server: str) -> None:
    """Sending back the ETag gets 304: no body, and the ETag is kept."""
    first = fetch(f"{server}/feed.xml", timeout=5)
    second = fetch(f"{server}/feed.xml", etag=first.etag, timeout=5)
    assert _Handler.seen_headers[-1]["If-None-Match"] == ETAG
    assert second.status == 304
    assert second.body is None
    assert second.etag == ETAG


def test_fetch_with_stale_etag_gets_the_body(server: str) -> None:
    """An ETag the server no longer matches gets the full body again."""
    result = fetch(f"{server}/feed.xml", etag='"old"', timeout=5)
    assert (result.status, result.body) == (200, FEED)


def test_declared_oversize_body_raises_feed_error(server: str) -> None:
    """A Content-Length above max_bytes raises FeedError before the body is read."""
    with pytest.raises(FeedError, match="larger than 1000 bytes") as info:
        fetch(f"{server}/big", max_bytes=1000, timeout=5)
    assert info.value.url == f"{server}/big"


def test_undeclared_oversize_body_raises_feed_error(server: str) -> None:
    """A body with no Content-Length is still cut off once it passes max_bytes."""
    with pytest.raises(FeedError, match="larger than 1000 bytes"):
        fetch(f"{server}/big-undeclared", max_bytes=1000, timeout=5)


def test_body_at_the_cap_is_accepted(server: str) -> None:
    """A body exactly max_bytes long is fine."""
    assert fetch(f"{server}/big", max_bytes=len(BIG), timeout=5).body == BIG
    assert fetch(f"{server}/big-undeclared", max_bytes=len(BIG), timeout=5).body == BIG


@pytest.mark.parametrize(("path", "status"), [("/error", 500), ("/gone", 404)])
def test_http_error_status_raises_feed_error(server: str, path: str, status: int) -> None:
    """A 4xx or 5xx answer raises FeedError naming the status."""
    with pytest.raises(FeedError) as info:
        fetch(f"{server}{path}", timeout=5)
    assert info.value.reason == f"HTTP {status}"


def test_connection_refused_raises_feed_error() -> None:
    """A server that is not there raises FeedError, not an httpx exception."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FeedError, match="fetch failed"):
        fetch(f"http://127.0.0.1:{port}/feed.xml", timeout=2)


def test_local_path_and_file_url_are_read(tmp_path: Path) -> None:
    """A plain path and a file:// URL both read the file, with no HTTP status."""
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    for location in (str(path), path.as_uri()):
        result = fetch(location)
        assert (result.body, result.status) == (FEED, None)
        assert result.final_url == path.resolve().as_uri()


def test_local_file_over_the_cap_raises_feed_error(tmp_path: Path) -> None:
    """A local file larger than max_bytes is refused."""
    path = tmp_path / "huge.xml"
    path.write_bytes(BIG)
    with pytest.raises(FeedError, match="larger than"):
        fetch(str(path), max_bytes=100)


def test_missing_local_file_raises_feed_error(tmp_path: Path) -> None:
    """A path that does not exist raises FeedError saying so."""
    with pytest.raises(FeedError) as info:
        fetch(str(tmp_path / "nope.xml"))
    assert info.value.reason == "no such file"
