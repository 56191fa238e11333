"""The import benchmark: ``import_subscribers`` on a generated CSV, on SQLite and PostgreSQL.

For each row count and database it writes one CSV of N rows (about one in a thousand with a
bad address, one in five hundred repeating an earlier address, some names in Urdu), then, in
a fresh child process per run so the peak memory is that run's own, creates a fresh database
(a SQLite file, or a new PostgreSQL schema dropped afterwards), and times the import alone.

Each line shows rows/s, the import's time, the child's peak resident memory and how much of
it the import added on top of the loaded program (read from /proc, so Linux only): memory is
flat when these are the same at 100k and at 1M rows.
The run fails (exit 1) if the counts are not what the file holds.

Targets: 100,000 rows in under 10 s on SQLite, 1,000,000 in under a minute on PostgreSQL.

Run: ``python bench/import_subscribers.py [--rows 100000,1000000] [--databases sqlite,postgresql]
[--postgres URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BAD_EVERY = 1000
REPEAT_EVERY = 500


def write_csv(path: Path, rows: int) -> dict[str, int]:
    """N data rows; returns how many are bad, repeats and distinct good addresses."""
    bad = repeats = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name\n")
        for i in range(rows):
            if i % BAD_EVERY == BAD_EVERY - 1:
                out.write(f"reader{i} at example.com,Bad {i}\n")
                bad += 1
            elif i % REPEAT_EVERY == REPEAT_EVERY - 1:
                out.write(f"Reader{i // 2}@Example.com,\n")
                repeats += 1
            elif i % 7 == 0:
                out.write(f"reader{i}@example.com,قاری نمبر {i}\n")
            else:
                out.write(f"reader{i}@example.com,Reader {i}\n")
    # A repeat points at row i // 2, which may itself be a bad row or a repeat: count exactly.
    distinct = {
        i
        for i in range(rows)
        if i % BAD_EVERY != BAD_EVERY - 1 and i % REPEAT_EVERY != REPEAT_EVERY - 1
    }
    for i in range(rows):
        if i % BAD_EVERY != BAD_EVERY - 1 and i % REPEAT_EVERY == REPEAT_EVERY - 1:
            distinct.add(i // 2)
    return {"rows": rows, "bad": bad, "good": rows - bad, "distinct": len(distinct)}


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS now, VmHWM its peak), in KiB.

    Not getrusage's ru_maxrss: Linux carries that over an exec from the parent, so a child
    started by a big parent would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(database_url: str, csv_path: Path) -> None:
    """One import into a fresh database; prints its figures as JSON."""
    from sqlalchemy import func, select

    from digest.service import catalog
    from digest.store.db import Database
    from digest.store.models import Subscription

    db = Database(database_url)
    db.upgrade()
    with db.session() as session:
        catalog.add_section(session, "news", "News")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["news"])
        list_id = mailing_list.id
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    report = catalog.import_subscribers(db, list_id, csv_path)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Subscription))
    db.dispose()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "added": report.added,
                "already": report.already,
                "errors": len(report.errors),
                "stored": stored,
                "peak_mib": peak / 1024,
                "growth_mib": max(0, peak - before) / 1024,
            }
        )
    )


def run(database: str, csv_path: Path, expected: dict[str, int], postgres: str) -> bool:
    # Imported here, not at the top: the child this file also runs as (--child) measures its
    # own peak memory, which the sibling script's imports would inflate.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from send import fresh_database

    with (
        tempfile.TemporaryDirectory(prefix="digest-bench-db-") as folder,
        fresh_database(postgres if database != "sqlite" else None, Path(folder)) as url,
    ):
        done = subprocess.run(
            [sys.executable, __file__, "--child", url, str(csv_path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        print(f"{database}: the import failed\n{done.stderr}", file=sys.stderr)
        return False
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    rows = expected["rows"]
    print(
        f"{database:<10} {rows:>9,} rows  {rows / figures['seconds']:>9,.0f} rows/s  "
        f"{figures['seconds']:>7.2f} s  peak RSS {figures['peak_mib']:>6.1f} MiB  "
        f"import added {figures['growth_mib']:>6.1f} MiB  "
        f"(load {os.getloadavg()[0]:.2f})"
    )
    right = (
        figures["added"] == expected["distinct"] == figures["stored"]
        and figures["added"] + figures["already"] == expected["good"]
        and figures["errors"] == expected["bad"]
    )
    if not right:
        print(f"  counts wrong: {figures} for {expected}", file=sys.stderr)
    return right


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="server for the PostgreSQL runs")
    parser.add_argument("--child", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the start")
    ok = True
    with tempfile.TemporaryDirectory(prefix="digest-bench-csv-") as folder:
        for rows in (int(n) for n in args.rows.split(",")):
            csv_path = Path(folder) / f"readers-{rows}.csv"
            expected = write_csv(csv_path, rows)
            for database in args.databases.split(","):
                ok = run(database, csv_path, expected, args.postgres) and ok
            csv_path.unlink()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
