"""Stories told once, stored: an edition built from a day with one story in two sections and
two feeds keeps its "also in" reports, reads them back, and lets readers follow them."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.config import Settings
from digest.edition.build import build_edition, draft_edition, stored_draft
from digest.edition.popularity import section_of_articles
from digest.errors import InputError
from digest.feedback import clicks
from digest.mail.tracking import CLICK, TrackedLink
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, Edition, Source

DAY = dt.date(2026, 11, 24)
HEADLINE = "IHC announces winter vacation from December 23 to January 1"
TEASER = (
    "ISLAMABAD: The Islamabad High Court has announced winter vacation, a notification "
    "issued by the deputy registrar said."
)
SHOWN = "https://paper.example/national/ihc-winter-vacation"
OTHER_SECTION = "https://paper.example/health-education/ihc-winter-vacation"
WIRE = "https://wire.example/story/481233"


def _site(db: Database, settings: Settings) -> int:
    """A list carrying National then Health & Education; the IHC story filed by one paper
    under both and reported by a wire, plus an unrelated story. Returns the edition's id."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        education, _ = catalog.add_section(session, "health-education", "Health & Education")
        mailing_list, _ = catalog.add_list(
            session, "daily", "Daily", ["national", "health-education"]
        )
        feeds = {
            name: Source(url=f"https://{name}.example/feed", name=label, section_id=section.id)
            for name, label, section in [
                ("paper-national", "Paper National", national),
                ("paper-education", "Paper Education", education),
                ("wire", "Capital <Wire> & Co", national),
            ]
        }
        session.add_all(feeds.values())
        session.flush()
        at = dt.datetime(2026, 11, 24, 8)
        rows = [
            (SHOWN, national, feeds["paper-national"], HEADLINE, TEASER, at, 0),
            (OTHER_SECTION, education, feeds["paper-education"], HEADLINE, TEASER, at, 2),
            (
                WIRE,
                national,
                feeds["wire"],
                "Islamabad High Court to observe winter vacation from Dec 23",
                "ISLAMABAD: Benches will not sit from December 23 to January 1, a notification "
                "issued by the deputy registrar said.",
                at + dt.timedelta(hours=1),
                4,
            ),
            (
                "https://paper.example/business/rupee",
                national,
                feeds["paper-national"],
                "Rupee closes higher against the dollar in interbank trade",
                "KARACHI: The local currency gained 12 paisa, the State Bank said.",
                at + dt.timedelta(hours=2),
                1,
            ),
        ]
        for url, section, source, headline, teaser, when, position in rows:
            session.add(
                Article(
                    url=url,
                    section_id=section.id,
                    source_id=source.id,
                    headline=headline,
                    teaser=teaser,
                    published_at=when,
                    feed_position=position,
                )
            )
        catalog.subscribe(session, mailing_list, "reader@example.com")
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        return edition.id


def _ids(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {a.url: a.id for a in session.query(Article)}


@pytest.mark.postgres
def test_the_stored_edition_keeps_and_restores_also_in(db: Database, settings: Settings) -> None:
    """The edition stores the story once, with its other reports' ids beside the shown one's;
    read back, it has the same "also in" links the build showed."""
    edition_id = _site(db, settings)
    ids = _ids(db)
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        (block,) = edition.content
        assert block["slug"] == "national"
        assert block["article_ids"] == [ids[SHOWN], ids["https://paper.example/business/rupee"]]
        assert block["also_in"] == {str(ids[SHOWN]): [ids[WIRE], ids[OTHER_SECTION]]}
        stored = stored_draft(session, settings, edition)
        built = draft_edition(session, settings, edition.mailing_list, DAY)
        assert stored.sections == built.sections
        shown = stored.sections[0].articles[0]
        assert [(o.label, o.url) for o in shown.also_in] == [
            ("Capital <Wire> & Co", WIRE),
            ("Health & Education", OTHER_SECTION),
        ]
        assert shown.source_name == "Paper National" and shown.feed_position == 0


@pytest.mark.postgres
def test_readers_can_follow_an_also_in_link_and_it_counts_for_its_section(
    db: Database, settings: Settings
) -> None:
    """A tracked link to an "also in" report leads to that report's own URL (the edition
    carried it), and a click on it counts for the section it was shown under; an article
    the edition never carried is still refused."""
    edition_id = _site(db, settings)
    ids = _ids(db)
    with db.session() as session:
        edition = session.get_one(Edition, edition_id)
        link = TrackedLink(CLICK, edition_id, ids[OTHER_SECTION], 0)
        assert clicks.target(session, link) == OTHER_SECTION
        assert section_of_articles(edition)[ids[OTHER_SECTION]] == "national"
        session.add(
            Article(
                url="https://paper.example/never-shown",
                section_id=session.get_one(Article, ids[SHOWN]).section_id,
                headline="Not in the edition",
                published_at=dt.datetime(2026, 11, 20),
            )
        )
        session.flush()
        never = session.query(Article).filter_by(url="https://paper.example/never-shown").one()
        with pytest.raises(InputError):
            clicks.target(session, TrackedLink(CLICK, edition_id, never.id, 0))
