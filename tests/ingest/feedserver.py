"""A feed server on loopback for fetch tests: redirects, 304s, slow and oversize bodies, gzip."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback</title>'
    b"<item><title>Served</title><link>https://news.example/served</link></item>"
    b"</channel></rss>"
)
#: An HTML page whose <link rel="alternate"> names /feed.xml by a relative address.
PAGE = (
    b"<!DOCTYPE html><html><head><title>The News</title>"
    b'<link rel="stylesheet" href="/s.css">'
    b'<link rel="alternate" type="application/rss+xml" title="All" href="../feed.xml">'
    b"</head><body><p>Hello</p></body></html>"
)
ETAG = '"feed-v1"'
LAST_MODIFIED = "Mon, 06 Jan 2025 10:00:00 GMT"
BIG = b"x" * 5000
# 20 MB of one byte repeated deflates to about 20 KB: a bomb against a 1 MB cap.
BOMB = gzip.compress(b"<" * (20 * 1024 * 1024), compresslevel=9)


class Handler(BaseHTTPRequestHandler):
    """Routes by path; every request's path and headers are logged in ``seen``."""

    seen: list[tuple[str, dict[str, str]]] = []  # noqa: RUF012 - shared log across requests
    # /concurrent: requests in progress now, and the most at once, per server address.
    lock = threading.Lock()
    in_flight: dict[str, int] = {}  # noqa: RUF012 - shared across requests
    most: dict[str, int] = {}  # noqa: RUF012 - shared across requests

    def do_GET(self) -> None:
        Handler.seen.append((self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/feed.xml":
            if self.headers.get("If-None-Match") == ETAG or (
                self.headers.get("If-Modified-Since") == LAST_MODIFIED
            ):
                self.send_response(304)
                self.send_header("ETag", ETAG)
                self.end_headers()
                return
            self._send(200, FEED, ETag=ETAG, **{"Last-Modified": LAST_MODIFIED})
        elif route == "/redirect":
            # /redirect?to=URL answers 302 (or ?status=) with Location: URL.
            self.send_response(int(query.get("status", "302")))
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route.startswith("/chain/"):
            hops = int(route.rsplit("/", 1)[1])
            self.send_response(301)
            self.send_header("Location", f"/chain/{hops - 1}" if hops > 1 else "/feed.xml")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/big":
            self._send(200, BIG)
        elif route == "/big-undeclared":
            # HTTP/1.0 with no Content-Length: the body runs until the connection closes.
            self.send_response(200)
            self.end_headers()
            self.wfile.write(BIG)
        elif route == "/gzip":
            self._send(200, gzip.compress(FEED), **{"Content-Encoding": "gzip"})
        elif route == "/bomb":
            self._send(200, BOMB, **{"Content-Encoding": "gzip"})
        elif route == "/brotli":
            self._send(200, b"\x0b\x02\x80", **{"Content-Encoding": "br"})
        elif route == "/slow":
            time.sleep(float(query.get("delay", "2")))
            self._send(200, FEED)
        elif route == "/trickle":
            # Each byte arrives well inside a read timeout, the whole never ends in time.
            self.send_response(200)
            self.end_headers()
            try:
                for byte in FEED:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client's deadline passed, as the test wants
        elif route == "/drip-headers":
            # A header line every ?every= seconds, without end: no read ever waits long.
            every = float(query.get("every", "0.3"))
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for n in range(1000):
                    self.wfile.write(f"X-Drip-{n}: {n}\r\n".encode())
                    self.wfile.flush()
                    time.sleep(every)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif route == "/drip-body":
            # Headers at once, then one body byte every ?every= seconds.
            every = float(query.get("every", "0.3"))
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            try:
                for byte in FEED:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(every)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif route == "/concurrent":
            # Answers after ?delay= seconds, counting how many requests overlap.
            host = self.server.server_address[0]
            with Handler.lock:
                Handler.in_flight[host] = Handler.in_flight.get(host, 0) + 1
                Handler.most[host] = max(Handler.most.get(host, 0), Handler.in_flight[host])
                # And the most at once over every address, so overlap is seen, not timed.
                together = sum(n for key, n in Handler.in_flight.items() if key != "all")
                Handler.most["all"] = max(Handler.most.get("all", 0), together)
            time.sleep(float(query.get("delay", "0.2")))
            with Handler.lock:
                Handler.in_flight[host] -= 1
            self._send(200, FEED)
        elif route == "/error":
            self._send(500, b"boom")
        elif route == "/news/page.html":
            # A publisher's page announcing its feeds: a relative link, after a stylesheet.
            self._send(200, PAGE)
        elif route == "/news/bare.html":
            self._send(200, b"<!doctype html><html><head><title>x</title></head></html>")
        else:
            self._send(404, b"unknown")

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # The client may hang up on purpose (size cap): not an error of the server.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


@contextmanager
def feed_server(host: str = "127.0.0.1") -> Iterator[str]:
    """A ThreadingHTTPServer on a free port of a loopback ``host``; yields its base URL."""
    Handler.seen = []
    httpd = ThreadingHTTPServer((host, 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
