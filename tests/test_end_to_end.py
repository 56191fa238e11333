"""The sample site, ingested, built and sent through a real SMTP server."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from digest import sample
from digest.config import Settings
from digest.edition.build import build_edition
from digest.edition.select import local_today
from digest.ingest import ingest_all
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service.demo import install_sample
from digest.store.db import Database
from digest.store.models import Article, Delivery, MailingList
from digest.transports import transport_for
from tests.conftest import SmtpSink


def _send_list(db: Database, settings: Settings, slug: str) -> tuple[int, int]:
    """Build today's edition of ``slug`` and send it in-process; returns (edition id, sent)."""
    with db.session() as session:
        mailing_list = session.scalars(select(MailingList).where(MailingList.slug == slug)).one()
        edition, _ = build_edition(
            session, settings, mailing_list, local_today(mailing_list.timezone)
        )
        edition_id = edition.id
    report = send_until_done(
        db, EditionMailer(settings), edition_id, lambda: transport_for(settings)
    )
    return edition_id, report.sent


def _csv_addresses(path: Path) -> set[str]:
    return {line.split(",")[0].lower() for line in path.read_text().splitlines()[1:] if line}


def test_sample_site_reaches_every_subscriber_once(
    db: Database, settings: Settings, smtp_server: SmtpSink, tmp_path: Path
) -> None:
    """Each sample subscriber gets exactly one parseable multipart digest per list, with the
    list headers, the sections in the list's order, and a second send adds nothing."""
    settings = settings.replace(smtp_url=smtp_server.url)
    install_sample(db, tmp_path / "site")
    reports = ingest_all(db, settings)
    assert all(r.error is None for r in reports)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 36

    for spec in sample.LISTS:
        expected = _csv_addresses(spec["csv"])
        before = len(smtp_server.received)
        edition_id, sent = _send_list(db, settings, spec["slug"])
        got = smtp_server.received[before:]
        assert sent == len(expected) == len(got)
        assert sorted(r.recipients[0] for r in got) == sorted(expected)

        wanted = [dict(sample.load_site().sections)[s] for s in spec["sections"]]
        message_ids = set()
        for received in got:
            msg = received.message
            assert msg.get_content_type() == "multipart/alternative"
            for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id"):
                assert msg[header], header
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            unsubscribe = str(msg["List-Unsubscribe"])
            assert re.search(r"<https://news\.example/unsubscribe/[\w.-]+>", unsubscribe)
            assert "<mailto:" in unsubscribe
            message_ids.add(msg["Message-ID"])
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            positions = [html.find(f">{name.replace('&', '&amp;')}<") for name in wanted]
            present = [p for p in positions if p >= 0]
            assert present == sorted(present) and len(present) >= 2
            assert "The Test Gazette" in text and "1 Test Street, Testville" in html
            # The personal link in the body is the one in the header.
            link = re.search(r"<(https://[^>]+)>", unsubscribe)
            assert link and link.group(1) in html
        assert len(message_ids) == len(got)

        again_id, again_sent = _send_list(db, settings, spec["slug"])
        assert (again_id, again_sent) == (edition_id, 0)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == sum(
            len(_csv_addresses(spec["csv"])) for spec in sample.LISTS
        )
