"""How an operator names an edition's state. Pure: the stored status says what the system
may do next (``ready`` means batches may claim rows), which is not what an operator asks
("is it going out? did it work?"); this maps one to the other."""

from __future__ import annotations

from collections.abc import Mapping

from digest.store.models import StopReason

#: Every label, in the order an edition usually passes through them.
LABELS = (
    "awaiting review",
    "scheduled",
    "sending",
    "paused",
    "done",
    "failed",
    "cancelled",
    "empty",
)


def edition_state(
    status: str, counts: Mapping[str, int], stop: StopReason | None = None, held: int = 0
) -> str:
    """The operator's name for an edition's state.

    ``status`` is the stored status ("held", "ready", "paused", "done", "cancelled", "empty"),
    ``counts`` the ledger rows per delivery status, ``stop`` why it stopped, ``held``
    how many pending rows wait for their subscriber's own send time.

    awaiting review: built ahead and held for an editor (approved or not: it sends when
    released). scheduled: built, and nothing claimed yet, or every open row held for a time zone.
    sending: batches are at it (or have rows to retry). paused: by the operator.
    done: every row final, none failed. failed: done with failed rows, or stopped by errors
    (an automatic pause, a transport failure). cancelled, empty: as stored.
    """
    status = str(status)
    if status == "held":
        return "awaiting review"
    if status in ("empty", "cancelled"):
        return status
    if status == "paused":
        return "paused" if stop in (None, StopReason.OPERATOR_PAUSE) else "failed"
    if status == "done":
        return "failed" if counts.get("failed", 0) else "done"
    leased = counts.get("leased", 0)
    if leased:
        return "sending"
    if stop == StopReason.TRANSPORT_ERROR:
        return "failed"
    pending, deferred = counts.get("pending", 0), counts.get("deferred", 0)
    handled = sum(counts.get(s, 0) for s in ("sent", "bounced", "failed", "skipped"))
    if not deferred and pending and (handled == 0 or pending <= held):
        return "scheduled"
    if not deferred and not pending and not handled:
        return "scheduled"  # a ledger with nobody in it yet
    return "sending"
