"""Getting a feed's bytes: from a local path, a file:// URL or over HTTP(S) with limits.

feedparser is never handed a URL: it would fetch without a size cap and
follow redirects on its own. We fetch, it parses bytes.

A feed URL is untrusted input that makes this machine open connections, so
by default only public addresses are contacted. The check happens in the
network backend at the moment of connecting, to the very address that was
checked: resolving once to check and again to connect would let a DNS
server answer "public" the first time and "127.0.0.1" the second
(DNS rebinding). Redirects are followed here, one hop at a time, so every
hop is held to the same rules.

A fetch has one deadline for everything it does: resolving, connecting, TLS,
the request, every header line and the body, over every redirect hop. httpx's
timeouts are per operation, so a server dripping one header line a second
would never trip them; every socket operation here is given only what is left
of the deadline instead.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from digest.errors import FeedError

USER_AGENT = "DigestBot/0.1 (+newsletter digest mailer; feed fetcher)"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Decides whether a resolved address may be connected to.
AddressPolicy = Callable[[IPAddress], bool]

# NAT64 embeds an IPv4 address in an IPv6 one: 64:ff9b::127.0.0.1 is loopback too.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The host resolved to an address the policy does not allow.

    Not an httpcore.ConnectError, so the pool does not retry it as a network
    failure, and fetch() can tell the operator the real reason.
    """


def public_only(address: IPAddress) -> bool:
    """True for globally routable unicast addresses; False for every internal kind."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public_only(address.ipv4_mapped)
        if address in _NAT64:
            return public_only(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    # is_global alone misses nothing we know of, but the named checks say what
    # we mean and guard against a Python whose tables are older than ours.
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def any_address(address: IPAddress) -> bool:
    """The policy of a source the operator allowed to reach internal addresses."""
    return True


class _Deadline:
    """The moment a fetch must be over; hands each socket operation what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise error(f"deadline of {self.seconds:g} s passed")
        return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _resolve(host: str, port: int, deadline: _Deadline | None) -> list[Any]:
    """getaddrinfo, given up on (not waited for) when the deadline passes first.

    getaddrinfo has no timeout of its own and cannot be interrupted; a daemon
    thread that outlives the fetch costs nothing but the thread.
    """
    if deadline is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:  # a literal address resolves without asking anyone
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: list[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting thread, raised there
            outcome.append(exc)
        done.set()

    threading.Thread(target=lookup, name=f"resolve {host[:40]}", daemon=True).start()
    if not done.wait(deadline.left(None, httpcore.ConnectTimeout)):
        raise httpcore.ConnectTimeout(f"resolving {host} outlasted the deadline")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return list(outcome[0])


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, checks every address, and connects only to a checked one.

    With a deadline, every connection it makes is held to it.
    """

    def __init__(self, allowed: AddressPolicy, deadline: _Deadline | None = None) -> None:
        self._allowed = allowed
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = _resolve(host, port, self._deadline)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        checked: list[str] = []
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            # One internal address among public ones is refused as a whole: a
            # host that mixes them is either misconfigured or an attack.
            if not self._allowed(address):
                named = "" if host.strip("[]") == str(address) else f"{host} resolves to "
                raise AddressRefused(f"{named}internal address {address}")
            checked.append(str(address))
        last: Exception | None = None
        for ip in dict.fromkeys(checked):  # in resolver order, without repeats
            try:
                # TLS still verifies the certificate against the host name:
                # httpcore passes the origin's name as server_hostname.
                if self._deadline is None:
                    return super().connect_tcp(ip, port, timeout, local_address, socket_options)
                left = self._deadline.left(timeout, httpcore.ConnectTimeout)
                stream = super().connect_tcp(ip, port, left, local_address, socket_options)
                return _DeadlineStream(stream, self._deadline)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, on a connection pool that uses the guarded backend."""

    def __init__(self, allowed: AddressPolicy, deadline: _Deadline | None = None) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        # httpx has no public knob for the network backend; the pool it builds
        # is replaced by an equal one that connects through our checks.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=4,
            network_backend=_GuardedBackend(allowed, deadline),
        )


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every fetch: building one loads the CA bundle (~10 ms of CPU)."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


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
    """The filesystem path a source location names, or None for a URL with another scheme
    (or for text that is not a URL at all, such as ``http://[::1``)."""
    try:
        parts = urlsplit(location)
    except ValueError:
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    # "C:\feeds\x.xml" parses with scheme "c": one letter is a drive, not a scheme.
    if parts.scheme == "" or len(parts.scheme) == 1:
        return Path(location)
    return None


def is_http_url(location: str) -> bool:
    """True for an http(s) URL with a host: the only kind of remote source."""
    try:
        parts = urlsplit(location)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def fetch(
    location: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 20.0,
    max_bytes: int = 10 * 1024 * 1024,
    allowed: AddressPolicy = public_only,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch one feed; raise FeedError with the reason when it cannot be had.

    ``allowed`` decides which resolved addresses may be contacted (default:
    public ones only); ``client`` is for tests and bypasses that check.
    """
    path = local_path(location)
    if path is not None:
        return _read_file(location, path, max_bytes)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "application/rss+xml, application/atom+xml, "
        "application/feed+json, application/xml;q=0.9, */*;q=0.5",
        # Only what _decoded() can inflate under the cap.
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own_client = client is None
    # The deadline starts before the client exists: resolving and connecting count too.
    limit = _Deadline(timeout)
    http = client or httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        transport=_GuardedTransport(allowed, limit),
        trust_env=False,
    )
    deadline = limit.at
    url = location
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            _check_scheme(location, url)
            with http.stream("GET", url, headers=headers) as response:
                if response.status_code in _REDIRECTS and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code == 304:
                    return FetchResult(None, 304, etag, last_modified, url)
                if response.status_code >= 400:
                    raise FeedError(location, f"HTTP {response.status_code}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FeedError(location, f"body larger than {max_bytes} bytes")
                body = _read_capped(location, response, max_bytes, deadline, timeout)
                return FetchResult(
                    body,
                    response.status_code,
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    url,
                )
        raise FeedError(location, f"more than {MAX_REDIRECTS} redirects")
    except AddressRefused as exc:
        raise FeedError(location, f"refused: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise FeedError(location, f"timed out after {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise FeedError(location, f"fetch failed: {exc}") from exc
    finally:
        if own_client:
            http.close()


def _check_scheme(location: str, url: str) -> None:
    # A redirect to file://, ftp:// or gopher:// must not reach a local file or
    # another protocol: only the operator may name a file, by adding it.
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # "http://[::1": not a URL at all
        raise FeedError(location, f"not a URL: {url[:200]}") from exc
    if scheme not in ("http", "https"):
        raise FeedError(location, f"refused: {scheme or 'relative'} URL {url[:200]}")


def _read_capped(
    location: str, response: httpx.Response, max_bytes: int, deadline: float, timeout: float
) -> bytes:
    """The body, decompressed, refused as soon as the inflated size passes ``max_bytes``, or
    once ``deadline`` passes (the fetch's ``timeout`` seconds, said in the error)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    chunks: list[bytes] = []
    size = 0
    for chunk in _decoded(location, response.iter_raw(), encoding, max_bytes):
        size += len(chunk)
        if size > max_bytes:
            raise FeedError(location, f"body larger than {max_bytes} bytes")
        if time.monotonic() > deadline:  # an injected client has no deadline of its own
            raise FeedError(location, f"timed out after {timeout:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(location: str, raw: Iterator[bytes], encoding: str, max_bytes: int) -> Iterator[bytes]:
    """Inflate gzip/deflate ourselves, never more than the cap allows at a time.

    httpx would inflate each network chunk whole: a 64 KB chunk of a gzip bomb
    becomes 64 MB in memory before any size check could run.
    """
    if encoding in ("", "identity"):
        yield from raw
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FeedError(location, f"unsupported Content-Encoding {encoding[:40]}")
    # 47 = 32 + 15: zlib detects a gzip or zlib header itself ("deflate" is zlib-wrapped).
    inflater = zlib.decompressobj(47)
    try:
        for chunk in raw:
            data = chunk
            while data:
                yield inflater.decompress(data, max_bytes + 1)
                data = inflater.unconsumed_tail
            if inflater.eof:
                return
        yield inflater.flush()
    except zlib.error as exc:
        raise FeedError(location, f"bad {encoding} body: {exc}") from exc


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
