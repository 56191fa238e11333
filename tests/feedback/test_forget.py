"""Forgetting a person: nothing personal left in any table, the counts kept, and the address
still suppressed (as a hash) when it is subscribed again by the operator or the web form."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select, text, update

from digest.audience import address_hash, forget
from digest.cli.context import App
from digest.cli.inbound import forget as forget_command
from digest.config import Settings
from digest.edition import ledger
from digest.errors import InputError
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.send.batch import send_until_done
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    Throttle,
)
from digest.transports import Envelope, OutboxTransport, RecordingTransport
from digest.web import context, create_app
from tests.feedback.conftest import build_day, delivery_of, make_site
from tests.feedback.test_inbound import _sent_site

EMAIL = "reader0@example.com"


def _everything(db: Database) -> str:
    """Every value of every table, as one text, to search for what should be gone."""
    parts = []
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table == "alembic_version":
                continue
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts).lower()


def test_forget_erases_the_person_and_keeps_the_counts(
    db: Database, bounce_settings: Settings
) -> None:
    """After `subscribers forget`, no table holds the address, the name or the consent record,
    the ledger counts are unchanged, and only a hash stays on the suppression list."""
    editions = _sent_site(db, bounce_settings, readers=3, days=2)
    with db.session() as session:
        reader0 = session.scalars(select(Subscriber.id).where(Subscriber.email == EMAIL)).one()
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == reader0)
            .values(consent_ip="198.51.100.7", consent_text="Yes, email me")
        )
        did = delivery_of(db, editions[1], EMAIL)
        session.execute(update(Delivery).where(Delivery.id == did).values(last_error=f"<{EMAIL}>"))
        apply_event(
            session,
            FeedbackEvent(EventKind.SOFT_BOUNCE, delivery_id=did, detail=f"4.2.2 {EMAIL} full"),
        )
        counts = [dict(ledger.counts(session, e)) for e in editions]
    assert EMAIL in _everything(db)

    result = CliRunner().invoke(
        forget_command,
        [EMAIL, "--yes"],
        obj=App(None, core=Digest(bounce_settings, db=db)),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    everything = _everything(db)
    for personal in (EMAIL, "reader 0", "198.51.100.7"):
        assert personal not in everything, personal
    with db.session() as session:
        assert [dict(ledger.counts(session, e)) for e in editions] == counts
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 3
        assert address_hash(EMAIL) in session.scalars(select(Suppression.email)).all()
        # Forgetting again (or someone never subscribed) is harmless.
        assert not forget(session, EMAIL).found
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1


def test_a_forgotten_address_stays_suppressed(db: Database, bounce_settings: Settings) -> None:
    """The operator cannot subscribe a forgotten address again (the import reports it), the
    public form stores and sends nothing for it, and the next edition leaves it out."""
    make_site(db, readers=2, days=2)
    first = build_day(db, bounce_settings, 0)
    send_until_done(db, EditionMailer(bounce_settings), first, RecordingTransport)
    with db.session() as session:
        forget(session, "Reader0@Example.com ")
    with db.session() as session:
        mailing_list = session.scalars(select(MailingList)).one()
        with pytest.raises(InputError, match="forgotten"):
            catalog.subscribe(session, mailing_list, "READER0@example.com")
    app = create_app(bounce_settings)
    response = app.test_client().post("/subscribe/daily", data={"email": EMAIL, "name": "Again"})
    with app.app_context():
        context().close()
    assert response.status_code == 200
    with db.session() as session:
        assert session.scalar(select(Subscriber.id).where(Subscriber.email == EMAIL)) is None
    second = build_day(db, bounce_settings, 1)
    with db.session() as session:
        emails = session.scalars(
            select(Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.edition_id == second)
        ).all()
    assert EMAIL not in emails


IDN_STORED = "frank@xn--bcher-kva.de"


def test_forget_finds_an_internationalised_address_and_clears_everything(
    db: Database, bounce_settings: Settings
) -> None:
    """A reader who signed up as Frank@Bücher.de (stored in punycode) is found when the
    operator writes the address either way; their subscription, consent events, sign-up mail
    counter and outbox files are gone, other people's files stay, only the hash of the stored
    form is suppressed, and the report lists what was cleared and what was out of reach."""
    make_site(db, readers=1)
    core = Digest(bounce_settings, db=db)
    check = core.readers.check_signup(
        "daily", email="Frank@Bücher.de", name="Frank", sections=[], ip="198.51.100.23"
    )
    assert check.signup is not None and check.signup.address == IDN_STORED
    core.readers.complete_signup(check.signup)
    outbox = OutboxTransport(bounce_settings.outbox_dir)
    outbox.send(
        Envelope("digest@gazette.example", "other@example.com", "daily-x"),
        f"To: other@example.com\r\nCc: Frank <{IDN_STORED}>\r\nSubject: x\r\n\r\nhi\r\n".encode(),
    )
    outbox.send(
        Envelope("digest@gazette.example", EMAIL, "daily-x"),
        f"To: {EMAIL}\r\nSubject: x\r\n\r\n{IDN_STORED}\r\n".encode(),
    )
    theirs = outbox.recipient_files("frank@BÜCHER.de")
    assert len(theirs) == 2 and all(p.exists() for p in theirs)  # the notice and the Cc
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Throttle)) >= 1
        throttles_before = session.scalar(select(func.count()).select_from(Throttle))
    assert "xn--bcher-kva" in _everything(db) and "198.51.100.23" in _everything(db)

    result = CliRunner().invoke(
        forget_command,
        ["  FRANK@bücher.DE ", "--yes"],
        obj=App(None, core=Digest(bounce_settings, db=db)),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "forgotten" in result.output and "not reached: log lines" in result.output
    assert "cleared: 1 outbox file: deleted" not in result.output
    assert "cleared: 2 outbox files: deleted" in result.output
    assert "consent event" in result.output and "sign-up mail counter" in result.output
    everything = _everything(db)
    for personal in ("xn--bcher-kva", "bücher", "frank", "198.51.100.23"):
        assert personal not in everything, personal
    assert not any(p.exists() for p in theirs)
    assert outbox.recipient_files(EMAIL), "someone else's file was deleted"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Throttle)) == throttles_before - 1
        hashes = session.scalars(select(Suppression.email)).all()
    assert hashes == [address_hash(IDN_STORED)] == [address_hash("Frank@Bücher.de")]
