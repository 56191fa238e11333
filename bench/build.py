"""The build benchmark at a million subscribers: ``build_edition`` on PostgreSQL, time and memory.

The list's subscribers are made by the database itself (``generate_series``), so the setup
costs seconds and no client memory: N subscribers, each confirmed on the list; one in ten
has a time zone of their own (spread over a few zones, so local send times are computed),
one in a hundred is suppressed. Then ``build_edition`` runs in this process, timed, and the
process's peak RSS is read before and after it (``ru_maxrss``): a build whose cost is the
database's leaves the peak where it was.

Run: ``python bench/build.py [--subscribers N ...] [--database URL]``; several sizes show
whether time grows linearly and memory stays flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

from sqlalchemy import text

from digest.config import Settings
from digest.edition import ledger
from digest.edition.build import build_edition
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The sibling script, found through the path set just above.
from send import fresh_database

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DAY = dt.date(2026, 11, 24)
ZONES = ("Asia/Karachi", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(db: Database, count: int) -> None:
    """A list with one article on DAY and ``count`` subscribers, made set-based."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national"])
        section = catalog.get_section(session, "national")
        session.add(
            Article(url="https://n.example/1", section_id=section.id, headline="Story",
                    teaser="A teaser.", published_at=dt.datetime(2026, 11, 24, 9))
        )  # fmt: skip
        list_id = mailing_list.id
    zones = "ARRAY[" + ", ".join(f"'{z}'" for z in ZONES) + "]"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, name, status, timezone, created_at) "
                "SELECT 'r' || i || '@bench.example', 'Reader ' || i, 'active', "
                f"CASE WHEN i % 10 = 0 THEN ({zones})[1 + (i / 10) % {len(ZONES)}] END, now() "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": count},
        )
        conn.execute(
            text(
                "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at) "
                "SELECT :list, id, 'confirmed', 'bench', now() FROM subscribers"
            ),
            {"list": list_id},
        )
        conn.execute(
            text(
                "INSERT INTO suppressions (email, reason, created_at) "
                "SELECT email, 'bench', now() FROM subscribers WHERE id % 100 = 0"
            )
        )
        conn.execute(text("ANALYZE"))


def measure(base_url: str, count: int) -> None:
    # A schema of its own, dropped afterwards (a PostgreSQL URL: never a SQLite file here).
    with fresh_database(base_url, Path(".")) as url:
        db = Database(url)
        try:
            db.upgrade()
            started = time.perf_counter()
            populate(db, count)
            setup = time.perf_counter() - started
            settings = Settings(secret_key="bench", from_address="digest@bench.example")
            before = peak_rss_mib()
            with db.session() as session:
                mailing_list = catalog.get_list(session, "daily")
                started = time.perf_counter()
                edition, created = build_edition(session, settings, mailing_list, DAY)
                seconds = time.perf_counter() - started
                assert created
                rows = ledger.counts(session, edition.id)
            after = peak_rss_mib()
        finally:
            db.dispose()
    print(
        f"{count:>9} subscribers   setup {setup:6.1f} s   build {seconds:6.2f} s   "
        f"ledger rows {sum(rows.values()):>9}   peak RSS {before:5.0f} -> {after:5.0f} MiB",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1_000_000], metavar="N")
    parser.add_argument("--database", default=POSTGRES_URL, metavar="URL")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for count in args.subscribers:
        measure(args.database, count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
