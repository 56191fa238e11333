"""What a forged report can do: nothing. Message-IDs carry a MAC; a report to the plain bounce
address, or a relay's notice, names a delivery only through a genuine one, so guessing the
sequential ids (500 guesses took 3 s and suppressed a chosen reader) changes nothing."""

from __future__ import annotations

import hmac

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.feedback.events import EventKind
from digest.feedback.inbound import Recipient, Verdict, handle_inbound
from digest.feedback.webhooks import Notice, match_delivery
from digest.mail.msgid import MessageIdSigner, signer_for
from digest.send.mailer import EditionMailer
from digest.store.db import Database
from digest.store.models import Subscriber, SubscriberStatus, Suppression
from tests.conftest import SmtpSink
from tests.feedback.conftest import BOUNCE_DOMAIN, InboundServer, arf, delivery_of, dsn
from tests.feedback.test_inbound import _sent_site
from tests.properties import snapshot

PLAIN = Recipient("bounce", "")
VICTIM = "reader1@example.com"


def test_message_ids_are_signed_stable_and_unique() -> None:
    """The same (edition, delivery) always gets the same Message-ID, different deliveries
    different ones; each carries an 80-bit HMAC-SHA256 that verifies (in any case) under its
    secret only, and any changed character, a missing MAC or another secret is refused."""
    signer = MessageIdSigner("site-secret-of-a-decent-length-0001")
    first = signer.message_id(7, 1234, "gazette.example")
    assert first == signer.message_id(7, 1234, "gazette.example")
    assert first == MessageIdSigner("site-secret-of-a-decent-length-0001").message_id(
        7, 1234, "gazette.example"
    )
    assert len({signer.message_id(7, d, "g.example") for d in range(1, 1001)}) == 1000
    mac = first.split("@")[0].rpartition(".")[2]
    assert len(mac) == 20  # hex: 4 bits a character, 80 in all
    assert signer.verify(f"<{first}>") == signer.verify(first.upper()) == (7, 1234)
    assert signer.verify(f"In-Reply-To: <{first}> (quoted)") == (7, 1234)
    for forged in (
        first.replace(".d1234.", ".d1235."),
        first.replace(".e7.", ".e8."),
        first.replace(mac, mac[:-1] + ("a" if mac[-1] != "a" else "b")),
        first.replace(mac, mac[:-1]),
        "digest.e7.d1234@gazette.example",
        "",
        "<>",
    ):
        assert signer.verify(forged) is None, forged
    assert MessageIdSigner("another-secret-of-a-decent-length-02").verify(first) is None
    key = hmac.new(b"site-secret-of-a-decent-length-0001", b"digest.message-id", "sha256")
    assert mac == hmac.new(key.digest(), b"7.1234", "sha256").hexdigest()[:20]


def test_sent_digests_carry_the_signed_message_id(
    db: Database, bounce_settings: Settings, smtp_server: SmtpSink
) -> None:
    """Each digest on the wire has the mailer's Message-ID for its ledger row, and it
    verifies to that row's edition and delivery."""
    settings = bounce_settings.replace(smtp_url=smtp_server.url)
    editions = _sent_site(db, settings, readers=2, days=1)
    mailer = EditionMailer(settings)
    for received in smtp_server.received:
        address = received.recipients[0]
        delivery = delivery_of(db, editions[0], address)
        quoted = str(received.message["Message-ID"]).strip("<>")
        assert quoted == mailer.message_id(editions[0], delivery, "gazette.example")
        assert signer_for(settings.secret).verify(quoted) == (editions[0], delivery)


def test_guessed_message_ids_change_nothing(
    db: Database, bounce_settings: Settings, inbound_server: InboundServer
) -> None:
    """The attack as reported: DSNs and ARF complaints to plain bounces@ quoting every
    unsigned id 1..250 of the edition (and of its neighbours), or the victim's own ids with a
    made-up MAC, each naming the victim, are all refused and change no table; a report
    quoting the genuine signed id then applies."""
    editions = _sent_site(db, bounce_settings, readers=3, days=1)
    edition = editions[0]
    victim_delivery = delivery_of(db, edition, VICTIM)
    before = snapshot(db)
    plain = f"bounces@{BOUNCE_DOMAIN}"
    guesses = [
        f"digest.e{e}.d{d}@gazette.example" for e in (edition, edition + 1) for d in range(1, 126)
    ]
    guesses += [
        f"digest.e{edition}.d{victim_delivery}.{mac}@gazette.example"
        for mac in ("a" * 20, "0" * 20, "0123456789abcdef0123", "a" * 16)
    ]
    for i, guess in enumerate(guesses):
        report = arf(plain, VICTIM, guess) if i % 2 else dsn(plain, VICTIM, message_id=guess)
        assert handle_inbound(db, bounce_settings, PLAIN, report) == Verdict.REFUSED
    for guess in guesses[:5]:  # and over SMTP, as the attacker sent them
        assert inbound_server.send(plain, arf(plain, VICTIM, guess)) == {}
    assert snapshot(db) == before

    genuine = signer_for(bounce_settings.secret).message_id(edition, victim_delivery, "x")
    assert handle_inbound(db, bounce_settings, PLAIN, arf(plain, VICTIM, genuine)) == (
        Verdict.APPLIED
    )
    with db.session() as session:
        assert session.scalars(select(Suppression.email)).all() == [VICTIM]


def test_a_signed_message_id_is_believed_when_the_recipient_is_redacted(
    db: Database, bounce_settings: Settings
) -> None:
    """Feedback loops often redact the reader's address: a complaint to plain bounces@ that
    names no usable address (or another one) but quotes a genuine signed Message-ID acts on
    that delivery's reader, and only on them."""
    editions = _sent_site(db, bounce_settings, readers=3, days=1)
    delivery = delivery_of(db, editions[0], VICTIM)
    genuine = signer_for(bounce_settings.secret).message_id(editions[0], delivery, "x")
    plain = f"bounces@{BOUNCE_DOMAIN}"
    report = arf(plain, "redacted", genuine)
    assert handle_inbound(db, bounce_settings, PLAIN, report) == Verdict.APPLIED
    with db.session() as session:
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses[VICTIM] == SubscriberStatus.UNSUBSCRIBED
    assert (
        statuses["reader0@example.com"]
        == statuses["reader2@example.com"]
        == (SubscriberStatus.ACTIVE)
    )


@pytest.mark.parametrize("signed", [False, True])
def test_relay_notices_name_a_delivery_only_by_a_signed_message_id(
    db: Database, bounce_settings: Settings, signed: bool
) -> None:
    """A relay's notice without a VERP return path is matched to the delivery its Message-ID
    names only when that id carries our MAC (and the delivery went to the address named);
    an unsigned id matches nothing."""
    editions = _sent_site(db, bounce_settings, readers=2, days=1)
    delivery = delivery_of(db, editions[0], VICTIM)
    quoted = (
        signer_for(bounce_settings.secret).message_id(editions[0], delivery, "gazette.example")
        if signed
        else f"digest.e{editions[0]}.d{delivery}@gazette.example"
    )
    with db.session() as session:
        named = match_delivery(
            session, bounce_settings, Notice(EventKind.HARD_BOUNCE, VICTIM, message_id=quoted)
        )
        other = match_delivery(
            session,
            bounce_settings,
            Notice(EventKind.HARD_BOUNCE, "reader0@example.com", message_id=quoted),
        )
    assert named == (delivery if signed else None)
    assert other is None
