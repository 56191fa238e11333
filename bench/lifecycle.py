"""What the edition lifecycle's extra queries cost on a big list.

``digest status`` and ``digest send`` count, for today's edition, the subscribers who joined
since it was built (an anti-join of the list's subscriptions against the edition's ledger),
and ``--include-late`` inserts their rows with the same query. Both should stay well under a
second on a list of N subscribers; this prints their times.

    python bench/lifecycle.py                         # 100,000 subscribers, SQLite
    python bench/lifecycle.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

from digest.edition import ledger
from digest.service import catalog
from digest.store.models import (
    Edition,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The sibling script, found through the path set just above.
from send import (
    LIST_SLUG,
    bench_settings,
    fresh_database,
    prepare_site,
    show,
    timed_build,
)

#: Subscribers who join after the build, to be counted and included.
LATE = 100
REPEATS = 3


def add_late(url: str, count: int) -> None:
    from digest.store.db import Database

    db = Database(url)
    with db.session() as session:
        list_id = catalog.get_list(session, LIST_SLUG).id
        session.execute(
            insert(Subscriber),
            [{"email": f"late{i}@bench.example", "status": SubscriberStatus.ACTIVE}
             for i in range(count)],
        )  # fmt: skip
        ids = session.scalars(
            select(Subscriber.id).where(Subscriber.email.like("late%@bench.example"))
        ).all()
        session.execute(
            insert(Subscription),
            [{"list_id": list_id, "subscriber_id": sid, "status": SubscriptionStatus.CONFIRMED,
              "source": "bench", "confirmed_at": utcnow()} for sid in ids],
        )  # fmt: skip
    db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=100_000, metavar="N")
    parser.add_argument("--database", metavar="URL", help="PostgreSQL gets a fresh schema")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp,
        fresh_database(args.database, Path(tmp)) as url,
    ):
        db = prepare_site(url, args.subscribers, 200, Path(tmp))
        try:
            edition_id, build = timed_build(db, bench_settings(url, 200))
            add_late(url, LATE)
            counted: list[float] = []
            with db.session() as session:
                edition = session.get_one(Edition, edition_id)
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    late = ledger.late_count(session, edition)
                    counted.append(time.perf_counter() - started)
                started = time.perf_counter()
                added = ledger.add_late(session, edition)
                included = time.perf_counter() - started
                session.commit()
        finally:
            db.dispose()
    show("subscribers", f"{args.subscribers:,} + {LATE} late")
    show("edition build", f"{build * 1000:.0f} ms")
    show("late count", f"{min(counted) * 1000:.0f} ms (best of {REPEATS}; found {late})")
    show("include late", f"{included * 1000:.0f} ms ({added} rows)")
    return 0 if late == added == LATE else 1


if __name__ == "__main__":
    sys.exit(main())
