"""Relay webhooks: an edition goes out over real SMTP, then SES (through SNS), Postmark,
SendGrid and Mailgun report bounces and complaints about it in their documented formats,
signed in the test with keys made in the test. Genuine reports change the ledger; unsigned,
forged, stale, replayed and malformed ones get a 4xx and change nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.audience import forget
from digest.config import Settings, load_settings, require_strong_secrets, weak_secret_reasons
from digest.errors import ConfigError
from digest.feedback.webhooks.common import WebhookRefused
from digest.feedback.webhooks.mailgun import TokenMemory, verify_mailgun
from digest.feedback.webhooks.ses import CertificateUnavailable, SnsVerifier, fetch_certificate
from digest.send.batch import EditionMailer, send_until_done
from digest.service import catalog
from digest.service.health import run_checks
from digest.store.db import Database
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    SoftBounce,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    Throttle,
)
from digest.transports import transport_for
from digest.web import context, create_app
from tests.conftest import SmtpSink
from tests.feedback.conftest import BOUNCE_DOMAIN, build_day, make_site

TOPIC = "arn:aws:sns:us-east-1:123456789012:gazette-ses-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
POSTMARK_USER = "postmark-hooks"
#: As `secrets.token_urlsafe(24)` makes them: a weak one would make the hook answer 503.
POSTMARK_PASSWORD = "EIl8V9u3zFcjocHIa-u7lTyDNy2fPOg3"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


# -- keys made in the test ---------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    cert_pem: bytes
    ecdsa_key: ec.EllipticCurvePrivateKey

    @property
    def sendgrid_public(self) -> str:
        """The verification key as SendGrid's console shows it: base64 of the DER key."""
        der = self.ecdsa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()


def _self_signed(key: rsa.RSAPrivateKey, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def keys() -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(rsa_key, _self_signed(rsa_key), ec.generate_private_key(ec.SECP256R1()))


class CertServer:
    """Serves the test certificate in place of AWS, and counts the fetches."""

    def __init__(self, certificates: dict[str, bytes]) -> None:
        self.certificates = certificates
        self.fetched: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.certificates:
            raise CertificateUnavailable("HTTP 404", transient=False)
        return self.certificates[url]


# -- the app, a sent edition, and the state of the database -----------------------------------


@pytest.fixture
def web_settings(settings: Settings, smtp_server: SmtpSink, keys: Keys) -> Settings:
    """Every webhook configured, VERP on, sending to the real SMTP server."""
    return settings.replace(
        smtp_url=smtp_server.url,
        bounce_domain=BOUNCE_DOMAIN,
        ses_topic_arns=f"arn:aws:sns:eu-west-1:123456789012:other, {TOPIC}",
        postmark_webhook_user=POSTMARK_USER,
        postmark_webhook_password=POSTMARK_PASSWORD,
        sendgrid_webhook_public_key=keys.sendgrid_public,
        mailgun_webhook_signing_key=MAILGUN_KEY,
    )


@pytest.fixture
def certs(app: Flask, keys: Keys) -> CertServer:
    server = CertServer({CERT_URL: keys.cert_pem})
    hook_state_of(app).sns.fetcher = server
    return server


@contextmanager
def another_app(settings: Settings) -> Iterator[Flask]:
    """An app of its own on the same database, its connections closed after."""
    flask_app = create_app(settings)
    try:
        yield flask_app
    finally:
        with flask_app.app_context():
            context().close()


def hook_state_of(app: Flask) -> Any:
    """The app's relays, whose SNS fetcher and confirm call a test replaces."""
    with app.app_context():
        return context().core.relays


@dataclass(frozen=True)
class Sent:
    """One reader's copy of the edition, as the SMTP server received it."""

    email: str
    delivery_id: int
    return_path: str
    message_id: str  # without angle brackets


@pytest.fixture
def sent(db: Database, web_settings: Settings, smtp_server: SmtpSink) -> dict[str, Sent]:
    """An edition of list 'daily' sent to reader0..3@example.com; reader0..3 are also on a
    second list 'weekly'."""
    make_site(db, readers=4)
    edition_id = build_day(db, web_settings, 0)
    with db.session() as session:
        weekly, _ = catalog.add_list(session, "weekly", "Weekly", ["national"])
        for i in range(4):
            catalog.subscribe(session, weekly, f"reader{i}@example.com")
    send_until_done(
        db, EditionMailer(web_settings), edition_id, lambda: transport_for(web_settings)
    )
    copies: dict[str, Sent] = {}
    with db.session() as session:
        for received in smtp_server.received:
            email = received.recipients[0]
            delivery_id = session.scalars(
                select(Delivery.id)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.edition_id == edition_id, Subscriber.email == email)
            ).one()
            message_id = str(received.message["Message-ID"]).strip("<>")
            copies[email] = Sent(email, delivery_id, received.sender, message_id)
    assert len(copies) == 4
    assert all(c.return_path.endswith("@" + BOUNCE_DOMAIN) for c in copies.values())
    return copies


def snapshot(db: Database) -> dict[str, Any]:
    """Everything a feedback event can change."""
    with db.session() as session:
        return {
            "subscribers": sorted(session.execute(select(Subscriber.email, Subscriber.status))),
            "subscriptions": sorted(
                session.execute(
                    select(Subscription.subscriber_id, Subscription.list_id, Subscription.status)
                )
            ),
            "deliveries": sorted(
                session.execute(select(Delivery.id, Delivery.status, Delivery.last_error))
            ),
            "suppressions": sorted(session.execute(select(Suppression.email))),
            "soft_bounces": sorted(session.execute(select(SoftBounce.subscriber_id))),
        }


@dataclass(frozen=True)
class Reader:
    status: SubscriberStatus
    delivery: DeliveryStatus
    suppressed: str | None
    subscriptions: list[SubscriptionStatus]


def reader(db: Database, copy: Sent) -> Reader:
    with db.session() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == copy.email)).one()
        return Reader(
            subscriber.status,
            session.get_one(Delivery, copy.delivery_id).status,
            session.scalar(select(Suppression.reason).where(Suppression.email == copy.email)),
            list(
                session.scalars(
                    select(Subscription.status).where(Subscription.subscriber_id == subscriber.id)
                )
            ),
        )


def assert_hard_bounced(db: Database, copy: Sent) -> None:
    got = reader(db, copy)
    assert got.delivery == DeliveryStatus.BOUNCED
    assert got.status == SubscriberStatus.BOUNCED
    assert got.suppressed is not None and got.suppressed.startswith("bounced")


def assert_complained(db: Database, copy: Sent) -> None:
    got = reader(db, copy)
    assert got.suppressed is not None and got.suppressed.startswith("complaint")
    assert got.subscriptions == [SubscriptionStatus.UNSUBSCRIBED] * 2
    assert got.status == SubscriberStatus.UNSUBSCRIBED
    assert got.delivery == DeliveryStatus.SENT


# -- Amazon SES through SNS ------------------------------------------------------------------


def ses_bounce(copy: Sent, bounce_type: str = "Permanent", *, verp: bool = True) -> dict[str, Any]:
    """An SES bounce notification, as SES publishes it to an SNS topic (headers included)."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": "0102018c1f2e3d4e-5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c-000000",
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": copy.email,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-24T07:00:04.000Z",
            "remoteMtaIp": "192.0.2.25",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-11-24T07:00:01.000Z",
            "source": copy.return_path if verp else "digest@gazette.example",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/gazette.example",
            "sourceIp": "198.51.100.7",
            "sendingAccountId": "123456789012",
            "messageId": "0100018c1f2e3d4e-aaaabbbb-cccc-dddd-eeee-ffff00001111-000000",
            "destination": [copy.email],
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "The Test Gazette <digest@gazette.example>"},
                {"name": "To", "value": copy.email},
                {"name": "Subject", "value": "The Test Gazette"},
                {"name": "Message-ID", "value": f"<{copy.message_id}>"},
            ],
            "commonHeaders": {
                "from": ["The Test Gazette <digest@gazette.example>"],
                "to": [copy.email],
                "messageId": f"<{copy.message_id}>",
                "subject": "The Test Gazette",
            },
        },
    }


def ses_complaint(copy: Sent) -> dict[str, Any]:
    """An SES complaint notification (a feedback loop's report) without headers: only
    commonHeaders carries the Message-ID, and the source is the plain From address."""
    return {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": "0102018c1f2e3d4e-1111-2222-3333-444455556666-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": copy.email}],
            "timestamp": "2026-11-24T09:12:00.000Z",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-11-24T07:00:05.000Z",
        },
        "mail": {
            "timestamp": "2026-11-24T07:00:01.000Z",
            "source": "digest@gazette.example",
            "messageId": "0100018c1f2e3d4e-aaaabbbb-cccc-dddd-eeee-ffff00002222-000000",
            "destination": [copy.email],
            "commonHeaders": {"messageId": f"<{copy.message_id}>"},
        },
    }


def sns_envelope(
    message: str | dict[str, Any],
    key: rsa.RSAPrivateKey,
    *,
    kind: str = "Notification",
    version: str = "1",
    topic: str = TOPIC,
    cert_url: str = CERT_URL,
    subject: str | None = "Amazon SES Email Event Notification",
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """An SNS HTTP(S) delivery, signed as SNS documents: the covered fields' names and values,
    each followed by a newline, in byte order of the names."""
    body: dict[str, Any] = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    if kind == "Notification":
        covered = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        if subject is not None:
            body["Subject"] = subject
        body["UnsubscribeURL"] = (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
        )
    else:
        covered = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        body["Token"] = "2336412f37fb687f5d51e6e241d7700ae02f7124d8268910b858cb4db727ceeb2474bb"
        body["SubscribeURL"] = (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
            f"{topic}&Token={body['Token']}"
        )
    text = "".join(f"{name}\n{body[name]}\n" for name in covered if name in body)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    body["Signature"] = base64.b64encode(signature).decode()
    return body


def post_sns(client: FlaskClient, body: dict[str, Any] | bytes) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/hooks/ses",
        data=data,
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-topic-arn": TOPIC,
        },
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce_marks_the_delivery_bounced_and_suppresses(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer,
    version: str,
) -> None:  # fmt: skip
    """An SNS-signed (SHA1withRSA and SHA256withRSA) SES Permanent bounce names its delivery by
    our VERP return path: the delivery is bounced, the address suppressed, nobody else
    touched; the certificate is fetched once and kept."""
    copy = sent["reader1@example.com"]
    others = snapshot(db)["deliveries"]
    response = post_sns(client, sns_envelope(ses_bounce(copy), keys.rsa_key, version=version))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"applied": 1, "already": 0, "ignored": 0}
    assert_hard_bounced(db, copy)
    changed = [row for row in snapshot(db)["deliveries"] if row not in others]
    assert [row[0] for row in changed] == [copy.delivery_id]

    again = post_sns(client, sns_envelope(ses_bounce(copy), keys.rsa_key, version=version))
    assert again.get_json() == {"applied": 0, "already": 1, "ignored": 0}
    assert certs.fetched == [CERT_URL]


def test_ses_complaint_matched_by_message_id_unsubscribes_everywhere(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer
) -> None:
    """An SES complaint with no VERP return path, matched by our Message-ID, unsubscribes the
    reader from every list and suppresses the address."""
    copy = sent["reader2@example.com"]
    response = post_sns(client, sns_envelope(ses_complaint(copy), keys.rsa_key, subject=None))
    assert response.status_code == 200, response.get_json()
    assert_complained(db, copy)
    assert (
        reader(db, sent["reader3@example.com"]).subscriptions == [SubscriptionStatus.CONFIRMED] * 2
    )


def test_ses_transient_bounce_counts_a_soft_bounce(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer
) -> None:
    """A Transient SES bounce is a soft bounce: counted for the edition, not suppressed."""
    copy = sent["reader0@example.com"]
    response = post_sns(client, sns_envelope(ses_bounce(copy, "Transient"), keys.rsa_key))
    assert response.status_code == 200
    got = reader(db, copy)
    assert got.suppressed is None and got.delivery == DeliveryStatus.SENT
    assert len(snapshot(db)["soft_bounces"]) == 1


def test_sns_retry_within_the_hour_and_other_notifications_are_accepted(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer
) -> None:
    """An SNS retry of a message published 59 minutes ago is applied; a signed Notification
    that is not an SES event (SES's topic validation text) gets 200 and changes nothing."""
    before = snapshot(db)
    text = "Successfully validated SNS topic for Amazon SES event publishing."
    response = post_sns(client, sns_envelope(text, keys.rsa_key, subject=None))
    assert response.get_json() == {"applied": 0, "already": 0, "ignored": 0}
    assert snapshot(db) == before
    late = sns_envelope(
        ses_bounce(sent["reader1@example.com"]), keys.rsa_key, at=_now() - dt.timedelta(minutes=59)
    )
    assert post_sns(client, late).status_code == 200
    assert_hard_bounced(db, sent["reader1@example.com"])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _forged_sns(keys: Keys, copy: Sent) -> dict[str, tuple[int, bytes]]:
    """Each way an SNS call can be wrong, with the status it must get."""
    good = sns_envelope(ses_bounce(copy), keys.rsa_key)
    tampered = dict(good, Message=json.dumps(ses_bounce(copy)).replace("Permanent", "Permanent "))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    cases: dict[str, tuple[int, dict[str, Any] | bytes]] = {
        "unsigned": (401, unsigned),
        "body altered after signing": (403, tampered),
        "signed with another key": (403, sns_envelope(ses_bounce(copy), other_key)),
        "topic not configured": (
            403,
            sns_envelope(ses_bounce(copy), keys.rsa_key, topic=TOPIC + "-other"),
        ),
        "unknown certificate on an SNS host": (
            403,
            sns_envelope(
                ses_bounce(copy),
                keys.rsa_key,
                cert_url="https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            ),
        ),
        "unknown signature version": (400, dict(good, SignatureVersion="3")),
        "signed over three hours ago": (
            403,
            sns_envelope(
                ses_bounce(copy), keys.rsa_key, at=_now() - dt.timedelta(hours=3, minutes=1)
            ),
        ),
        "dated an hour ahead": (
            403,
            sns_envelope(ses_bounce(copy), keys.rsa_key, at=_now() + dt.timedelta(hours=1)),
        ),
        "signature not base64": (403, dict(good, Signature="!!not base64!!")),
        "not JSON": (400, b"Type=Notification&Message=hi"),
        "a JSON list": (400, b"[]"),
    }
    for host in (
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/cert.pem\n",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sqs.us-east-1.amazonaws.com/cert.pem",
        "https://sns.evil.amazonaws.com/cert.pem",
    ):
        cases[f"certificate at {host!r}"] = (
            403,
            sns_envelope(ses_bounce(copy), keys.rsa_key, cert_url=host),
        )
    return {
        name: (status, body if isinstance(body, bytes) else json.dumps(body).encode())
        for name, (status, body) in cases.items()
    }


def test_forged_sns_calls_change_nothing(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer
) -> None:
    """Unsigned, altered, wrongly keyed, foreign-topic and foreign-certificate SNS calls get a
    4xx and change nothing; no certificate is fetched from anywhere but an SNS host."""
    before = snapshot(db)
    for name, (status, body) in _forged_sns(keys, sent["reader1@example.com"]).items():
        response = post_sns(client, body)
        assert response.status_code == status, name
        assert "error" in response.get_json(), name
    assert snapshot(db) == before
    assert all(url.startswith("https://sns.us-east-1.amazonaws.com/") for url in certs.fetched)


def test_sns_subscription_confirmation_is_logged_not_visited(
    app: Flask,
    client: FlaskClient,
    keys: Keys,
    certs: CertServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A signed SubscriptionConfirmation is answered 200 and its SubscribeURL logged for the
    operator, not visited; with DIGEST_SES_AUTO_CONFIRM=1 it is visited."""
    visited: list[str] = []
    hook_state_of(app).confirm = lambda url: visited.append(url) or True
    body = sns_envelope(
        "You have chosen to subscribe...", keys.rsa_key, kind="SubscriptionConfirmation"
    )
    with caplog.at_level(logging.WARNING, logger="digest.web.webhooks"):
        response = post_sns(client, body)
    assert response.status_code == 200
    assert response.get_json() == {"subscription": "pending"}
    assert visited == []
    assert body["SubscribeURL"] in caplog.text

    with another_app(app.extensions["digest"].settings.replace(ses_auto_confirm=1)) as auto:
        hook_state_of(auto).sns.fetcher = certs
        hook_state_of(auto).confirm = lambda url: visited.append(url) or True
        response = post_sns(auto.test_client(), body)
    assert response.get_json() == {"subscription": "confirmed"}
    assert visited == [body["SubscribeURL"]]


def test_sns_verifier_refuses_an_expired_certificate(keys: Keys) -> None:
    """A certificate past its validity is refused even when the signature matches it."""
    verifier = SnsVerifier(CertServer({CERT_URL: keys.cert_pem}))
    body = json.dumps(sns_envelope(ses_bounce(_nobody()), keys.rsa_key)).encode()
    assert verifier.verify(body, [TOPIC]).topic_arn == TOPIC
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(WebhookRefused) as refused:
        SnsVerifier(CertServer({CERT_URL: keys.cert_pem})).verify(body, [TOPIC], now=later)
    assert refused.value.status == 403


class _CertHandler(BaseHTTPRequestHandler):
    pem = b""

    def do_GET(self) -> None:
        if self.path == "/moved.pem":
            self.send_response(302)
            self.send_header("Location", "/cert.pem")
            self.end_headers()
            return
        status, body = {
            "/cert.pem": (200, self.pem),
            "/huge.pem": (200, b"A" * 100_000),
            "/broken.pem": (503, b"busy"),
        }.get(self.path, (404, b"no such key"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_fetch_certificate_over_http_says_what_is_worth_retrying(keys: Keys) -> None:
    """The certificate fetch returns the PEM on 200; a missing one, a redirect or an oversized
    body is final (403), a 5xx or an unreachable host is worth retrying (503 to SNS)."""
    _CertHandler.pem = keys.cert_pem
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CertHandler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert fetch_certificate(base + "/cert.pem") == keys.cert_pem
        outcomes = {}
        for path in ("/missing.pem", "/moved.pem", "/huge.pem", "/broken.pem"):
            with pytest.raises(CertificateUnavailable) as failed:
                fetch_certificate(base + path)
            outcomes[path] = failed.value.transient
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert outcomes == {
        "/missing.pem": False,
        "/moved.pem": False,
        "/huge.pem": False,
        "/broken.pem": True,
    }
    with pytest.raises(CertificateUnavailable) as unreachable:
        fetch_certificate(base + "/cert.pem")  # the server is gone
    assert unreachable.value.transient


def test_sns_answers_503_when_the_certificate_cannot_be_fetched_now(
    app: Flask, client: FlaskClient, keys: Keys, sent: dict[str, Sent], db: Database
) -> None:
    """A genuine SNS call whose certificate AWS cannot serve just now gets 503 (SNS retries
    it) and changes nothing; the failure is not cached, so the retry succeeds."""
    calls: list[str] = []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if len(calls) == 1:
            raise CertificateUnavailable("ConnectTimeout", transient=True)
        return keys.cert_pem

    hook_state_of(app).sns.fetcher = flaky
    before = snapshot(db)
    body = sns_envelope(ses_bounce(sent["reader1@example.com"]), keys.rsa_key)
    assert post_sns(client, body).status_code == 503
    assert snapshot(db) == before
    assert post_sns(client, body).status_code == 200
    assert_hard_bounced(db, sent["reader1@example.com"])


def _nobody() -> Sent:
    return Sent("nobody@example.net", 1, "digest@gazette.example", "digest.e1.d1@gazette.example")


# -- Postmark --------------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(copy: Sent, kind: str = "HardBounce") -> dict[str, Any]:
    """A Postmark Bounce webhook record, with the bounce's full text (Content) kept."""
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce",
        "Tag": "daily",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": copy.email,
        "From": "digest@gazette.example",
        "BouncedAt": "2026-11-24T07:00:04.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "The Test Gazette",
        "Content": (
            "Return-Path: <>\r\nReceived: from mx.example.com\r\n"
            "Content-Type: multipart/report; report-type=delivery-status\r\n\r\n"
            "Final-Recipient: rfc822; " + copy.email + "\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "\r\nMessage-ID: <" + copy.message_id + ">\r\nSubject: The Test Gazette\r\n"
        ),
    }


def postmark_complaint(copy: Sent) -> dict[str, Any]:
    """A Postmark SpamComplaint webhook record."""
    return {
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 100001,
        "Name": "Spam complaint",
        "Tag": "daily",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Metadata": {},
        "ServerID": 1234,
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": copy.email,
        "From": "digest@gazette.example",
        "BouncedAt": "2026-11-24T09:12:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "The Test Gazette",
        "Content": "<Abuse report dump>",
    }


def test_postmark_hard_bounce_and_complaint(
    client: FlaskClient, db: Database, sent: dict[str, Sent]
) -> None:
    """With the Basic credentials of the webhook URL, a Postmark HardBounce whose dump quotes
    our Message-ID bounces that delivery; a SpamComplaint unsubscribes everywhere."""
    bounced, complained = sent["reader1@example.com"], sent["reader2@example.com"]
    auth = basic(POSTMARK_USER, POSTMARK_PASSWORD)
    response = client.post("/hooks/postmark", json=postmark_bounce(bounced), headers=auth)
    assert response.status_code == 200, response.get_json()
    assert_hard_bounced(db, bounced)
    response = client.post("/hooks/postmark", json=postmark_complaint(complained), headers=auth)
    assert response.get_json() == {"applied": 1, "already": 0, "ignored": 0}
    assert_complained(db, complained)


def test_postmark_without_the_right_credentials_changes_nothing(
    client: FlaskClient, db: Database, sent: dict[str, Sent]
) -> None:
    """No, wrong or malformed Basic credentials get 401 with a Basic challenge; nothing
    changes."""
    before = snapshot(db)
    body = postmark_bounce(sent["reader1@example.com"])
    for headers in (
        {},
        basic(POSTMARK_USER, "wrong"),
        basic("someone", POSTMARK_PASSWORD),
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Bearer {POSTMARK_PASSWORD}"},
    ):
        response = client.post("/hooks/postmark", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert snapshot(db) == before


# -- SendGrid --------------------------------------------------------------------------------


def sendgrid_events(copy: Sent, event: str = "bounce", **extra: Any) -> list[dict[str, Any]]:
    """A SendGrid event batch: a delivered event (changes nothing) and the one under test."""
    base = {
        "email": copy.email,
        "timestamp": int(time.time()),
        "smtp-id": f"<{copy.message_id}>",
        "category": ["daily"],
        "sg_event_id": "sg_event_id_" + uuid.uuid4().hex,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    }
    reasons = {
        "bounce": {"reason": "550 5.1.1 The email account does not exist", "status": "5.1.1",
                   "type": "bounce", "bounce_classification": "Invalid Address"},
        "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
        "spamreport": {},
    }  # fmt: skip
    return [
        dict(base, event="delivered", response="250 OK", sg_event_id="d" + base["sg_event_id"]),
        {**base, "event": event, **reasons.get(event, {}), **extra},
    ]


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def post_sendgrid(client: FlaskClient, key: ec.EllipticCurvePrivateKey, events: Any) -> Any:
    body = json.dumps(events).encode()
    return client.post("/hooks/sendgrid", data=body, headers=sendgrid_headers(key, body))


def test_sendgrid_bounce_dropped_and_spamreport(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys
) -> None:
    """Signed SendGrid events: a bounce (smtp-id: our Message-ID) bounces that delivery, a
    drop for a bounced address suppresses, a spamreport unsubscribes everywhere, and the
    delivered events beside them change nothing."""
    response = post_sendgrid(client, keys.ecdsa_key, sendgrid_events(sent["reader1@example.com"]))
    assert response.get_json() == {"applied": 1, "already": 0, "ignored": 0}
    assert_hard_bounced(db, sent["reader1@example.com"])
    dropped = sendgrid_events(sent["reader3@example.com"], "dropped")
    assert post_sendgrid(client, keys.ecdsa_key, dropped).status_code == 200
    assert_hard_bounced(db, sent["reader3@example.com"])
    spam = sendgrid_events(sent["reader2@example.com"], "spamreport")
    assert post_sendgrid(client, keys.ecdsa_key, spam).status_code == 200
    assert_complained(db, sent["reader2@example.com"])


def test_sendgrid_blocked_is_soft(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys
) -> None:
    """A SendGrid bounce of type "blocked" is a soft bounce: nothing suppressed."""
    copy = sent["reader0@example.com"]
    events = sendgrid_events(copy, type="blocked", status="4.7.1", reason="421 try later")
    assert post_sendgrid(client, keys.ecdsa_key, events).status_code == 200
    assert reader(db, copy).suppressed is None
    assert len(snapshot(db)["soft_bounces"]) == 1


def test_forged_or_stale_sendgrid_calls_change_nothing(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys
) -> None:
    """Unsigned, wrongly keyed, altered, stale (over 5 minutes) and future-dated SendGrid calls
    get a 4xx and change nothing."""
    before = snapshot(db)
    body = json.dumps(sendgrid_events(sent["reader1@example.com"])).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    good = sendgrid_headers(keys.ecdsa_key, body)
    cases: dict[str, tuple[int, bytes, dict[str, str]]] = {
        "unsigned": (401, body, {"Content-Type": "application/json"}),
        "another key": (403, body, sendgrid_headers(other, body)),
        "body altered": (403, body.replace(b"5.1.1", b"5.1.2"), good),
        "timestamp altered": (
            403,
            body,
            dict(good, **{"X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()) - 1)}),
        ),
        "stale": (403, body, sendgrid_headers(keys.ecdsa_key, body, int(time.time()) - 301)),
        "future": (403, body, sendgrid_headers(keys.ecdsa_key, body, int(time.time()) + 3600)),
        "timestamp not a number": (
            400,
            body,
            dict(good, **{"X-Twilio-Email-Event-Webhook-Timestamp": "yesterday"}),
        ),
        "signature not base64": (
            403,
            body,
            dict(good, **{"X-Twilio-Email-Event-Webhook-Signature": "***"}),
        ),
    }
    for name, (status, data, headers) in cases.items():
        response = client.post("/hooks/sendgrid", data=data, headers=headers)
        assert response.status_code == status, name
    signed_object = json.dumps({"event": "bounce"}).encode()
    response = client.post(
        "/hooks/sendgrid",
        data=signed_object,
        headers=sendgrid_headers(keys.ecdsa_key, signed_object),
    )
    assert response.status_code == 400
    assert snapshot(db) == before


# -- Mailgun ---------------------------------------------------------------------------------


def mailgun_call(
    copy: Sent,
    event: str = "failed",
    severity: str = "permanent",
    *,
    key: str = MAILGUN_KEY,
    timestamp: int | None = None,
    verp: bool = True,
) -> dict[str, Any]:
    """A Mailgun webhook call (JSON), signed with the HTTP webhook signing key."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    data: dict[str, Any] = {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": float(stamp) + 0.908181,
        "log-level": "error" if event == "failed" else "warn",
        "recipient": copy.email,
        "recipient-domain": "example.com",
        "tags": ["daily"],
        "envelope": {
            "transport": "smtp",
            "sender": copy.return_path if verp else "digest@gazette.example",
            "sending-ip": "209.61.154.250",
            "targets": copy.email,
        },
        "message": {
            "headers": {
                "to": copy.email,
                "message-id": copy.message_id,
                "from": "The Test Gazette <digest@gazette.example>",
                "subject": "The Test Gazette",
            },
            "attachments": [],
            "size": 39102,
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "user-variables": {},
    }
    if event == "failed":
        data["severity"] = severity
        data["reason"] = "bounce" if severity == "permanent" else "generic"
        data["delivery-status"] = {
            "attempt-no": 1,
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": "",
            "session-seconds": 0.43,
        }
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": data,
    }


def test_mailgun_failed_and_complained(
    client: FlaskClient, db: Database, sent: dict[str, Sent]
) -> None:
    """A signed Mailgun permanent failure (envelope sender: our VERP address) bounces that
    delivery; a temporary one is a soft bounce; a complaint unsubscribes everywhere."""
    response = client.post("/hooks/mailgun", json=mailgun_call(sent["reader1@example.com"]))
    assert response.get_json() == {"applied": 1, "already": 0, "ignored": 0}
    assert_hard_bounced(db, sent["reader1@example.com"])
    temporary = mailgun_call(sent["reader0@example.com"], severity="temporary")
    assert client.post("/hooks/mailgun", json=temporary).status_code == 200
    assert reader(db, sent["reader0@example.com"]).suppressed is None
    assert len(snapshot(db)["soft_bounces"]) == 1
    complaint = mailgun_call(sent["reader2@example.com"], "complained", verp=False)
    assert client.post("/hooks/mailgun", json=complaint).status_code == 200
    assert_complained(db, sent["reader2@example.com"])


def test_forged_stale_or_replayed_mailgun_calls_change_nothing(
    client: FlaskClient, db: Database, sent: dict[str, Sent]
) -> None:
    """A Mailgun call signed with another key, stale, with its token changed, unsigned or
    malformed gets a 4xx and changes nothing; a genuine call replayed is refused."""
    copy = sent["reader1@example.com"]
    before = snapshot(db)
    genuine = mailgun_call(copy)
    altered = json.loads(json.dumps(genuine))
    altered["signature"]["token"] = "x" + altered["signature"]["token"][1:]
    cases: dict[str, tuple[int, Any]] = {
        "another key": (403, mailgun_call(copy, key="key-not-ours")),
        "stale": (403, mailgun_call(copy, timestamp=int(time.time()) - 301)),
        "token altered": (403, altered),
        "unsigned": (401, {"event-data": genuine["event-data"]}),
        "timestamp not a number": (
            400,
            {**genuine, "signature": {**genuine["signature"], "timestamp": "soon"}},
        ),
        "a list": (400, [genuine]),
    }
    for name, (status, body) in cases.items():
        assert client.post("/hooks/mailgun", json=body).status_code == status, name
    assert (
        client.post(
            "/hooks/mailgun", data=b"\xff\xfe{", content_type="application/json"
        ).status_code
        == 400
    )
    assert snapshot(db) == before

    assert client.post("/hooks/mailgun", json=genuine).status_code == 200
    after = snapshot(db)
    assert client.post("/hooks/mailgun", json=genuine).status_code == 403
    assert snapshot(db) == after


def test_token_memory_forgets_expired_tokens_and_released_ones() -> None:
    """A Mailgun token is refused again only within its window, and a released token (its call
    was not recorded) is accepted on the retry."""
    memory = TokenMemory()
    now = time.time()

    def call(token: str, at: float) -> bytes:
        stamp = str(int(at))
        sig = hmac.new(b"k", (stamp + token).encode(), hashlib.sha256).hexdigest()
        return json.dumps(
            {"signature": {"timestamp": stamp, "token": token, "signature": sig}}
        ).encode()

    body = call("tok", now)
    assert verify_mailgun("k", body, memory, max_age=300, now=now)[0] == "tok"
    with pytest.raises(WebhookRefused):
        verify_mailgun("k", body, memory, max_age=300, now=now + 10)
    memory.release("tok")
    assert verify_mailgun("k", body, memory, max_age=300, now=now + 20)[0] == "tok"
    assert memory.claim("tok", now + 300, now + 301)  # expired: a fresh claim


# -- matching, configuration, and the rest --------------------------------------------------


def test_report_naming_someone_else_s_delivery_is_about_the_address_only(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys
) -> None:
    """A bounce whose Message-ID names another reader's delivery, and one with neither VERP nor
    Message-ID, suppress only the address the relay names: no delivery changes."""
    deliveries = snapshot(db)["deliveries"]
    victim, named = sent["reader0@example.com"], sent["reader3@example.com"]
    events = sendgrid_events(named)
    events[1]["smtp-id"] = f"<{victim.message_id}>"
    assert post_sendgrid(client, keys.ecdsa_key, events).status_code == 200
    bare = mailgun_call(sent["reader2@example.com"], verp=False)
    bare["event-data"]["message"]["headers"]["message-id"] = "20261124.1@mailgun.example"
    assert client.post("/hooks/mailgun", json=bare).status_code == 200
    assert snapshot(db)["deliveries"] == deliveries
    for copy in (named, sent["reader2@example.com"]):
        got = reader(db, copy)
        assert got.status == SubscriberStatus.BOUNCED and got.suppressed is not None
    assert reader(db, victim).suppressed is None


def test_a_forgotten_address_is_not_written_down_again(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys
) -> None:
    """After `subscribers forget`, a relay's bounce or complaint about the address (even naming
    its old delivery) is ignored: the address appears nowhere in the database again."""
    copy = sent["reader0@example.com"]
    with db.session() as session:
        assert forget(session, copy.email).found
    before = snapshot(db)
    assert post_sendgrid(client, keys.ecdsa_key, sendgrid_events(copy)).get_json() == {
        "applied": 0, "already": 0, "ignored": 1,
    }  # fmt: skip
    complaint = mailgun_call(copy, "complained")
    assert client.post("/hooks/mailgun", json=complaint).get_json()["ignored"] == 1
    assert snapshot(db) == before
    assert copy.email not in str(before)


def test_unconfigured_webhooks_answer_404(
    db: Database, settings: Settings, sent: dict[str, Sent], keys: Keys
) -> None:
    """Without its secret, each endpoint answers 404, even to a correctly signed call."""
    with another_app(settings.replace(bounce_domain=BOUNCE_DOMAIN)) as bare:
        hook_state_of(bare).sns.fetcher = CertServer({CERT_URL: keys.cert_pem})
        client = bare.test_client()
        copy = sent["reader1@example.com"]
        before = snapshot(db)
        assert post_sns(client, sns_envelope(ses_bounce(copy), keys.rsa_key)).status_code == 404
        auth = basic(POSTMARK_USER, POSTMARK_PASSWORD)
        assert (
            client.post("/hooks/postmark", json=postmark_bounce(copy), headers=auth).status_code
            == 404
        )
        assert post_sendgrid(client, keys.ecdsa_key, sendgrid_events(copy)).status_code == 404
        assert client.post("/hooks/mailgun", json=mailgun_call(copy)).status_code == 404
    assert snapshot(db) == before


def test_webhooks_set_no_cookie_and_take_only_post(
    client: FlaskClient, sent: dict[str, Sent]
) -> None:
    """The hooks are machine calls: no session cookie is set, no CSRF token asked, and GET is
    not allowed."""
    response = client.post("/hooks/mailgun", json=mailgun_call(sent["reader1@example.com"]))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    for path in ("/hooks/ses", "/hooks/postmark", "/hooks/sendgrid", "/hooks/mailgun"):
        assert client.get(path).status_code == 405


def test_lone_surrogates_in_json_get_no_500(
    client: FlaskClient, db: Database, sent: dict[str, Sent], keys: Keys, certs: CertServer
) -> None:
    """JSON may spell lone surrogates (\\ud800) that UTF-8 cannot hold: in an unsigned SNS or
    Mailgun call they get a 4xx, in a signed SendGrid or Mailgun event's address the event
    is ignored, and nothing is stored."""
    before = snapshot(db)
    sns = json.dumps(sns_envelope(ses_bounce(sent["reader1@example.com"]), keys.rsa_key))
    sns = sns.replace("Amazon SES Email Event Notification", "\\ud800")
    assert post_sns(client, sns.encode()).status_code == 403
    call = json.dumps(mailgun_call(sent["reader1@example.com"]))
    token = json.loads(call)["signature"]["token"]
    assert client.post("/hooks/mailgun", data=call.replace(token, "\\ud800" + token[6:]),
                       content_type="application/json").status_code == 400  # fmt: skip

    events = json.dumps(sendgrid_events(sent["reader1@example.com"]))
    body = events.replace("reader1@example.com", "\\udc80@example.com").encode()
    response = client.post(
        "/hooks/sendgrid", data=body, headers=sendgrid_headers(keys.ecdsa_key, body)
    )
    assert response.get_json() == {"applied": 0, "already": 0, "ignored": 1}
    odd = mailgun_call(sent["reader1@example.com"])
    odd["event-data"]["recipient"] = "\ud800@example.com"
    response = client.post(
        "/hooks/mailgun", data=json.dumps(odd).encode(), content_type="application/json"
    )
    assert response.get_json() == {"applied": 0, "already": 0, "ignored": 1}
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIGEST_SES_TOPIC_ARNS", "gazette-ses-feedback"),
        ("DIGEST_SES_TOPIC_ARNS", f"{TOPIC},https://sns.us-east-1.amazonaws.com/"),
        ("DIGEST_SES_AUTO_CONFIRM", "yes"),
        ("DIGEST_SES_AUTO_CONFIRM", "2"),
        ("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY", "not a key"),
        ("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(b"0" * 91).decode()),
        ("DIGEST_WEBHOOK_MAX_AGE_SECONDS", "0"),
    ],
)
def test_bad_webhook_settings_are_refused_at_start(name: str, value: str) -> None:
    """A malformed topic ARN, SendGrid key or switch is a ConfigError when settings load, not
    a failure at the first report."""
    with pytest.raises(ConfigError, match=name):
        load_settings(None, {name: value, "DIGEST_SECRET_KEY": "k"})


def test_webhook_settings_load_from_the_environment(keys: Keys) -> None:
    """The webhook settings are read from DIGEST_* variables; an RSA key is refused as the
    SendGrid key."""
    loaded = load_settings(
        None,
        {
            "DIGEST_SECRET_KEY": "k",
            "DIGEST_SES_TOPIC_ARNS": f"{TOPIC}, arn:aws-cn:sns:cn-north-1:123456789012:b.fifo",
            "DIGEST_SES_AUTO_CONFIRM": "1",
            "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY": keys.sendgrid_public,
        },
    )
    assert loaded.ses_auto_confirm == 1
    assert loaded.sendgrid_webhook_public_key == keys.sendgrid_public
    rsa_der = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigError, match="ECDSA"):
        load_settings(
            None,
            {
                "DIGEST_SECRET_KEY": "k",
                "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(rsa_der).decode(),
            },
        )


# -- no input makes a 500 --------------------------------------------------------------------

#: Any code point, lone surrogates too: JSON can spell them (\\ud800) and UTF-8 cannot hold them.
_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=20,
)
_FIELD = st.one_of(
    _JSON,
    st.sampled_from(
        ["reader1@example.com", "Permanent", "bounce", "failed", "complained", "HardBounce",
         "SpamComplaint", "Bounce", "Complaint", "Notification", "permanent", TOPIC, CERT_URL]
    ),
)  # fmt: skip
_VENDORISH = st.dictionaries(
    st.sampled_from(
        ["Type", "Message", "TopicArn", "Signature", "SigningCertURL", "SignatureVersion",
         "RecordType", "Email", "Content", "event", "email", "type", "smtp-id", "reason",
         "signature", "event-data", "MessageId", "Timestamp", "SubscribeURL", "Token"]
    ),
    _FIELD,
    max_size=10,
)  # fmt: skip
_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v).encode()),
    _VENDORISH.map(lambda v: json.dumps(v).encode()),
    st.lists(_VENDORISH, max_size=3).map(lambda v: json.dumps(v).encode()),
)
_HEADER_VALUE = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60
)
_HEADERS = st.dictionaries(
    st.sampled_from(
        ["Authorization", "X-Twilio-Email-Event-Webhook-Signature",
         "X-Twilio-Email-Event-Webhook-Timestamp", "Content-Type", "x-amz-sns-message-type"]
    ),
    _HEADER_VALUE,
    max_size=4,
)  # fmt: skip
_FUZZ = hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fuzz_client(
    db: Database, web_settings: Settings, sent: dict[str, Sent], keys: Keys
) -> Iterator[tuple[FlaskClient, Callable[[], dict[str, Any]]]]:
    """A client no lockout ever stops, so every example reaches the verification code."""
    unlimited = web_settings.replace(
        webhook_failures_per_ip=1_000_000, webhook_failures_overall=1_000_000
    )
    with another_app(unlimited) as fuzz_app:
        hook_state_of(fuzz_app).sns.fetcher = CertServer({CERT_URL: keys.cert_pem})
        yield fuzz_app.test_client(), lambda: snapshot(db)


@_FUZZ
@given(
    path=st.sampled_from(["/hooks/ses", "/hooks/postmark", "/hooks/sendgrid", "/hooks/mailgun"]),
    body=_BODIES,
    headers=_HEADERS,
)
def test_no_unsigned_input_makes_a_500_or_a_change(
    fuzz_client: tuple[FlaskClient, Callable[[], dict[str, Any]]],
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    """Arbitrary bodies and headers on every hook get a 4xx (never a 500, never a 200) and
    leave the database as it was."""
    client, state = fuzz_client
    before = state()
    response = client.post(path, data=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.status_code != 404  # configured: the hook answered, not the router
    assert state() == before


@_FUZZ
@given(body=_BODIES)
def test_no_signed_input_makes_a_500(
    fuzz_client: tuple[FlaskClient, Callable[[], dict[str, Any]]], keys: Keys, body: bytes
) -> None:
    """Whatever a correctly signed SendGrid or Mailgun call carries, or a correctly signed SNS
    message's Message holds, the signature is accepted and the answer is 200 or 400."""
    client, _ = fuzz_client
    sendgrid = client.post(
        "/hooks/sendgrid", data=body, headers=sendgrid_headers(keys.ecdsa_key, body)
    )
    assert sendgrid.status_code in (200, 400)
    try:
        inner = json.loads(body)
    except ValueError:
        inner = None
    if isinstance(inner, dict):
        stamp, token = str(int(time.time())), uuid.uuid4().hex
        sig = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        signed = {"timestamp": stamp, "token": token, "signature": sig}
        call = {**inner, "signature": signed}
        assert client.post("/hooks/mailgun", json=call).status_code in (200, 400)
    message = body.decode("utf-8", "replace")
    assert post_sns(client, sns_envelope(message, keys.rsa_key)).status_code in (200, 400)


# -- weak secrets and guessing (issue 17) ------------------------------------------------------

#: A strong secret key for settings that must pass every check but the one under test.
STRONG_OTHER_SECRET = "Zx4-Qe8mTb1Kp7Ws0Lr3Vn6Hy9Dj2Gc5"


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("postmark_webhook_password", "pw", "2 characters"),
        ("postmark_webhook_password", "s3cret-basic-password", "21 characters"),
        ("postmark_webhook_password", "ab" * 20, "repeats"),
        ("postmark_webhook_password", STRONG_OTHER_SECRET, "another Digest secret"),
        ("mailgun_webhook_signing_key", "k", "not a Mailgun signing key"),
        ("mailgun_webhook_signing_key", "correct horse battery staple", "not a Mailgun"),
        # Mailgun's public validation key, which anyone may know, pasted by mistake.
        ("mailgun_webhook_signing_key", "pubkey-5ogiflzbnjrljiky49qxsiozqef5jxp7", "not a Mailgun"),
        ("mailgun_webhook_signing_key", "key-" + "0" * 32, "repeats"),
    ],
)
def test_weak_webhook_secrets_refuse_start_up_and_fail_doctor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str, value: str, reason: str
) -> None:
    """A short, repetitive or reused Postmark password, or a Mailgun key not shaped like one
    Mailgun issues, makes `web` refuse to start and `doctor` fail, in one line naming the
    setting and never showing the value."""
    weak = Settings(secret_key=STRONG_OTHER_SECRET, **{setting: value})
    reasons = weak_secret_reasons(weak)
    name = f"DIGEST_{setting.upper()}"
    assert len(reasons) == 1 and reasons[0].startswith(name) and reason in reasons[0]
    with pytest.raises(ConfigError, match=f"refusing to start: {name}") as refused:
        require_strong_secrets(weak)
    message = str(refused.value)
    # A value of a letter or two is in any sentence; a longer one must not be shown.
    assert "\n" not in message and (len(value) < 4 or value.strip() not in message)

    monkeypatch.chdir(tmp_path)
    for variable in ("DIGEST_CONFIG", "DIGEST_BROKER_URL", "DIGEST_OPERATOR_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG_OTHER_SECRET)
    # A site of its own (a folder with no configuration is refused before any check).
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'digest.db'}")
    monkeypatch.setenv(name, value)
    relay = setting.split("_")[0]
    (check,) = [c for c in run_checks(quick=True) if c.name == f"{relay} webhook"]
    assert check.status == "fail" and check.detail == reasons[0]


def test_strong_webhook_secrets_pass(web_settings: Settings) -> None:
    """The secrets the relays' consoles make (a random password, Mailgun's key in either form)
    pass; an unset one is not weak (its hook answers 404)."""
    strong = web_settings.replace(secret_key=STRONG_OTHER_SECRET)
    assert weak_secret_reasons(strong) == []
    hex_key = "0d4f2b3c8e9a1b7c6d5e4f3a2b1c0d9e-4f3a2b1c-8e9a1b7c"
    assert weak_secret_reasons(strong.replace(mailgun_webhook_signing_key=hex_key)) == []
    assert weak_secret_reasons(Settings(secret_key=STRONG_OTHER_SECRET)) == []


def test_a_sendgrid_key_on_another_curve_is_refused_at_load() -> None:
    """SendGrid signs with P-256: an ECDSA key on another curve is refused when the settings
    load, naming the setting."""
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    environ = {
        "DIGEST_SECRET_KEY": "k",
        "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(der).decode(),
    }
    with pytest.raises(ConfigError, match="DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256"):
        load_settings(None, environ)


def test_a_one_letter_mailgun_key_lets_no_forged_complaint_through(
    db: Database, web_settings: Settings, sent: dict[str, Sent]
) -> None:
    """The attack: with the signing key "k", anyone could sign a complaint. Such a key stops
    `web` from starting, and an app made without that check still answers 503 to the forged
    complaint and changes nothing."""
    careless = web_settings.replace(mailgun_webhook_signing_key="k")
    with pytest.raises(ConfigError, match="DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY"):
        require_strong_secrets(careless.replace(secret_key=STRONG_OTHER_SECRET))
    before = snapshot(db)
    with another_app(careless) as app:
        forged = mailgun_call(sent["reader1@example.com"], "complained", key="k")
        response = app.test_client().post("/hooks/mailgun", json=forged)
    assert response.status_code == 503
    assert snapshot(db) == before


def _rewind_throttles(db: Database, seconds: int) -> None:
    """Move every throttle window back in time, as if ``seconds`` had passed."""
    with db.session() as session:
        # Row by row: SQLite has no datetime arithmetic for an UPDATE to do it in SQL.
        for row in session.scalars(select(Throttle)):
            row.window_start -= dt.timedelta(seconds=seconds)


def test_guessing_the_postmark_password_is_locked_out_long_before_439_tries(
    client: FlaskClient, db: Database, web_settings: Settings, sent: dict[str, Sent]
) -> None:
    """The attack: 439 guesses from one address found a weak password. Now only the first
    `webhook_failures_per_ip` are checked; every later one, the right password included, gets
    429 with Retry-After and changes nothing. Another address is not locked out, and once the
    window has passed the relay's call is taken again."""
    body = postmark_bounce(sent["reader1@example.com"])
    auth = basic(POSTMARK_USER, POSTMARK_PASSWORD)
    before = snapshot(db)
    statuses = []
    for guess in range(438):
        wrong = basic(POSTMARK_USER, f"pw{guess}")
        statuses.append(client.post("/hooks/postmark", json=body, headers=wrong).status_code)
    right = client.post("/hooks/postmark", json=body, headers=auth)
    statuses.append(right.status_code)
    checked = web_settings.webhook_failures_per_ip
    assert statuses == [401] * checked + [429] * (439 - checked)
    assert 0 < int(right.headers["Retry-After"]) <= web_settings.webhook_lockout_seconds
    assert snapshot(db) == before

    elsewhere = {"REMOTE_ADDR": "192.0.2.80"}
    other = client.post("/hooks/postmark", json=body, headers=auth, environ_base=elsewhere)
    assert other.status_code == 200
    _rewind_throttles(db, web_settings.webhook_lockout_seconds)
    complaint = postmark_complaint(sent["reader2@example.com"])
    assert client.post("/hooks/postmark", json=complaint, headers=auth).status_code == 200
    assert_complained(db, sent["reader2@example.com"])


def test_guesses_from_many_addresses_lock_the_hook_for_everyone(
    db: Database, web_settings: Settings, sent: dict[str, Sent]
) -> None:
    """Past `webhook_failures_overall` failures from all addresses together a hook answers 429
    to every address, even to a genuine call; the other hook keeps its own count and works."""
    limits = web_settings.replace(webhook_failures_per_ip=2, webhook_failures_overall=5)
    copy = sent["reader1@example.com"]
    guessed_key = "key-guessedguessedguessedguessed12"
    with another_app(limits) as app:
        client = app.test_client()
        answers = [
            client.post(
                "/hooks/mailgun",
                json=mailgun_call(copy, key=guessed_key),
                environ_base={"REMOTE_ADDR": f"198.51.100.{n // 2}"},
            ).status_code
            for n in range(6)
        ]
        assert answers == [403] * 5 + [429]
        fresh_address = {"REMOTE_ADDR": "192.0.2.9"}
        genuine = client.post("/hooks/mailgun", json=mailgun_call(copy), environ_base=fresh_address)
        assert genuine.status_code == 429 and int(genuine.headers["Retry-After"]) > 0
        assert reader(db, copy).suppressed is None
        auth = basic(POSTMARK_USER, POSTMARK_PASSWORD)
        other_hook = client.post("/hooks/postmark", json=postmark_bounce(copy), headers=auth)
        assert other_hook.status_code == 200


def test_failed_signatures_of_sendgrid_lock_nothing_out(
    client: FlaskClient, web_settings: Settings, sent: dict[str, Sent], keys: Keys
) -> None:
    """SendGrid (like SES) signs with a private key nobody can guess: forged calls past the
    lockout limit are still refused one by one with 403, never 429, so a forger cannot
    silence the relay."""
    copy = sent["reader1@example.com"]
    forger = ec.generate_private_key(ec.SECP256R1())
    for _ in range(web_settings.webhook_failures_per_ip + 2):
        assert post_sendgrid(client, forger, sendgrid_events(copy)).status_code == 403
    assert post_sendgrid(client, keys.ecdsa_key, sendgrid_events(copy)).status_code == 200
