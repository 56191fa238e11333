"""An editor's review of a held edition: drop, pin and move stories, edit a teaser, write the
note that opens the digest, approve; each change recorded with who made it.

The changes to an edition's stored ``content`` are pure functions of it (no database, no
clock): each returns a new content list and leaves its argument alone, so a refused change
(an unknown story, a position out of range) writes nothing. ``apply`` is the one place that
stores a change with its ``ReviewEvent``, in the caller's transaction; the status changes
(holding, approving, releasing) are ``digest.edition.lifecycle``'s.

What the content holds per section besides its stories' ids (``build._content``):
``pinned`` (ids the editor pinned, top first) and ``teasers`` (the editor's teaser per id, as
a JSON key). A pinned story stays above the others; moving a story takes its pin away.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import DigestError, InputError, NotFoundError
from digest.ingest.text import inert
from digest.store.models import Edition, EditionStatus, ReviewEvent, utcnow

__all__ = [
    "ACTIONS",
    "NOTE_LENGTH",
    "TEASER_LENGTH",
    "Change",
    "apply",
    "check_note",
    "check_teaser",
    "drop",
    "events",
    "find",
    "held",
    "move",
    "pin",
    "review_opens",
    "set_teaser",
]

#: Longest teaser an editor may write (a feed's teaser is cut at 200 characters).
TEASER_LENGTH = 300
#: Longest note that opens the digest.
NOTE_LENGTH = 600
#: Longest "who" kept with a change (``ReviewEvent.who``).
WHO_LENGTH = 200
#: What a review event records: the editor's changes, then the two ways a hold ends.
ACTIONS = ("drop", "pin", "move", "teaser", "note", "approve", "release")

Content = list[dict[str, Any]]


def find(content: Content, article_id: int) -> tuple[int, int]:
    """(section index, place in it) of a story the edition shows; InputError if it shows
    no such story."""
    for s, block in enumerate(content):
        ids = block.get("article_ids", [])
        if article_id in ids:
            return s, ids.index(article_id)
    raise InputError(f"story {article_id} is not in this edition")


def _copy(content: Content) -> Content:
    return copy.deepcopy(content)


def _ordered(block: dict[str, Any]) -> None:
    """Pinned stories first, in pin order; the rest keep their order."""
    pinned = [i for i in block.get("pinned", []) if i in block["article_ids"]]
    rest = [i for i in block["article_ids"] if i not in pinned]
    block["article_ids"] = pinned + rest
    if pinned:
        block["pinned"] = pinned
    else:
        block.pop("pinned", None)


def drop(content: Content, article_id: int) -> Content:
    """The content without the story (and its pin, teaser and "also in" reports); a section
    left with no story is left out of the digest (``stored_draft`` skips it)."""
    s, _ = find(content, article_id)
    new = _copy(content)
    block = new[s]
    block["article_ids"].remove(article_id)
    key = str(article_id)
    for part in ("also_in", "teasers"):
        if key in block.get(part, {}):
            del block[part][key]
            if not block[part]:
                del block[part]
    if article_id in block.get("pinned", []):
        block["pinned"].remove(article_id)
    _ordered(block)
    return new


def pin(content: Content, article_id: int) -> Content:
    """The content with the story at the top of its section, above earlier pins."""
    s, _ = find(content, article_id)
    new = _copy(content)
    block = new[s]
    block["pinned"] = [article_id, *(i for i in block.get("pinned", []) if i != article_id)]
    _ordered(block)
    return new


def move(content: Content, article_id: int, position: int) -> Content:
    """The content with the story at ``position`` (1 = top) of its section, unpinned; the
    other pinned stories stay above it unless it is moved above them."""
    s, _ = find(content, article_id)
    count = len(content[s]["article_ids"])
    if not 1 <= position <= count:
        raise InputError(f"position must be 1 to {count} in its section, not {position}")
    new = _copy(content)
    block = new[s]
    ids = [i for i in block["article_ids"] if i != article_id]
    ids.insert(position - 1, article_id)
    block["article_ids"] = ids
    pinned = [i for i in ids[: position - 1] if i in block.get("pinned", [])]
    if pinned:
        block["pinned"] = pinned
    else:
        block.pop("pinned", None)
    return new


def _plain(text: str, what: str, limit: int) -> str:
    """``text`` as one line of plain text (no controls, no bidi overrides), refused when
    longer than ``limit`` or not valid Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode (a lone surrogate)") from exc
    clean = inert(text)
    if len(clean) > limit:
        raise InputError(f"{what} is {len(clean):,} characters long; at most {limit} fit")
    return clean


def check_teaser(text: str) -> str:
    """An editor's teaser as stored: plain text on one line, at most ``TEASER_LENGTH``."""
    return _plain(text, "the teaser", TEASER_LENGTH)


def check_note(text: str) -> str:
    """The editor's note as stored: plain text on one line, at most ``NOTE_LENGTH``."""
    return _plain(text, "the note", NOTE_LENGTH)


def set_teaser(content: Content, article_id: int, text: str) -> Content:
    """The content with the editor's teaser for the story (``text`` already checked); an
    empty one puts the feed's teaser back."""
    s, _ = find(content, article_id)
    new = _copy(content)
    teasers = new[s].setdefault("teasers", {})
    if text:
        teasers[str(article_id)] = text
    else:
        teasers.pop(str(article_id), None)
    if not teasers:
        del new[s]["teasers"]
    return new


@dataclass(frozen=True)
class Change:
    """One change an editor asks for: the action's name, what it records, and what it does
    to the edition (a function of the edition, run with the session's edition)."""

    action: str
    detail: dict[str, Any]
    run: Callable[[Edition], None]


def held(session: Session, edition_id: int) -> Edition:
    """The edition, if it is held for review; else a DigestError that says what it is."""
    edition = session.get(Edition, edition_id, with_for_update=True)
    if edition is None:
        raise NotFoundError("edition", edition_id)
    if edition.status != EditionStatus.HELD:
        raise DigestError(
            f"edition {edition_id} is {edition.status.value}, not held for review: "
            "only a held edition can be changed"
        )
    return edition


def apply(session: Session, edition: Edition, change: Change, who: str) -> ReviewEvent:
    """Make ``change`` to a held edition and record it; not committed (the caller commits
    both, or neither)."""
    change.run(edition)
    event = ReviewEvent(
        edition_id=edition.id,
        who=inert(who)[:WHO_LENGTH] or "unknown",
        at=utcnow(),
        action=change.action,
        detail=change.detail,
    )
    session.add(event)
    return event


def events(session: Session, edition_id: int) -> list[ReviewEvent]:
    """The edition's review history, oldest first."""
    return list(
        session.scalars(
            select(ReviewEvent)
            .where(ReviewEvent.edition_id == edition_id)
            .order_by(ReviewEvent.at, ReviewEvent.id)
        )
    )


def review_opens(send_at: str, hours: int, local_now: dt.datetime) -> bool:
    """Whether a list sending at ``send_at`` (HH:MM) with review ``hours`` ahead is in its
    review window at ``local_now`` (the list's local time): from the send time less the
    hours, within the same day (a window that would start the day before starts at 00:00)."""
    hour, minute = (int(p) for p in send_at.split(":"))
    send = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    opens = max(send - dt.timedelta(hours=hours), send.replace(hour=0, minute=0))
    return local_now >= opens
