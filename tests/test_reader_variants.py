"""A reader's choice shapes the whole message: subject and preview line from the sections that
reader gets, and no mail on a day their sections have nothing (unless the list sends all)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select, update

from digest.config import Settings
from digest.edition.build import build_edition
from digest.edition.select import (
    NOTHING_IN_SECTIONS,
    ArticleView,
    SectionBlock,
    headlines,
    variant_sections,
)
from digest.send.batch import send_batch
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Article, Delivery, Subscriber, Subscription
from digest.transports import RecordingTransport
from tests.builders import add_stories, ledger_counts

DAY = dt.date(2026, 11, 24)


def _block(slug: str, *headlines_: str) -> SectionBlock:
    when = dt.datetime(2026, 11, 24, 9)
    return SectionBlock(
        slug,
        slug.capitalize(),
        [ArticleView(i, slug, h, "", f"https://n.example/{slug}/{i}", when) for i, h in
         enumerate(headlines_)],
    )  # fmt: skip


@pytest.mark.unit
def test_variant_sections_skip_all_and_stale_choices() -> None:
    """A choice with nothing today gets nothing under skip and everything under all; no choice
    or a stale one (naming none of the list's sections) gets everything."""
    blocks = [_block("national", "N1"), _block("sports", "S1")]
    carried = ["national", "sports", "weather"]
    assert variant_sections(blocks, ["sports"], carried) == [blocks[1]]
    assert variant_sections(blocks, ["weather"], carried, "skip") == []
    assert variant_sections(blocks, ["weather"], carried, "all") == blocks
    assert variant_sections(blocks, None, carried) == blocks
    assert variant_sections(blocks, ["gone"], carried) == blocks
    assert variant_sections([], ["weather"], carried, "all") == []


@pytest.mark.unit
def test_headlines_come_from_the_variants_own_sections() -> None:
    """The subject's top headline is the variant's first story; the preview line adds the
    other sections' tops, not the top again."""
    top, preview = headlines([_block("sports", "Cup final", "Transfer"), _block("tech", "Chip")])
    assert (top, preview) == ("Cup final", "Chip")
    assert headlines([]) == ("", "")


STORIES = [
    ("sports", "Cricket team wins the series in Lahore"),
    ("sports", "Hockey coach resigns after quarterfinal"),
    ("national", "Budget passes parliament after long debate"),
    ("national", "Floods reach coastal towns overnight"),
]
NATIONAL = [h for slug, h in STORIES if slug == "national"]
SPORTS = [h for slug, h in STORIES if slug == "sports"]


def _site(db: Database, settings: Settings, when_empty: str | None = None) -> tuple[int, int]:
    """List 'daily' over national, sports and weather; stories in national and sports only;
    readers: all sections (a), sports (b), weather (c)."""
    with db.session() as session:
        sections = {s: catalog.add_section(session, s, s.capitalize())[0] for s in
                    ("national", "sports", "weather")}  # fmt: skip
        options = {"when_empty": when_empty} if when_empty else {}
        daily, _ = catalog.add_list(
            session, "daily", "Daily", ["national", "sports", "weather"], **options
        )
        for i, (slug, headline) in enumerate(STORIES):
            session.add(
                Article(
                    url=f"https://n.example/{i}",
                    guid=f"g{i}",
                    section_id=sections[slug].id,
                    headline=headline,
                    teaser="A teaser.",
                    published_at=dt.datetime(2026, 11, 24, 3 + i),
                )
            )
        for local, chosen in (("a", None), ("b", ["sports"]), ("c", ["weather"])):
            catalog.subscribe(session, daily, f"{local}@example.com", local.upper())
            if chosen is not None:
                session.execute(
                    update(Subscription)
                    .where(
                        Subscription.subscriber_id
                        == select(Subscriber.id)
                        .where(Subscriber.email == f"{local}@example.com")
                        .scalar_subquery()
                    )
                    .values(sections=chosen)
                )
        session.flush()
        edition, _ = build_edition(session, settings, daily, DAY, now=dt.datetime(2026, 11, 24, 12))
        return daily.id, edition.id


def _messages(transport: RecordingTransport) -> dict[str, EmailMessage]:
    return {
        envelope.recipient: message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
        for envelope, raw in transport.sent
    }


def test_each_reader_gets_a_subject_and_preview_of_their_own_sections(
    db: Database, settings: Settings
) -> None:
    """The sports reader's subject names a sports story, and nothing in its message (title,
    preview line) a national one; the reader of everything gets the national lead."""
    _, edition_id = _site(db, settings)
    transport = RecordingTransport()
    send_batch(db, EditionMailer(settings), edition_id, transport)
    sent = _messages(transport)
    everything, sports = sent["a@example.com"], sent["b@example.com"]
    assert any(h in everything["Subject"] for h in NATIONAL)
    assert any(h in sports["Subject"] for h in SPORTS)
    sports_html = sports.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Nor in its preview line or title (the whole edition's name a national story).
    assert not any(h in sports["Subject"] or h in sports_html for h in NATIONAL)


def test_reader_whose_sections_have_nothing_gets_no_mail(db: Database, settings: Settings) -> None:
    """Under the default (skip), the weather reader's row is skipped with its reason, counted
    in the summary, and a second send does not try it again."""
    _, edition_id = _site(db, settings)
    transport = RecordingTransport()
    report = send_batch(db, EditionMailer(settings), edition_id, transport)
    assert (report.sent, report.skipped) == (2, 1)
    assert sorted(_messages(transport)) == ["a@example.com", "b@example.com"]
    assert ledger_counts(db, edition_id) == {"sent": 2, "skipped": 1}
    with db.session() as session:
        reason = session.scalar(select(Delivery.last_error).where(Delivery.status == "skipped"))
    assert reason == NOTHING_IN_SECTIONS
    core = Digest(settings)
    assert core.summary(edition_id).nothing_for == 1
    again = send_batch(db, EditionMailer(settings), edition_id, RecordingTransport())
    assert again.claimed == 0


def test_list_that_sends_all_gives_that_reader_the_whole_edition(
    db: Database, settings: Settings
) -> None:
    """With --when-empty all, the weather reader gets the full edition, its subject too."""
    _, edition_id = _site(db, settings, when_empty="all")
    transport = RecordingTransport()
    send_batch(db, EditionMailer(settings), edition_id, transport)
    sent = _messages(transport)
    assert sorted(sent) == ["a@example.com", "b@example.com", "c@example.com"]
    assert sent["c@example.com"]["Subject"] == sent["a@example.com"]["Subject"]


def test_dry_run_counts_readers_who_would_get_nothing(db: Database, settings: Settings) -> None:
    """The dry run's draft says one of three readers gets no mail today."""
    with db.session() as session:
        sections = {s: catalog.add_section(session, s, s.capitalize())[0] for s in
                    ("national", "weather")}  # fmt: skip
        daily, _ = catalog.add_list(session, "daily", "Daily", ["national", "weather"])
        add_stories(session, sections["national"], 1, dt.datetime(2026, 11, 24, 6))
        for local in ("a", "b", "c"):
            catalog.subscribe(session, daily, f"{local}@example.com", local)
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == select(func.min(Subscriber.id)).scalar_subquery())
            .values(sections=["weather"])
        )
    core = Digest(settings)
    draft, edition_id = core.draft("daily", DAY, now=dt.datetime(2026, 11, 24, 12))
    assert edition_id is None
    assert core.readers_without_news(draft) == 1
    core.catalog.edit_list("daily", when_empty="all")
    draft, _ = core.draft("daily", DAY, now=dt.datetime(2026, 11, 24, 12))
    assert core.readers_without_news(draft) == 0
