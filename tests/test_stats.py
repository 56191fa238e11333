"""Editors' figures on a scripted edition: exact counts of deliveries, bounces, complaints,
unsubscribes and readers' clicks, through the CLI and the dashboard's server-drawn charts; the
weekly report, and sections ordered by their readers' clicks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from digest.cli import cli
from digest.config import Settings
from digest.edition.build import draft_edition
from digest.feedback import clicks
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.mail.tracking import CLICK, LinkSigner
from digest.service import catalog
from digest.service.stats import edition_stats, weekly_report
from digest.store.db import Database
from digest.store.models import (
    Article,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    Subscriber,
    utcnow,
)
from digest.web import create_app
from tests.conftest import SmtpSink
from tests.test_clicks import URLS, send, site

OPERATOR_PASSWORD = "correct horse battery staple"


def _delivery(db: Database, edition_id: int, email: str) -> int:
    with db.session() as session:
        return session.scalars(
            select(Delivery.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.edition_id == edition_id, Subscriber.email == email)
        ).one()


def _click(
    db: Database, settings: Settings, edition_id: int, email: str, url: str, at: dt.datetime
) -> None:
    """A GET of ``email``'s tracked link to ``url`` at ``at``, as the web route records it."""
    signer = LinkSigner(settings.secret)
    delivery_id = _delivery(db, edition_id, email)
    with db.session() as session:
        article_id = session.scalars(select(Article.id).where(Article.url == url)).one()
        link = signer.verify(CLICK, signer.sign(CLICK, edition_id, article_id, delivery_id))
        clicks.record(session, link, clicks.ScannerRules.of(settings), at)


@pytest.fixture
def scripted(db: Database, settings: Settings, smtp_server: SmtpSink) -> tuple[Settings, int]:
    """Six readers of a three-article edition, sent over SMTP: reader5 refused (550), reader3
    hard-bounced later, reader2 soft-bounced, reader1 complained, reader0 unsubscribed (and
    reader4 did before the edition, which is not this edition's); reader0 clicked two
    national stories a minute apart, reader1 one sports story, reader4's scanner fetched
    all three in a second."""
    tracked = settings.replace(smtp_url=smtp_server.url, track_clicks=True)
    edition_id = site(db, tracked, readers=6)
    smtp_server.codes["reader5@example.com"] = [550]
    with db.session() as session:
        early = session.scalars(
            select(Subscriber).where(Subscriber.email == "reader4@example.com")
        ).one()
        session.add(
            ConsentEvent(
                subscriber_id=early.id,
                list_id=None,
                action="unsubscribe-all",
                at=utcnow() - dt.timedelta(days=2),
            )
        )
    send(db, tracked, edition_id)
    with db.session() as session:
        for kind, email in [
            (EventKind.HARD_BOUNCE, "reader3@example.com"),
            (EventKind.SOFT_BOUNCE, "reader2@example.com"),
            (EventKind.COMPLAINT, "reader1@example.com"),
        ]:
            event = FeedbackEvent(kind, delivery_id=_delivery(db, edition_id, email))
            assert apply_event(session, event)
        list_id = session.scalars(select(Edition.list_id)).one()
        unsubscribe = FeedbackEvent(
            EventKind.UNSUBSCRIBE, email="reader0@example.com", list_id=list_id
        )
        assert apply_event(session, unsubscribe)
    later = utcnow() - dt.timedelta(minutes=30)
    _click(db, tracked, edition_id, "reader0@example.com", URLS[0], later)
    _click(db, tracked, edition_id, "reader0@example.com", URLS[1], later + dt.timedelta(minutes=1))
    _click(db, tracked, edition_id, "reader1@example.com", URLS[2], later)
    for n, url in enumerate(URLS):
        _click(
            db, tracked, edition_id, "reader4@example.com", url, later + dt.timedelta(seconds=n / 4)
        )
    return tracked, edition_id


def test_an_editions_figures_are_exact(db: Database, scripted: tuple[Settings, int]) -> None:
    """Delivered, hard and soft bounces, complaints, unsubscribes after the edition, readers,
    and click-through per section and per article are exactly what happened."""
    _, edition_id = scripted
    with db.session() as session:
        stats = edition_stats(session, edition_id)
    assert (stats.recipients, stats.delivered) == (6, 4)
    assert (stats.hard_bounces, stats.soft_bounces) == (2, 1)
    assert (stats.complaints, stats.unsubscribes) == (1, 1)
    assert (stats.readers, stats.clicks, stats.scanner_clicks) == (2, 3, 3)
    assert stats.click_rate == pytest.approx(0.5)
    assert [(s.slug, s.articles, s.readers, s.clicks) for s in stats.sections] == [
        ("national", 2, 1, 2),
        ("sports", 1, 1, 1),
    ]
    assert [s.rate for s in stats.sections] == [pytest.approx(0.25), pytest.approx(0.25)]
    assert sorted((a.readers, a.clicks) for a in stats.articles) == [(1, 1)] * 3
    assert sum(n for _, n in stats.sends_over_time) == 6  # the 550 too was attempted at a time


def test_digest_stats_prints_the_figures(
    db: Database, scripted: tuple[Settings, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`digest stats EDITION` prints the same figures, one line each."""
    tracked, edition_id = scripted
    monkeypatch.chdir(tmp_path)
    env = {
        "DIGEST_DATABASE_URL": tracked.database_url,
        "DIGEST_SECRET_KEY": tracked.secret,
        "DIGEST_TRACK_CLICKS": "1",
    }
    result = CliRunner().invoke(cli, ["stats", str(edition_id)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"delivered\s+4\n", out)
    assert re.search(r"bounced\s+2 hard, 1 soft\n", out)
    assert re.search(r"complaints\s+1\n", out) and re.search(r"unsubscribes\s+1\n", out)
    assert "2 clicked (50.0% of delivered)" in out
    assert "3 by readers, 3 by scanners" in out
    assert re.search(r"National\s+2\s+1\s+2\s+25\.0%", out)
    wrong = CliRunner().invoke(cli, ["stats"], env=env)
    assert wrong.exit_code != 0 and "EDITION" in wrong.output


def test_the_stats_page_draws_its_charts_as_svg_without_script(
    db: Database, scripted: tuple[Settings, int]
) -> None:
    """The dashboard's stats page holds three inline SVG charts, well-formed, with no script
    element or event attribute anywhere, under a CSP that allows no script."""
    tracked, edition_id = scripted
    client = create_app(tracked.replace(operator_password=OPERATOR_PASSWORD)).test_client()
    login = client.get("/dashboard/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert csrf is not None
    client.post(
        "/dashboard/login", data={"password": OPERATOR_PASSWORD, "csrf_token": csrf.group(1)}
    )
    answer = client.get(f"/dashboard/editions/{edition_id}/stats")
    assert answer.status_code == 200
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    page = answer.get_data(as_text=True)
    assert "<script" not in page.lower()
    assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE)
    svgs = re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 3
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed XML
    assert "Click-through per section" in svgs[2] and "National" in svgs[2]
    assert "25.0%" in svgs[2]
    assert client.get("/dashboard/editions/999999/stats").status_code == 404


def _history(db: Database, settings: Settings, national: int, sports: int) -> None:
    """Yesterday's edition of 'daily' delivered to 25 readers; ``national`` of them clicked a
    national story and ``sports`` others a sports story, each an hour after delivery."""
    edition_id = site(db, settings, readers=25)
    sent = utcnow() - dt.timedelta(days=1)
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.edition_id == edition_id)
            .values(status=DeliveryStatus.SENT, sent_at=sent)
        )
    for n in range(national + sports):
        url = URLS[0] if n < national else URLS[2]
        _click(
            db, settings, edition_id, f"reader{n}@example.com", url, sent + dt.timedelta(hours=1)
        )


def _fresh_articles(db: Database) -> dt.date:
    """A national and a sports story published today: what the next edition will carry."""
    today = utcnow().date()
    with db.session() as session:
        for i, slug in enumerate(["national", "sports"]):
            section = catalog.get_section(session, slug)
            session.add(
                Article(
                    url=f"https://n.example/today/{i}",
                    section_id=section.id,
                    headline=f"Today {i}",
                    published_at=dt.datetime.combine(today, dt.time(1, i)),
                )
            )
    return today


def test_weekly_report_ranks_sections_by_click_through(db: Database, settings: Settings) -> None:
    """The week's report for a list puts the section its readers clicked most first, with
    its exact rate."""
    _history(db, settings, national=3, sports=20)
    with db.session() as session:
        report = weekly_report(session, "daily")
    (week,) = report.lists
    assert week.delivered == 25
    assert [(s.slug, s.readers, s.delivered) for s in week.sections] == [
        ("sports", 20, 25),
        ("national", 3, 25),
    ]
    assert week.sections[0].rate == pytest.approx(0.8)


def test_sections_follow_recent_clicks_only_when_asked_and_when_enough_read(
    db: Database, settings: Settings
) -> None:
    """With --order-sections-by-clicks and 23 readers who clicked, the next edition shows
    sports (clicked by 20) before national; without the option, or with too few readers,
    the list's own order stands."""
    _history(db, settings, national=3, sports=20)
    day = _fresh_articles(db)
    with db.session() as session:
        daily = catalog.get_list(session, "daily")
        as_listed = [s.slug for s in draft_edition(session, settings, daily, day).sections]
        catalog.add_list(
            session, "daily", "Daily", ["national", "sports"], order_sections_by_clicks=True
        )
        by_clicks = [s.slug for s in draft_edition(session, settings, daily, day).sections]
    assert as_listed == ["national", "sports"]
    assert by_clicks == ["sports", "national"]


def test_too_few_readers_keep_the_lists_order(db: Database, settings: Settings) -> None:
    """Below the minimum of readers who clicked, ordering by clicks changes nothing."""
    _history(db, settings, national=1, sports=5)
    day = _fresh_articles(db)
    with db.session() as session:
        daily, _ = catalog.add_list(
            session, "daily", "Daily", ["national", "sports"], order_sections_by_clicks=True
        )
        order = [s.slug for s in draft_edition(session, settings, daily, day).sections]
    assert order == ["national", "sports"]
