"""How the CLI words counts and progress: one place, so every command says it alike."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.service.core import BatchReport

#: Delivery states that will not change any more (mirrors ``FINAL_DELIVERY_STATUSES``;
#: spelled out so this module stays free of the database layer).
FINAL = ("sent", "bounced", "failed", "skipped")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 subscriber``, ``2 subscribers``, ``1 batch``, ``3 batches``."""
    if count == 1:
        return f"{count} {singular}"
    if plural_form is None:
        plural_form = singular + ("es" if singular.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{count:,} {plural_form}"


def report_text(r: BatchReport) -> str:
    return (
        f"{r.sent} sent, {r.deferred} deferred, {r.bounced} bounced, {r.failed} failed, "
        f"{r.skipped} skipped"
    )


def counts_text(counts: dict[str, int]) -> str:
    pending = counts["pending"] + counts["leased"]
    return (
        f"{counts['sent']} sent, {counts['deferred']} deferred, {counts['bounced']} bounced, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {pending} pending"
    )


def progress_line(counts: dict[str, int], rate: float, width: int = 30) -> str:
    """One line: a bar of final rows, the counts, the send rate and the time left."""
    total = sum(counts.values())
    final = sum(counts[s] for s in FINAL)
    open_rows = total - final
    share = final / total if total else 1.0
    filled = int(share * width)
    eta = "--:--:--"
    if open_rows == 0:
        eta = "0:00:00"
    elif rate > 0:
        eta = str(dt.timedelta(seconds=int(open_rows / rate)))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {share:6.1%}  {counts_text(counts)}  "
        f"{rate:,.0f} msg/s  ETA {eta}"
    )
