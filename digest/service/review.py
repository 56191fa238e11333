"""The editors' review of held editions, as every face asks for it: what a held edition shows,
each change (drop, pin, move, teaser, note) recorded with who made it and the edition's
headings made again, the approval, and the release at the send time.

A change is one transaction: the edition is read with its row lock, changed, checked by
rendering its templates (a change that would break them is refused), and stored with its
``ReviewEvent``; the mailer's rendered copies of it are dropped, so what is sent is rendered
from the new content.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.edition import ledger, lifecycle
from digest.edition import review as rules
from digest.edition.build import refresh_headings, stored_draft
from digest.edition.select import local_today
from digest.errors import DigestError, InputError, NotFoundError
from digest.send import schedule
from digest.service import catalog
from digest.store.models import Article, Edition, EditionStatus, MailingList, utcnow

if TYPE_CHECKING:
    from digest.service.core import Digest

__all__ = ["SYSTEM", "Review", "ReviewEventView", "ReviewStory", "ReviewView"]

#: Who releases an unapproved edition at its send time.
SYSTEM = "the schedule"

_EDITION_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class ReviewStory:
    """One story as the editor sees it in review."""

    id: int
    headline: str
    teaser: str
    url: str
    source: str
    pinned: bool
    #: The teaser is the editor's, not the feed's.
    edited: bool
    position: int


@dataclass(frozen=True)
class ReviewSection:
    slug: str
    name: str
    stories: tuple[ReviewStory, ...]


@dataclass(frozen=True)
class ReviewEventView:
    who: str
    at: dt.datetime
    action: str
    detail: dict[str, Any]

    @property
    def words(self) -> str:
        """The change as a line of the history: ``drop story 12 ("Headline")``."""
        d = self.detail
        story = f"story {d['article']}" if "article" in d else ""
        if d.get("headline"):
            story += f" ({d['headline']})"
        match self.action:
            case "move":
                return f"moved {story} to place {d.get('position')}"
            case "teaser":
                return f"teaser of {story}: {d.get('text') or '(the feed’s again)'}"
            case "note":
                return f"note: {d.get('text') or '(removed)'}"
            case "approve":
                return "approved"
            case "release":
                return f"released: {d.get('why', '')}".rstrip(": ")
            case "drop":
                return f"dropped {story}"
            case "pin":
                return f"pinned {story}"
        return self.action


@dataclass(frozen=True)
class ReviewView:
    """A held (or once held) edition as its review page and ``digest review show`` show it."""

    edition_id: int
    list_slug: str
    list_name: str
    day: dt.date
    status: str
    subject: str
    note: str
    sections: tuple[ReviewSection, ...]
    events: tuple[ReviewEventView, ...]
    approved_by: str | None
    approved_at: dt.datetime | None
    send_at: str
    timezone: str
    unreviewed: str

    @property
    def held(self) -> bool:
        """Still held: the editors may change it."""
        return self.status == EditionStatus.HELD.value

    @property
    def state(self) -> str:
        if self.held:
            if self.approved_by:
                return f"approved by {self.approved_by}; goes at {self.send_at} {self.timezone}"
            after = "goes as built" if self.unreviewed == "send" else "waits for an approval"
            return f"awaiting review; at {self.send_at} {self.timezone} it {after}"
        if self.approved_by:
            return f"approved by {self.approved_by}; {self.status}"
        return self.status


def _view(session: Session, core: Digest, edition: Edition) -> ReviewView:
    mailing_list = session.get_one(MailingList, edition.list_id)
    draft = stored_draft(session, core.settings, edition)
    blocks = {b["slug"]: b for b in edition.content}
    sections = []
    for block in draft.sections:
        stored = blocks.get(block.slug, {})
        pinned = set(stored.get("pinned", []))
        edited = stored.get("teasers", {})
        sections.append(
            ReviewSection(
                block.slug,
                block.name,
                tuple(
                    ReviewStory(
                        a.id,
                        a.headline,
                        a.teaser,
                        a.url,
                        a.source_name,
                        a.id in pinned,
                        str(a.id) in edited,
                        place,
                    )
                    for place, a in enumerate(block.articles, start=1)
                ),
            )
        )
    return ReviewView(
        edition_id=edition.id,
        list_slug=mailing_list.slug,
        list_name=mailing_list.name,
        day=edition.edition_date,
        status=edition.status.value,
        subject=edition.subject,
        note=edition.note or "",
        sections=tuple(sections),
        events=tuple(
            ReviewEventView(e.who, e.at, e.action, dict(e.detail or {}))
            for e in rules.events(session, edition.id)
        ),
        approved_by=edition.approved_by,
        approved_at=edition.approved_at,
        send_at=mailing_list.send_at,
        timezone=mailing_list.timezone,
        unreviewed=mailing_list.unreviewed,
    )


class Review:
    """The faces' review operations; ``who`` is the person making a change, as a face knows
    them (a dashboard login, an API token's name, the CLI's user)."""

    def __init__(self, core: Digest) -> None:
        self.core = core

    # -- finding the edition ----------------------------------------------------------
    def _edition_id(self, session: Session, target: str) -> int:
        """``target`` is an edition id, or a list's slug: its edition held for review (the
        latest, if several), else its edition of today."""
        target = target.strip()
        if _EDITION_ID.fullmatch(target):
            # Ids are 32-bit columns: a larger number names no edition (PostgreSQL would
            # refuse the query itself).
            if int(target) > 2**31 - 1:
                raise NotFoundError("edition", target)
            return int(target)
        mailing_list = catalog.get_list(session, target)
        held = session.scalar(
            select(Edition.id)
            .where(Edition.list_id == mailing_list.id, Edition.status == EditionStatus.HELD)
            .order_by(Edition.edition_date.desc())
            .limit(1)
        )
        if held is not None:
            return held
        day = local_today(mailing_list.timezone)
        edition_id = session.scalar(
            select(Edition.id).where(
                Edition.list_id == mailing_list.id, Edition.edition_date == day
            )
        )
        if edition_id is None:
            raise NotFoundError("edition", f"{mailing_list.slug} {day.isoformat()}")
        return edition_id

    def show(self, target: str) -> ReviewView:
        """The edition (an id, or a list's slug for today's) with its stories and history."""
        with self.core.require_schema().session() as session:
            edition = session.get(Edition, self._edition_id(session, target))
            if edition is None:
                raise NotFoundError("edition", target)
            return _view(session, self.core, edition)

    def held(self) -> list[ReviewView]:
        """Every edition held for review now, oldest day first."""
        with self.core.require_schema().session() as session:
            editions = session.scalars(
                select(Edition)
                .where(Edition.status == EditionStatus.HELD)
                .order_by(Edition.edition_date, Edition.id)
            ).all()
            return [_view(session, self.core, e) for e in editions]

    # -- changes ----------------------------------------------------------------------
    def _change(
        self,
        target: str,
        who: str,
        action: str,
        detail: dict[str, Any],
        run: Callable[[Edition], None],
    ) -> ReviewView:
        with self.core.require_schema().session() as session:
            edition = rules.held(session, self._edition_id(session, target))
            if edition.approved_at is not None:
                # What the approver saw is what goes out.
                raise DigestError(
                    f"edition {edition.id} was approved by {edition.approved_by}: "
                    "it is not changed any more"
                )
            rules.apply(session, edition, rules.Change(action, detail, run), who)
            draft = refresh_headings(session, self.core.settings, edition)
            if not draft.sections:
                raise InputError(
                    "that would leave the edition with no story: cancel it instead "
                    "(`digest cancel`)"
                )
            # A broken render is refused here, before the change is stored.
            self.core.mailer.check(draft)
            session.commit()
            self.core.mailer.forget(edition.id)
            return _view(session, self.core, edition)

    def _story_change(
        self,
        target: str,
        who: str,
        action: str,
        article_id: int,
        change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        **detail: Any,
    ) -> ReviewView:
        headline = self._headline(article_id)

        def run(edition: Edition) -> None:
            edition.content = change(edition.content)

        return self._change(
            target, who, action, {"article": article_id, "headline": headline, **detail}, run
        )

    def _headline(self, article_id: int) -> str:
        with self.core.db.session() as session:
            return session.scalar(select(Article.headline).where(Article.id == article_id)) or ""

    def drop(self, target: str, article_id: int, who: str) -> ReviewView:
        """Take a story out of the held edition."""
        return self._story_change(
            target, who, "drop", article_id, lambda c: rules.drop(c, article_id)
        )

    def pin(self, target: str, article_id: int, who: str) -> ReviewView:
        """Put a story at the top of its section."""
        return self._story_change(
            target, who, "pin", article_id, lambda c: rules.pin(c, article_id)
        )

    def move(self, target: str, article_id: int, position: int, who: str) -> ReviewView:
        """Put a story at ``position`` (1 = top) of its section."""
        return self._story_change(
            target,
            who,
            "move",
            article_id,
            lambda c: rules.move(c, article_id, position),
            position=position,
        )

    def teaser(self, target: str, article_id: int, text: str, who: str) -> ReviewView:
        """Replace a story's teaser (plain text; empty: the feed's again)."""
        clean = rules.check_teaser(text)
        return self._story_change(
            target,
            who,
            "teaser",
            article_id,
            lambda c: rules.set_teaser(c, article_id, clean),
            text=clean,
        )

    def note(self, target: str, text: str, who: str) -> ReviewView:
        """Write the note that opens the digest (plain text; empty: no note)."""
        clean = rules.check_note(text)

        def run(edition: Edition) -> None:
            edition.note = clean or None

        return self._change(target, who, "note", {"text": clean}, run)

    def approve(self, target: str, who: str, now: dt.datetime | None = None) -> ReviewView:
        """Approve the held edition: it goes at its send time, or at once if that has passed."""

        def run(edition: Edition) -> None:
            lifecycle.approve(edition, who)

        with self.core.require_schema().session() as session:
            edition = rules.held(session, self._edition_id(session, target))
            if edition.approved_at is not None:
                raise InputError(
                    f"edition {edition.id} was already approved by {edition.approved_by}"
                )
            rules.apply(session, edition, rules.Change("approve", {}, run), who)
            session.commit()
            edition_id = edition.id
        self.release_due(now)
        return self.show(str(edition_id))

    # -- the send time ----------------------------------------------------------------
    def release_due(self, now: dt.datetime | None = None) -> list[int]:
        """Release each held edition whose send time has come and which may go: approved,
        or its list sends unreviewed editions as built; dispatch them. Returns their ids."""
        due = set(schedule.due_lists(self.core.db, now or utcnow()))
        released = []
        with self.core.db.session() as session:
            held = session.execute(
                select(Edition, MailingList)
                .join(MailingList, MailingList.id == Edition.list_id)
                .where(Edition.status == EditionStatus.HELD)
            ).all()
            for edition, mailing_list in held:
                if (mailing_list.id, edition.edition_date) not in due:
                    continue
                if edition.approved_at is None and mailing_list.unreviewed != "send":
                    continue
                why = (
                    f"approved by {edition.approved_by}"
                    if edition.approved_at is not None
                    else "the send time came; the list sends unreviewed editions as built"
                )
                if not lifecycle.release(session, edition.id):
                    continue
                session.expire(edition)
                # Who joined while it was held gets it too, as if it were built now.
                ledger.add_late(session, edition)
                rules.apply(
                    session,
                    edition,
                    rules.Change("release", {"why": why}, lambda _e: None),
                    SYSTEM,
                )
                session.commit()
                released.append(edition.id)
        for edition_id in released:
            self.core.continue_send(edition_id)
        return released
