"""Hostile inbound messages, each the worst of its kind at a given size, and a runner that
handles one in this process and prints its time and peak memory as JSON.

The builders are shared by tests/feedback/test_bounds.py and bench/inbound.py. Run as a
module (``python -m tests.feedback.hostile SIZE DATABASE_URL [KIND...]``, on a migrated
database), it is the subprocess those tests start under an address-space limit, so that a
regression to the stdlib's quadratic parsing fails a test instead of taking the machine's
memory.
"""

from __future__ import annotations

import json
import random
import sys
import time
import tracemalloc
from collections.abc import Callable

from digest.config import Settings
from digest.feedback.inbound import InboundHandler, handle_imap_message
from digest.store.db import Database

BOUNCES = "bounces@bounces.gazette.example"
UNSUBSCRIBE = "unsubscribe@gazette.example"
#: DIGEST_INBOUND_MAX_BYTES's default: the largest message the server accepts.
MAX_BYTES = 2 * 1024 * 1024
_CRLF = b"\r\n"


def _folded(name: bytes, unit: bytes, size: int, separator: bytes = b" ") -> bytes:
    """``Name: unit unit ...`` folded onto lines under 80 characters (SMTP's limit is 1000),
    ``size`` bytes long in all."""
    per_line = max(1, 76 // (len(unit) + len(separator)))
    line = separator.join([unit] * per_line)
    count = max(1, (size - len(name) - 4) // (len(line) + 3))
    return name + b": " + (_CRLF + b" ").join([line] * count) + _CRLF


def _padded(head: bytes, size: int) -> bytes:
    """``head`` (a header block) and a body of short lines, ``size`` bytes in all."""
    line = b"x" * 76 + _CRLF
    return head + _CRLF + line * max(0, (size - len(head) - 2) // len(line))


def mailto_subject(size: int, header: int | None = None) -> bytes:
    """To the unsubscribe mailto: a Subject of folded RFC 2047 encoded words, ``header`` bytes
    of it (all of ``size`` by default; a 432 KB one took 6.3 GB and 13 s in
    ``policy.default``'s header parser)."""
    head = b"From: x@example.com\r\nTo: " + UNSUBSCRIBE.encode() + _CRLF
    subject = _folded(b"Subject", b"=?utf-8?q?a?=", (header or size) - len(head) - 8)
    return _padded(head + subject, size)


def content_type_words(size: int, header: int | None = None) -> bytes:
    """To the bounce address: a Content-Type folded with encoded words (115 KB: 496 MB)."""
    words = _folded(b"X", b"=?utf-8?q?a?=", (header or size) - 80)[3:]
    head = b"Content-Type: multipart/report; report-type=delivery-status;\r\n " + words
    return _padded(head, size)


def content_type_parameters(size: int, header: int | None = None) -> bytes:
    """To the bounce address: a Content-Type of ``a=b;`` parameters (173 KB: 15 s of CPU)."""
    params = _folded(b"X", b"a=b;", (header or size) - 80, b"")[3:]
    head = b"Content-Type: multipart/report; report-type=delivery-status;\r\n " + params
    return _padded(head, size)


def many_parts(size: int) -> bytes:
    """A report of empty MIME parts (2 MB of them: 100 s in the stdlib's feed parser)."""
    head = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
    return head + b"--b\r\n\r\n" * ((size - len(head)) // 7)


def deep_messages(size: int) -> bytes:
    """message/rfc822 inside message/rfc822 inside ... (the stdlib recurses per level)."""
    unit = b"Content-Type: message/rfc822\r\n\r\n"
    return unit * (size // len(unit))


def deep_multiparts(size: int) -> bytes:
    """multipart/mixed nested in its own first part, each level with a new boundary."""
    chunks, total, level = [], 0, 0
    while total < size - 100:
        chunk = b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n" % (level, level)
        chunks.append(chunk)
        total += len(chunk)
        level += 1
    return b"".join(chunks)


def address_list(size: int, header: int | None = None) -> bytes:
    """For the IMAP path, which reads the recipient from To: 2 MB of addresses (the stdlib's
    address parser took over two minutes)."""
    return _padded(b"Subject: x\r\n" + _folded(b"To", b"a@b,", (header or size) - 20), size)


def many_headers(size: int) -> bytes:
    """A header block of short fields: 2 MB of ``Delivered-To: a@b`` lines."""
    line = b"Delivered-To: a@b\r\n"
    return line * (size // len(line)) + b"\r\n"


def no_at_sign(size: int) -> bytes:
    """For the IMAP path: a Delivered-To of one long word without "@" (a regex looking for
    ``x@y`` backtracks quadratically over it)."""
    return b"Delivered-To: " + b"a" * (size - 40) + b"\r\n\r\nhi\r\n"


def status_blocks(size: int) -> bytes:
    """A well-formed DSN whose delivery-status part is 2 MB of per-recipient blocks."""
    head = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
    )
    block = b"Final-Recipient: rfc822; a@b\r\nAction: relayed\r\nStatus: 2.0.0\r\n\r\n"
    return head + block * ((size - len(head) - 10) // len(block)) + b"--B--\r\n"


def boundary_lookalikes(size: int) -> bytes:
    """A multipart body of one line of almost-delimiters (``--b`` not at a line start)."""
    head = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b"
    return head + b"--b" * ((size - len(head)) // 3)


def within_limits(size: int) -> bytes:
    """Everything as large as the limits allow without refusal: 60 parts, each with seven
    8 KB headers of encoded words and a Content-Type of 8 KB of parameters."""
    words = _folded(b"X-Words", b"=?utf-8?q?a?=", 8000)
    params = b"Content-Type: text/plain; " + _folded(b"X", b"a=b;", 7900, b"")[3:]
    part = words * 7 + params + b"\r\nbody\r\n"
    head = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n"
        + words
        + b"\r\n"
    )
    count = min(60, (size - len(head)) // (len(part) + 7))
    return head + b"".join(b"--B\r\n" + part for _ in range(count)) + b"--B--\r\n"


def short_lines(size: int) -> bytes:
    """Parts whose header blocks are as many short lines as the limits let through: seven
    fields of 8 KB each, folded every two characters."""
    field = b"X-Short: a" + b"\r\n a" * 2000 + _CRLF
    part = field * 7 + b"\r\nbody\r\n"
    head = b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
    count = min(60, (size - len(head)) // (len(part) + 7))
    return head + b"".join(b"--B\r\n" + part for _ in range(count)) + b"--B--\r\n"


def noise(size: int) -> bytes:
    """Random bytes in lines short enough for SMTP."""
    raw = random.Random(17).randbytes(size * 76 // 78).replace(b"\r", b"").replace(b"\n", b"")
    return _CRLF.join(raw[i : i + 76] for i in range(0, len(raw), 76)) + _CRLF


#: kind -> (builder, the entry it attacks: "smtp" to this address, or "imap").
HOSTILE: dict[str, tuple[Callable[[int], bytes], str]] = {
    "mailto-subject": (mailto_subject, UNSUBSCRIBE),
    "content-type-words": (content_type_words, BOUNCES),
    "content-type-parameters": (content_type_parameters, BOUNCES),
    # The same headers at 60 KB, inside the header block's limit: the header's own limit holds.
    "mailto-subject-60k": (lambda size: mailto_subject(size, 60_000), UNSUBSCRIBE),
    "content-type-words-60k": (lambda size: content_type_words(size, 60_000), BOUNCES),
    "content-type-parameters-60k": (lambda size: content_type_parameters(size, 60_000), BOUNCES),
    "many-parts": (many_parts, BOUNCES),
    "deep-messages": (deep_messages, BOUNCES),
    "deep-multiparts": (deep_multiparts, BOUNCES),
    "address-list": (address_list, "imap"),
    "address-list-8k": (lambda size: address_list(size, 8000), "imap"),
    "many-headers": (many_headers, "imap"),
    "no-at-sign": (no_at_sign, "imap"),
    "status-blocks": (status_blocks, BOUNCES),
    "boundary-lookalikes": (boundary_lookalikes, BOUNCES),
    "short-lines": (short_lines, BOUNCES),
    "within-limits": (within_limits, BOUNCES),
    "within-limits-imap": (within_limits, "imap"),
    "noise": (noise, UNSUBSCRIBE),
}


def hostile_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="hostile-test-secret-key-of-enough-length",
        from_address="digest@gazette.example",
        bounce_domain="bounces.gazette.example",
    )


def measure(db: Database, settings: Settings, kind: str, size: int) -> dict[str, object]:
    """Handle one hostile message as its entry would: its verdict, the seconds it took, then
    (handled again, under tracemalloc, which slows it) the peak bytes allocated meanwhile. The
    database connection is warmed first and the message built beforehand: neither counts."""
    build, entry = HOSTILE[kind]
    data = build(size)
    handler = InboundHandler(db, settings)

    def handle(message: bytes) -> str:
        if entry == "imap":
            return handle_imap_message(db, settings, message).value
        return handler.process([entry], message)[0].value

    handle(b"Subject: warm-up\r\n\r\nhi\r\n")
    started = time.perf_counter()
    verdict = handle(data)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        handle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"kind": kind, "bytes": len(data), "seconds": seconds, "peak": peak, "verdict": verdict}


def main(argv: list[str]) -> int:
    """``SIZE DATABASE_URL KIND...``: one JSON line per kind; a MemoryError (under the caller's
    address-space limit) is reported for its kind, and the next kind still runs."""
    size, url, kinds = int(argv[0]), argv[1], argv[2:] or list(HOSTILE)
    settings = hostile_settings(url)
    db = Database.from_settings(settings)
    try:
        for kind in kinds:
            try:
                figures = measure(db, settings, kind, size)
            except MemoryError:
                figures = {"kind": kind, "error": "MemoryError"}
            print(json.dumps(figures), flush=True)
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
