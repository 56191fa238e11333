"""Sign-up mail has a return path of its own (``bounces+n-TOKEN@``), so its bounces are read
like a digest's: a hard bounce of a confirmation suppresses the address, through the real
inbound SMTP server; a forged or altered notice token changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.errors import InputError
from digest.mail.verp import NoticeSigner, VerpSigner, notice_return_path, split_bounce_address
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Subscriber, SubscriberStatus, Suppression
from digest.transports import RecordingTransport
from tests.feedback.conftest import BOUNCE_DOMAIN, InboundServer, dsn, make_site
from tests.feedback.test_inbound import _snapshot

NEWCOMER = "newcomer@example.com"


def _signed_up(db: Database, settings: Settings) -> tuple[str, int]:
    """A visitor signs up through the core; returns the confirmation's envelope sender and the
    subscriber's id."""
    make_site(db, readers=1)
    recorder = RecordingTransport()
    core = Digest(settings, db=db, transport_factory=lambda: recorder)
    check = core.readers.check_signup(
        "daily", email=NEWCOMER, name="New", sections=[], ip="203.0.113.9"
    )
    assert check.signup is not None
    core.readers.complete_signup(check.signup)
    ((envelope, _),) = recorder.sent
    assert envelope.recipient == NEWCOMER
    with db.session() as session:
        sid = session.scalars(select(Subscriber.id).where(Subscriber.email == NEWCOMER)).one()
    return envelope.sender, sid


@pytest.mark.unit
def test_notice_tokens_name_a_subscriber_and_are_not_delivery_tokens(
    bounce_settings: Settings,
) -> None:
    """A notice token gives its subscriber id back (case folded too); an altered one, one made
    with another secret, and a delivery token are refused, and neither signer takes the
    other's tokens."""
    path = notice_return_path(bounce_settings, 77, "news@gazette.example")
    token = split_bounce_address(path, BOUNCE_DOMAIN)
    assert token and token.startswith("n-")
    signer = NoticeSigner(bounce_settings.secret)
    assert signer.verify(token) == signer.verify(token.upper()) == 77
    delivery_token = VerpSigner(bounce_settings.secret).sign(77)
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), "n-" + delivery_token, "n-"):
        with pytest.raises(InputError):
            signer.verify(bad)
    with pytest.raises(InputError):
        NoticeSigner("another-secret").verify(token)
    with pytest.raises(InputError):
        VerpSigner(bounce_settings.secret).verify(token)
    plain = bounce_settings.replace(bounce_domain=None)
    assert notice_return_path(plain, 77, "news@gazette.example") == "news@gazette.example"


def test_a_bounced_confirmation_suppresses_the_address(
    db: Database, bounce_settings: Settings, inbound_server: InboundServer
) -> None:
    """The confirmation goes out with MAIL FROM bounces+n-TOKEN@bounce domain; a DSN to that
    address over SMTP marks the subscriber bounced and suppresses the address."""
    sender, sid = _signed_up(db, bounce_settings)
    assert sender.startswith("bounces+n-") and sender.endswith("@" + BOUNCE_DOMAIN)
    inbound_server.send(sender, dsn(sender, NEWCOMER))
    with db.session() as session:
        subscriber = session.get(Subscriber, sid)
        assert subscriber is not None and subscriber.status == SubscriberStatus.BOUNCED
        reasons = session.scalars(select(Suppression.reason).where(Suppression.email == NEWCOMER))
        assert [r.partition(":")[0] for r in reasons] == ["bounced"]


def test_forged_notice_tokens_change_nothing(
    db: Database, bounce_settings: Settings, inbound_server: InboundServer
) -> None:
    """Reports to notice return paths with an altered token, one signed with another secret,
    or a well-formed token for another subscriber made without the key leave every row as
    it was."""
    sender, sid = _signed_up(db, bounce_settings)
    token = sender.partition("+")[2].partition("@")[0]
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    foreign = NoticeSigner("a-secret-the-attacker-chose").sign(sid)
    guessed = "n-" + VerpSigner(bounce_settings.secret).sign(sid)  # a delivery MAC reused
    before = _snapshot(db)
    for bad in (altered, foreign, guessed):
        address = f"bounces+{bad}@{BOUNCE_DOMAIN}"
        inbound_server.send(address, dsn(address, NEWCOMER))
    assert _snapshot(db) == before
