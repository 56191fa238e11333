"""Sign-up form timing: does the answer for an address that is already subscribed take as long
as for a new one? A difference would tell a guesser who subscribes.

    python bench/signup.py                 # 200 of each, SQLite in a temp dir, outbox transport
    python bench/signup.py --rounds 500

Posts alternate between a new address and a subscribed one (each address once, each from its
own client IP so the per-IP limit plays no part) and the script prints the median and 90th
percentile of each kind, and their difference. Only the answer is timed: recording the
sign-up and mailing it happen after it, in the web process's background thread, which is
drained (untimed) between posts. It also checks that both kinds got the same status and
page, and that every sign-up was mailed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import Settings
from digest.service import catalog
from digest.store.db import Database
from digest.web import create_app
from digest.web.after import after_response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="posts of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url, outbox_dir=str(Path(tmp) / "outbox"),
                            base_url="https://news.example", secret_key=os.urandom(24).hex(),
                            signups_per_ip_per_hour=10**6)  # fmt: skip
        db = Database(url)
        db.upgrade()
        with db.session() as session:
            catalog.add_section(session, "national", "National")
            daily, _ = catalog.add_list(session, "daily", "Daily", ["national"])
            for i in range(args.rounds):
                catalog.subscribe(session, daily, f"known{i}@example.com")
        client = create_app(settings).test_client()
        times: dict[str, list[float]] = {"new": [], "subscribed": []}
        answers: dict[str, set[tuple[int, bytes]]] = {"new": set(), "subscribed": set()}
        for i in range(args.rounds):
            pair = [("new", f"fresh{i}@example.com"), ("subscribed", f"known{i}@example.com")]
            # Alternate which kind goes first, so neither always finds the caches warm.
            for kind, address in pair if i % 2 else pair[::-1]:
                ip = f"10.{i // 250}.{i % 250}.1"
                started = time.perf_counter()
                page = client.post(
                    "/subscribe/daily", data={"email": address}, environ_base={"REMOTE_ADDR": ip}
                )
                times[kind].append(time.perf_counter() - started)
                # Drain the background work before the next post (untimed), so one sign-up's
                # mailing does not slow the next answer down and blur the comparison.
                assert after_response(client.application).wait(60)
                answers[kind].add((page.status_code, page.data))
        assert after_response(client.application).wait(120), "sign-ups still being mailed"
        mailed = len(list((Path(tmp) / "outbox").rglob("*.eml")))
        db.dispose()
    print(f"emails written: {mailed} of {2 * args.rounds}; load average {os.getloadavg()[0]:.2f}")
    for kind, values in times.items():
        values.sort()
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"{kind:<11} median {statistics.median(values) * 1000:7.2f} ms   "
              f"p90 {p90 * 1000:7.2f} ms   ({len(values)} posts)")  # fmt: skip
    diff = statistics.median(times["subscribed"]) - statistics.median(times["new"])
    print(f"difference of medians (subscribed - new): {diff * 1000:+.2f} ms")
    same = answers["new"] == answers["subscribed"] and len(answers["new"]) == 1
    same = same and mailed == 2 * args.rounds
    print(f"same status and page for both: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
