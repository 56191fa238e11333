"""The gathering benchmark: `digest ingest` against rss2email, and one very long feed.

* **many slow feeds**: FEEDS feeds of ITEMS items each, spread over HOSTS loopback
  addresses (127.0.0.11, .12, ...), every answer delayed by DELAY seconds (a
  slow publisher). The whole ``digest ingest`` command is timed as a
  subprocess on a fresh SQLite database, and side by side in the same run
  rss2email 3.14 (``r2e run``) on the same feeds, its mail going to a
  ``sendmail`` that discards it; also ``r2e run --no-send`` (fetch and parse
  only) to show what its mailing costs. Target: Digest at least 10x faster.
* **one long feed**: a 20,000-item feed, first ingest on a fresh database
  (target <= 3 s), then a second ingest of the unchanged feed via ETag/304
  and via the same bytes from a server that sends no ETag (target <= 1 s
  each). Timed in-process (``ingest_all``) and as the whole command.
* **hostile bodies**: ``parse_feed`` on 9.9 MB of ``<a `` as a bare body, in
  CDATA, escaped, and raw inside an item: seconds and peak Python memory
  (feedparser alone took 70 s and 500 MB on one of them).

rss2email is not a dependency of Digest: install it into the venv for the
bench only (``pip install rss2email==3.14``); without it that row is skipped.

Run: ``python bench/gather.py [--feeds 50] [--items 20] [--delay 0.3] [--long 20000]``.
The machine's load average is printed before and after: compare runs made side
by side.
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from digest.config import Settings
from digest.errors import FeedError
from digest.ingest.parse import parse_feed
from digest.ingest.run import ingest_all
from digest.service.catalog import add_section, add_source
from digest.store.db import Database

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.datetime(2025, 2, 1)


def rss(name: str, count: int) -> bytes:
    """An RSS 2.0 feed of ``count`` distinct items, newest first."""
    items = []
    for n in range(count):
        minute, hour = n % 60, (n // 60) % 24
        items.append(
            f"<item><title>{name} story {n}: the council votes on the budget</title>"
            f"<link>https://bench.example/{name}/{n}</link>"
            f'<guid isPermaLink="false">{name}-{n}</guid>'
            f"<pubDate>Mon, 06 Jan 2025 {23 - hour:02d}:{59 - minute:02d}:00 GMT</pubDate>"
            f"<category>National</category>"
            f"<description>&lt;p&gt;The lead of {name} story {n}, with &lt;b&gt;some&lt;/b&gt; "
            f"markup and enough words to make a teaser of it.&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{name}</title><link>https://bench.example/{name}/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


class FeedHandler(BaseHTTPRequestHandler):
    """Serves ``bodies[path]`` after ``delay`` seconds; ETag only on paths under /etag/."""

    bodies: dict[str, bytes] = {}  # noqa: RUF012 - set once before serving
    delay = 0.0
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        if body is None:
            self.send_error(404)
            return
        time.sleep(self.delay)
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if self.path.startswith("/etag/") and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/etag/"):
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def servers(hosts: list[str], bodies: dict[str, bytes], delay: float) -> Iterator[list[str]]:
    """One ThreadingHTTPServer per loopback host; yields their base URLs."""

    class Handler(FeedHandler):
        pass

    Handler.bodies, Handler.delay = bodies, delay
    running = []
    for host in hosts:
        httpd = ThreadingHTTPServer((host, 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        running.append(httpd)
    try:
        yield [f"http://{h.server_address[0]}:{h.server_address[1]}" for h in running]
    finally:
        for httpd in running:
            httpd.shutdown()
            httpd.server_close()


def fresh_db(directory: Path, urls: list[str]) -> tuple[Settings, str]:
    """A new SQLite database with ``urls`` as sources; returns settings and its URL."""
    url = f"sqlite:///{directory / 'digest.db'}"
    settings = Settings(database_url=url, secret_key="bench")
    db = Database.from_settings(settings)
    db.upgrade()
    with db.session() as session:
        add_section(session, "national", "National")
        for feed in urls:
            add_source(session, feed, "national", allow_private=True)
    db.dispose()
    return settings, url


def digest_command(database_url: str, *args: str, **env: str) -> tuple[float, str]:
    """Run ``digest ARGS`` as a subprocess on ``database_url``; returns (seconds, last line)."""
    environ = {
        **os.environ,
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"digest {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, (done.stdout.strip().splitlines() or [""])[-1]


def rss2email(directory: Path, urls: list[str], *, send: bool) -> float | None:
    """Time ``r2e run`` over ``urls`` with a discarding sendmail; None without rss2email."""
    r2e = shutil.which("r2e", path=str(Path(sys.executable).parent))
    if r2e is None:
        return None
    sink = directory / "sendmail"
    sink.write_text("#!/bin/sh\ncat > /dev/null\n")
    sink.chmod(0o755)
    config, data = directory / "r2e.cfg", directory / "r2e.json"
    base = [r2e, "-c", str(config), "-d", str(data)]
    subprocess.run([*base, "new", "sink@bench.example"], check=True, capture_output=True)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    parser["DEFAULT"].update(
        {"email-protocol": "sendmail", "sendmail": str(sink), "from": "r2e@bench.example"}
    )
    for n, url in enumerate(urls):
        parser[f"feed.f{n}"] = {"url": url}
    with config.open("w") as out:
        parser.write(out)
    started = time.perf_counter()
    done = subprocess.run(
        [*base, "run", *([] if send else ["--no-send"])], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"r2e run failed:\n{done.stderr[-2000:]}")
    return elapsed


def many_slow_feeds(args: argparse.Namespace) -> None:
    hosts = [f"127.0.0.{11 + n}" for n in range(args.hosts)]
    bodies = {f"/feed/{n}.xml": rss(f"f{n}", args.items) for n in range(args.feeds)}
    with servers(hosts, bodies, args.delay) as bases:
        urls = [f"{bases[n % len(bases)]}/feed/{n}.xml" for n in range(args.feeds)]
        with tempfile.TemporaryDirectory() as tmp:
            _, database_url = fresh_db(Path(tmp), urls)
            digest_seconds, summary = digest_command(database_url, "ingest")
            startup, _ = digest_command(database_url, "--version")
        with tempfile.TemporaryDirectory() as tmp:
            settings, _ = fresh_db(Path(tmp), urls)
            db = Database.from_settings(settings)
            started = time.perf_counter()
            ingest_all(db, settings)
            in_process = time.perf_counter() - started
            db.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            r2e_seconds = rss2email(Path(tmp), urls, send=True)
        with tempfile.TemporaryDirectory() as tmp:
            r2e_fetch_only = rss2email(Path(tmp), urls, send=False)
    print(
        f"many slow feeds: {args.feeds} feeds x {args.items} items on {args.hosts} hosts, "
        f"{args.delay} s per answer"
    )
    print(f"  digest ingest (whole command)   {digest_seconds:7.2f} s   [{summary}]")
    print(f"    of which starting the CLI     {startup:7.2f} s   (digest --version)")
    print(f"  ingest_all (in-process)         {in_process:7.2f} s")
    if r2e_seconds is None or r2e_fetch_only is None:
        print("  rss2email                       not installed: pip install rss2email==3.14")
        return
    print(f"  r2e run (mail to a sink)        {r2e_seconds:7.2f} s")
    print(f"  r2e run --no-send               {r2e_fetch_only:7.2f} s")
    print(
        f"  speed-up, whole commands        {r2e_seconds / digest_seconds:7.1f}x "
        f"({r2e_fetch_only / digest_seconds:.1f}x against --no-send; target >= 10x)"
    )
    print(f"  speed-up, in-process ingest     {r2e_seconds / in_process:7.1f}x")


def one_long_feed(args: argparse.Namespace) -> None:
    body = rss("long", args.long)
    bodies = {"/etag/long.xml": body, "/plain/long.xml": body}
    print(f"one long feed: {args.long} items, {len(body) / 1e6:.1f} MB")
    with servers(["127.0.0.11"], bodies, 0.0) as (base,):
        for cap in (Settings.ingest_max_items, args.long):
            for route in ("etag", "plain"):
                with tempfile.TemporaryDirectory() as tmp:
                    settings, _ = fresh_db(Path(tmp), [f"{base}/{route}/long.xml"])
                    settings = settings.replace(ingest_max_items=cap)
                    db = Database.from_settings(settings)
                    times, reports = [], []
                    for _ in range(2):
                        started = time.perf_counter()
                        reports.append(ingest_all(db, settings)[0])
                        times.append(time.perf_counter() - started)
                    db.dispose()
                first, second = reports
                again = "304" if second.not_modified else "same bytes"
                print(
                    f"  cap {cap:>6}, {route:>5}: first {times[0]:5.2f} s "
                    f"(found {first.found}, new {first.new}); "
                    f"second ({again}) {times[1]:5.2f} s (new {second.new})"
                )
        with tempfile.TemporaryDirectory() as tmp:
            _, database_url = fresh_db(Path(tmp), [f"{base}/plain/long.xml"])
            whole, first_line = digest_command(database_url, "ingest")
            again, second_line = digest_command(database_url, "ingest")
    print(f"  digest ingest (whole command, default cap): first {whole:.2f} s [{first_line}]")
    print(f"  digest ingest (whole command, again):       {again:.2f} s [{second_line}]")
    print("  targets: first <= 3 s, second <= 1 s (in-process figures)")


def hostile_bodies() -> None:
    """parse_feed on 9.9 MB of '<a ' placed four ways: time and peak Python memory."""
    junk = b"<a " * 3_300_000
    head = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>x</title><link>https://bench.example/1</link><description>"
    )
    tail = b"</description></item></channel></rss>"
    cases = {
        "bare body": junk,
        "in CDATA": head + b"<![CDATA[" + junk + b"]]>" + tail,
        "escaped": head + junk.replace(b"<", b"&lt;") + tail,
        "raw (not XML)": head + junk + tail,
    }
    print("hostile bodies: 9.9 MB of '<a '")
    for name, body in cases.items():
        tracemalloc.start()
        started = time.perf_counter()
        try:
            outcome = f"{len(parse_feed(body, 'https://bench.example/f', NOW))} items"
        except FeedError as exc:
            outcome = f"FeedError: {exc.reason[:70]}"
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  {name:<14} {elapsed:6.2f} s  peak {peak / 2**20:6.1f} MiB  {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.3)
    parser.add_argument("--long", type=int, default=20_000)
    parser.add_argument("--skip-many", action="store_true")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--skip-hostile", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.skip_many:
        many_slow_feeds(args)
    if not args.skip_long:
        one_long_feed(args)
    if not args.skip_hostile:
        hostile_bodies()
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
