"""fetch(): a real HTTP server on loopback, redirects, conditional GETs, caps, address refusals."""

from __future__ import annotations

import ipaddress
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.errors import FeedError
from digest.ingest.fetch import (
    MAX_REDIRECTS,
    USER_AGENT,
    IPAddress,
    fetch,
    public_only,
)
from tests.ingest.feedserver import BIG, ETAG, FEED, LAST_MODIFIED, Handler, feed_server

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def loopback_only(address: IPAddress) -> bool:
    """The policy the tests run under: the test server's address and nothing else."""
    return address == LOOPBACK


@pytest.fixture
def server() -> Iterator[str]:
    with feed_server() as url:
        yield url


def get(url: str, **options: Any) -> Any:
    """fetch() under the loopback-only policy with a short timeout."""
    options.setdefault("timeout", 5)
    return fetch(url, allowed=loopback_only, **options)


def test_fetch_returns_body_status_and_etag(server: str) -> None:
    """A plain GET gives the body, status 200, the server's ETag and the final URL."""
    result = get(f"{server}/feed.xml")
    assert result.body == FEED
    assert result.status == 200
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.final_url == f"{server}/feed.xml"
    headers = Handler.seen[-1][1]
    assert headers["User-Agent"] == USER_AGENT
    assert "If-None-Match" not in headers


def test_fetch_with_etag_gets_not_modified(server: str) -> None:
    """Sending back the ETag gets 304: no body, and the ETag is kept."""
    first = get(f"{server}/feed.xml")
    second = get(f"{server}/feed.xml", etag=first.etag)
    assert Handler.seen[-1][1]["If-None-Match"] == ETAG
    assert (second.status, second.body, second.etag) == (304, None, ETAG)


def test_fetch_with_last_modified_gets_not_modified(server: str) -> None:
    """Sending back Last-Modified as If-Modified-Since gets 304 and keeps it."""
    result = get(f"{server}/feed.xml", last_modified=LAST_MODIFIED)
    assert Handler.seen[-1][1]["If-Modified-Since"] == LAST_MODIFIED
    assert (result.status, result.body, result.last_modified) == (304, None, LAST_MODIFIED)


def test_fetch_with_stale_etag_gets_the_body(server: str) -> None:
    """An ETag the server no longer matches gets the full body again."""
    result = get(f"{server}/feed.xml", etag='"old"')
    assert (result.status, result.body) == (200, FEED)


def test_redirect_is_followed_and_final_url_reported(server: str) -> None:
    """A redirect is followed to the feed; final_url is where the body came from."""
    result = get(f"{server}/redirect?to=/feed.xml&status=308")
    assert result.body == FEED
    assert result.final_url == f"{server}/feed.xml"


def test_five_redirects_are_followed(server: str) -> None:
    """A chain of exactly MAX_REDIRECTS hops still reaches the feed."""
    assert get(f"{server}/chain/{MAX_REDIRECTS}").body == FEED


def test_too_many_redirects_raise_feed_error(server: str) -> None:
    """One hop more than MAX_REDIRECTS is refused, saying so."""
    with pytest.raises(FeedError, match=f"more than {MAX_REDIRECTS} redirects"):
        get(f"{server}/chain/{MAX_REDIRECTS + 1}")


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/feed",
        "http://[::1]/feed",
        "http://127.0.0.2/feed",
        "http://0.0.0.0/feed",
    ],
)
def test_redirect_to_internal_address_is_refused(server: str, target: str) -> None:
    """An allowed server redirecting to an address the policy refuses ends the fetch."""
    with pytest.raises(FeedError, match="refused"):
        get(f"{server}/redirect?to={target}")


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://news.example/feed", "gopher://x/"])
def test_redirect_to_another_scheme_is_refused(server: str, target: str) -> None:
    """A redirect may not lead to a local file or a non-HTTP protocol."""
    with pytest.raises(FeedError, match="refused") as info:
        get(f"{server}/redirect?to={target}")
    assert "root:" not in str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.1", "localhost", "169.254.169.254", "[::1]", "10.1.2.3", "192.168.0.1"),
        *("0.0.0.0", "2130706433", "[::ffff:127.0.0.1]", "[fe80::1]", "100.64.0.1"),
    ],
)
def test_internal_addresses_are_refused_by_default(host: str) -> None:
    """Without a policy, loopback, private, link-local and shared addresses are never contacted."""
    with pytest.raises(FeedError, match=r"refused: .*internal address"):
        fetch(f"http://{host}:9/feed.xml", timeout=2)


def test_default_policy_refuses_the_test_server_before_any_request(server: str) -> None:
    """A source that was not allowed private addresses never reaches a loopback server."""
    with pytest.raises(FeedError, match="refused"):
        fetch(f"{server}/feed.xml", timeout=2)
    assert Handler.seen == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("64:ff9b::5db8:d822", True),
        ("64:ff9b::7f00:1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.251", False),
        ("ff02::1", False),
        ("fd00::1", False),
        ("240.0.0.1", False),
        ("::", False),
    ],
)
def test_public_only_policy(address: str, public: bool) -> None:
    """public_only allows global unicast and refuses embedded, multicast and reserved addresses."""
    assert public_only(ipaddress.ip_address(address)) is public


def _resolver(answers: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make getaddrinfo answer ``answers`` for the named hosts (offline DNS)."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port),
                )
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_hostname_resolving_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public-looking name whose DNS answer is internal is refused at connect time."""
    _resolver({"feeds.example": ["127.0.0.1"]}, monkeypatch)
    with pytest.raises(
        FeedError, match=r"feeds\.example resolves to internal address 127\.0\.0\.1"
    ):
        fetch("http://feeds.example/feed.xml", timeout=2)


def test_hostname_with_one_internal_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to public and internal addresses at once is refused as a whole."""
    _resolver({"mixed.example": ["93.184.216.34", "10.0.0.1"]}, monkeypatch)
    with pytest.raises(FeedError, match=r"internal address 10\.0\.0\.1"):
        fetch("http://mixed.example/feed.xml", timeout=2)


def test_connection_goes_to_the_address_that_was_checked(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket connects to the resolved, checked address while Host stays the name."""
    port = server.rsplit(":", 1)[1]
    _resolver({"feeds.example": ["127.0.0.1"]}, monkeypatch)
    result = get(f"http://feeds.example:{port}/feed.xml")
    assert result.body == FEED
    assert Handler.seen[-1][1]["Host"] == f"feeds.example:{port}"


def test_gzip_body_is_inflated(server: str) -> None:
    """A gzip Content-Encoding is inflated; the body is the feed itself."""
    assert get(f"{server}/gzip").body == FEED
    assert "gzip" in Handler.seen[-1][1]["Accept-Encoding"]


def test_gzip_bomb_is_cut_off_at_the_cap_with_bounded_memory(server: str) -> None:
    """A 20 KB gzip inflating to 20 MB is refused at a 1 MB cap without inflating it all."""
    tracemalloc.start()
    try:
        with pytest.raises(FeedError, match="larger than 1048576 bytes"):
            get(f"{server}/bomb", max_bytes=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_unsupported_content_encoding_is_an_error(server: str) -> None:
    """An encoding we did not ask for (br) is reported, not parsed as garbage."""
    with pytest.raises(FeedError, match="unsupported Content-Encoding br"):
        get(f"{server}/brotli")


def test_declared_oversize_body_raises_feed_error(server: str) -> None:
    """A Content-Length above max_bytes raises FeedError before the body is read."""
    with pytest.raises(FeedError, match="larger than 1000 bytes") as info:
        get(f"{server}/big", max_bytes=1000)
    assert info.value.url == f"{server}/big"


def test_undeclared_oversize_body_raises_feed_error(server: str) -> None:
    """A body with no Content-Length is still cut off once it passes max_bytes."""
    with pytest.raises(FeedError, match="larger than 1000 bytes"):
        get(f"{server}/big-undeclared", max_bytes=1000)


def test_body_at_the_cap_is_accepted(server: str) -> None:
    """A body exactly max_bytes long is fine."""
    assert get(f"{server}/big", max_bytes=len(BIG)).body == BIG
    assert get(f"{server}/big-undeclared", max_bytes=len(BIG)).body == BIG


def test_slow_server_times_out(server: str) -> None:
    """A server that does not answer within the timeout gives 'timed out'."""
    started = time.monotonic()
    with pytest.raises(FeedError, match="timed out"):
        get(f"{server}/slow?delay=3", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_trickling_server_hits_the_overall_deadline(server: str) -> None:
    """Bytes arriving just often enough to beat the read timeout still stop at the deadline."""
    started = time.monotonic()
    with pytest.raises(FeedError, match="timed out"):
        get(f"{server}/trickle", timeout=1)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("path", ["/drip-headers?every=0.3", "/drip-body?every=0.3"])
def test_dripping_server_stops_at_the_deadline(server: str, path: str) -> None:
    """Headers or body dripping inside every read timeout still end at the fetch's deadline."""
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"timed out after 1\.5 s"):
        get(f"{server}{path}", timeout=1.5)
    assert time.monotonic() - started < 1.5 + 0.8


@pytest.mark.parametrize(("path", "status"), [("/error", 500), ("/gone", 404)])
def test_http_error_status_raises_feed_error(server: str, path: str, status: int) -> None:
    """A 4xx or 5xx answer raises FeedError naming the status."""
    with pytest.raises(FeedError) as info:
        get(f"{server}{path}")
    assert info.value.reason == f"HTTP {status}"


def test_connection_refused_raises_feed_error() -> None:
    """A server that is not there raises FeedError, not an httpx exception."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FeedError, match="fetch failed"):
        get(f"http://127.0.0.1:{port}/feed.xml", timeout=2)


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


def test_unknown_scheme_is_refused() -> None:
    """A source URL of another scheme is neither fetched nor read as a file."""
    with pytest.raises(FeedError, match="refused: ftp URL"):
        fetch("ftp://news.example/feed.xml")
