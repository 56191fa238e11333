"""Inbound mail at its worst: time and peak memory of each hostile message, at the size limit.

    python bench/inbound.py                  # every hostile kind at 2 MB, SQLite in a temp dir
    python bench/inbound.py --size 500000    # another size
    python bench/inbound.py --stdlib         # and what the stdlib email parser made of them
    python bench/inbound.py many-parts deep-multiparts   # only these

Each message of tests/feedback/hostile.py (the three reported in issue 17 scaled to
DIGEST_INBOUND_MAX_BYTES, the worse ones found since, and the largest message the limits let
through whole) goes through the entry it attacks: the SMTP handler (``InboundHandler.process``)
or the IMAP path (``handle_imap_message``). Printed per message: the verdict, the best of
``--repeat`` wall-clock times, and the peak of memory allocated meanwhile (tracemalloc, in a
separate run since tracing slows Python down). The target is under 1 s and 100 MiB each; the
script exits 1 if any message misses it.

It also prints the per-recipient cost of the signed Message-ID (``EditionMailer.message_id``)
next to the unsigned f-string it replaced.

``--stdlib`` parses each message as the code before issue 17 did (``message_from_bytes`` with
``policy.default``, then the header or structure its path read) in a subprocess limited to
1.5 GB of address space and ``--stdlib-timeout`` seconds, for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.send.mailer import EditionMailer
from digest.store.db import Database
from tests.feedback.hostile import HOSTILE, MAX_BYTES, hostile_settings, measure

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 1.0
TARGET_BYTES = 100 * 1024 * 1024
_MIB = 1024 * 1024

# What the old code did with each message: parse, then read what its path read.
_STDLIB = """
import resource, sys, time
from email import message_from_bytes, policy
sys.path.insert(0, {root!r})
from tests.feedback.hostile import HOSTILE
build, entry = HOSTILE[{kind!r}]
data = build({size})
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
started = time.perf_counter()
try:
    message = message_from_bytes(data, policy=policy.default)
    if entry == "imap":
        for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
            [str(v) for v in message.get_all(name, [])]
    elif "unsubscribe" in entry:
        str(message.get("Subject", ""))
    else:
        message.get_content_type(), message.get_param("report-type")
        [part.get_content_type() for part in message.walk()]
    outcome = "done"
except MemoryError:
    outcome = "MemoryError"
except RecursionError:
    outcome = "RecursionError"
print(outcome, time.perf_counter() - started,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def stdlib_figures(kind: str, size: int, timeout: float) -> str:
    """What ``policy.default`` made of the message: its time and peak RSS, or how it failed."""
    code = _STDLIB.format(root=str(ROOT), kind=kind, size=size, limit=1536 * _MIB)
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return f"still parsing after {timeout:.0f} s"
    try:
        outcome, seconds, rss = result.stdout.split()
    except ValueError:
        return "crashed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:60]
    figures = f"{float(seconds):7.2f} s  {int(rss) / _MIB:7.0f} MiB RSS"
    return figures if outcome == "done" else f"{outcome} after {figures}"


def message_id_cost(repeat: int) -> tuple[float, float]:
    """µs per call: the signed Message-ID, and the unsigned f-string it replaced."""
    mailer = EditionMailer(hostile_settings("sqlite://"))
    number = 100_000
    signed = min(
        timeit.repeat(lambda: mailer.message_id(12, 345_678, "news.example"), number=number,
                      repeat=repeat)
    )  # fmt: skip
    edition_id, delivery_id, domain = 12, 345_678, "news.example"
    unsigned = min(
        timeit.repeat(lambda: f"digest.e{edition_id}.d{delivery_id}@{domain}", number=number,
                      repeat=repeat)
    )  # fmt: skip
    return signed / number * 1e6, unsigned / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help=f"default: all of {', '.join(HOSTILE)}")
    parser.add_argument("--size", type=int, default=MAX_BYTES, help="bytes per message")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per message")
    parser.add_argument("--stdlib", action="store_true", help="also time the stdlib parser")
    parser.add_argument("--stdlib-timeout", type=float, default=30.0)
    args = parser.parse_args()
    unknown = sorted(set(args.kinds) - set(HOSTILE))
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)}")

    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = hostile_settings(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db = Database.from_settings(settings)
        db.upgrade()
        print(f"{'message':<28} {'bytes':>9} {'verdict':>8} {'time':>9} {'peak':>10}")
        for kind in args.kinds or HOSTILE:
            runs = [measure(db, settings, kind, args.size) for _ in range(args.repeat)]
            seconds = min(float(r["seconds"]) for r in runs)  # type: ignore[arg-type]
            peak = max(int(r["peak"]) for r in runs)  # type: ignore[call-overload]
            line = (
                f"{kind:<28} {runs[0]['bytes']:>9} {runs[0]['verdict']:>8} "
                f"{seconds * 1000:7.1f} ms {peak / _MIB:6.1f} MiB"
            )
            if args.stdlib:
                line += "   stdlib: " + stdlib_figures(kind, args.size, args.stdlib_timeout)
            print(line, flush=True)
            if seconds >= TARGET_SECONDS or peak >= TARGET_BYTES:
                missed.append(kind)
        db.dispose()
    signed, unsigned = message_id_cost(args.repeat)
    print(f"Message-ID per recipient: signed {signed:.2f} µs, unsigned (before) {unsigned:.2f} µs")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS of this process: {rss} MiB; load average {os.getloadavg()[0]:.2f}")
    if missed:
        print(f"target (< {TARGET_SECONDS:g} s and < 100 MiB each) missed by: {', '.join(missed)}")
        return 1
    print(f"target met: every message under {TARGET_SECONDS:g} s and 100 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
