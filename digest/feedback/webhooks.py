"""Bounce and complaint reports from mail relays' webhooks: Amazon SES (through SNS), Postmark,
SendGrid and Mailgun.

Each relay proves a call is its own in its own way (an RSA signature with a certificate on an
AWS host, HTTP Basic credentials, an ECDSA signature, an HMAC); ``verify_*`` checks it and
raises ``WebhookRefused`` (with the HTTP status to answer) for anything unsigned, forged,
stale or malformed, before anything is read from the payload. ``*_notices`` then turn the
payload into ``Notice``s, and ``apply_notices`` matches each to a delivery and applies it as a
``FeedbackEvent``, all in one transaction.

A notice names a delivery only through something we signed: the VERP return path or our
Message-ID (its MAC verified, ``digest.mail.msgid``), and only when that delivery went to
the very address the relay names. Otherwise it is about the address alone.

No Flask here: the routes are in ``digest.web.webhooks``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import ConfigError, InputError
from digest.feedback.events import EventKind, FeedbackEvent, apply_event
from digest.feedback.privacy import is_forgotten
from digest.mail.msgid import signer_for
from digest.mail.verp import VerpSigner, split_bounce_address
from digest.store.db import Database
from digest.store.models import Delivery, Subscriber

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^\s\x00-\x1f\x7f\ud800-\udfff@<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.-]{1,253}")
#: Most events one call may carry (SendGrid batches up to a few thousand).
MAX_EVENTS = 10_000


class WebhookRefused(InputError):
    """A webhook call that changes nothing: ``status`` is what to answer (400 malformed,
    401 unsigned, 403 forged or stale, 404 not configured, 503 cannot check it just now)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """What a relay says about one recipient, before it is matched to a delivery."""

    kind: EventKind
    recipient: str
    #: The envelope sender the relay echoes (our VERP return path, when we set one).
    return_path: str = ""
    #: The Message-ID of the message it is about (angle brackets or not), or text quoting it.
    message_id: str = ""
    detail: str = ""


@dataclass
class Outcome:
    """How many notices of one call changed something, were already recorded, or named
    nobody (or were kinds of news that change nothing, like a delivery)."""

    applied: int = 0
    already: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"applied": self.applied, "already": self.already, "ignored": self.ignored}


# -- shared helpers --------------------------------------------------------------------------


def _address(value: object) -> str:
    """A bare, lower-cased address, or "" for anything else (a relay's field is still text
    from the Internet: it must not become a header or a row with a newline in it)."""
    if not isinstance(value, str):
        return ""
    address = value.strip().strip("<>").strip().lower()
    return address if len(address) <= 320 and _ADDRESS.fullmatch(address) else ""


def _text(value: object, limit: int = 400) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())[:limit]


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookRefused(400, "body is not JSON") from exc


def _b64(value: str, what: str, status: int = 403) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRefused(status, f"{what} is not base64") from exc


def _timestamp(value: object, now: float, max_age: int) -> int:
    """Seconds since the epoch from a signed field, refused when outside the window (a replay
    of an old call, or a clock so far off that the window means nothing)."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    if not re.fullmatch(r"[0-9]{1,12}", text.strip()):
        raise WebhookRefused(400, "timestamp is not a number of seconds")
    stamp = int(text)
    if abs(now - stamp) > max_age:
        raise WebhookRefused(403, "timestamp is outside the accepted window")
    return stamp


# -- Amazon SES through SNS ------------------------------------------------------------------

#: The fields an SNS signature covers, in its canonical order, per message type. "Subject" is
#: covered only when the notification has one.
_SNS_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SNS_SIGNED["UnsubscribeConfirmation"] = _SNS_SIGNED["SubscriptionConfirmation"]
#: An SNS endpoint of one region (us-east-1, us-gov-west-1, cn-north-1, ...). Whole URLs are
#: matched, so ``https://sns.us-east-1.amazonaws.com@evil.example/``, a port, a query or a
#: host that merely ends in amazonaws.com never pass.
_SNS_HOST = r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\.amazonaws\.com(?:\.cn)?"
_SNS_CERT_URL = re.compile(rf"https://{_SNS_HOST}/[A-Za-z0-9][A-Za-z0-9._-]{{0,200}}\.pem")
_SNS_SUBSCRIBE_URL = re.compile(rf"https://{_SNS_HOST}/\?[A-Za-z0-9=&%._:~+-]{{1,2000}}")
_SNS_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_CERT_MAX_BYTES = 64 * 1024
#: How old a signed SNS message may be. AWS caps the retries of an HTTPS delivery at 3,600 s
#: in all (a hard limit), so three hours lets every retry through, with room for queueing, and
#: still keeps a captured message from being replayed later.
SNS_MAX_AGE = dt.timedelta(hours=3)
#: How far in the future its Timestamp may be (our clock may be behind AWS's).
SNS_MAX_SKEW = dt.timedelta(minutes=15)

#: Fetches a signing certificate (PEM bytes) from its URL; raises ``CertificateUnavailable``.
CertificateFetcher = Callable[[str], bytes]


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched; ``transient``: worth trying again."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


def fetch_certificate(url: str) -> bytes:
    """GET the certificate over https, no redirects, with a size cap."""
    try:
        with (
            httpx.Client(timeout=10.0, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise CertificateUnavailable(
                    f"HTTP {response.status_code}", transient=response.status_code >= 500
                )
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > _CERT_MAX_BYTES:
                    raise CertificateUnavailable("certificate too large", transient=False)
            return data
    except httpx.HTTPError as exc:
        raise CertificateUnavailable(f"{type(exc).__name__}: {exc}", transient=True) from exc


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message."""

    type: str
    topic_arn: str
    message: str
    subscribe_url: str = ""


class SnsVerifier:
    """Checks SNS signatures; keeps the public key of each certificate URL it has fetched
    (SNS signs with a handful of certificates, each used for months)."""

    MAX_CACHED = 32

    def __init__(self, fetcher: CertificateFetcher = fetch_certificate) -> None:
        self.fetcher = fetcher
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self, body: bytes, topic_arns: Iterable[str], now: dt.datetime | None = None
    ) -> SnsMessage:
        allowed = {arn.strip() for arn in topic_arns if arn.strip()}
        if not allowed:
            raise WebhookRefused(404, "no SNS topic is configured")
        payload = _json(body)
        if not isinstance(payload, dict):
            raise WebhookRefused(400, "an SNS message is a JSON object")
        kind = payload.get("Type")
        if not isinstance(kind, str) or kind not in _SNS_SIGNED:
            raise WebhookRefused(400, "unknown SNS message type")
        signature_b64 = payload.get("Signature")
        cert_url = payload.get("SigningCertURL")
        if not isinstance(signature_b64, str) or not isinstance(cert_url, str):
            raise WebhookRefused(401, "the SNS message is not signed")
        # Checked before any fetch, so nobody can make us download for a topic not ours.
        topic = payload.get("TopicArn")
        if not isinstance(topic, str) or topic not in allowed:
            raise WebhookRefused(403, "the SNS topic is not one of ours")
        algorithm = _SNS_HASHES.get(str(payload.get("SignatureVersion", "")))
        if algorithm is None:
            raise WebhookRefused(400, "unknown SNS signature version")
        if not _SNS_CERT_URL.fullmatch(cert_url):
            raise WebhookRefused(403, "the signing certificate is not on an SNS host")
        _sns_fresh(payload.get("Timestamp"), now or dt.datetime.now(dt.UTC))
        canonical = _sns_canonical(kind, payload)
        key = self._key(cert_url, now or dt.datetime.now(dt.UTC))
        try:
            key.verify(
                _b64(signature_b64, "the SNS signature"),
                canonical,
                padding.PKCS1v15(),
                algorithm(),
            )
        except InvalidSignature as exc:
            raise WebhookRefused(403, "the SNS signature does not match") from exc
        return SnsMessage(
            kind, topic, str(payload["Message"]), str(payload.get("SubscribeURL", ""))
        )

    def _key(self, url: str, now: dt.datetime) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._keys.get(url)
        if cached is not None:
            return cached
        try:
            pem = self.fetcher(url)
        except CertificateUnavailable as exc:
            log.warning("SNS signing certificate %s unavailable: %s", url, exc)
            raise WebhookRefused(
                503 if exc.transient else 403, "the signing certificate is unavailable"
            ) from exc
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise WebhookRefused(403, "the signing certificate does not parse") from exc
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRefused(403, "the signing certificate holds no RSA key")
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise WebhookRefused(403, "the signing certificate is not valid now")
        with self._lock:
            self._keys[url] = key
            while len(self._keys) > self.MAX_CACHED:
                self._keys.popitem(last=False)
        return key


def _sns_fresh(value: object, now: dt.datetime) -> None:
    """Refuse a message signed too long ago (a captured one replayed after the operator
    reinstated the address) or dated in the future."""
    try:
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise WebhookRefused(400, "the SNS message has no valid Timestamp")
    if not now - SNS_MAX_AGE <= stamp <= now + SNS_MAX_SKEW:
        raise WebhookRefused(403, "the SNS message is too old or dated in the future")


def _sns_canonical(kind: str, payload: Mapping[str, Any]) -> bytes:
    """The string SNS signs: each covered field's name and value, one per line."""
    lines: list[str] = []
    for name in _SNS_SIGNED[kind]:
        value = payload.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise WebhookRefused(400, f"the SNS message has no {name}")
        lines += [name, value]
    # JSON can spell lone surrogates (\ud800), which UTF-8 cannot: such a message was never
    # signed by SNS, and must fail as a mismatch, not as an encoding error.
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def sns_subscribe_url(message: SnsMessage) -> str:
    """The SubscribeURL of a confirmation, if it is an SNS endpoint (so visiting it cannot be
    aimed at any other host); "" otherwise."""
    url = message.subscribe_url
    return url if _SNS_SUBSCRIBE_URL.fullmatch(url) else ""


def confirm_subscription(url: str) -> bool:
    """Visit a SubscribeURL already checked by ``sns_subscribe_url``; True when SNS said yes."""
    try:
        response = httpx.get(url, timeout=10.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        log.warning("SNS subscription confirmation failed: %s", exc)
        return False
    return response.status_code == 200


def ses_notices(message: str) -> list[Notice]:
    """The notices of an SES notification (``notificationType``) or event (``eventType``):
    Bounce (Permanent: hard; Transient or Undetermined: soft) and Complaint."""
    try:
        data = _json(message)
    except WebhookRefused:
        data = None
    if not isinstance(data, dict):
        # Signed by SNS, so genuine: SES's own "Successfully validated SNS topic" text, or
        # another publisher on the topic. Nothing to act on, and nothing to retry.
        log.info("SNS notification that is not an SES event; ignored")
        return []
    kind = data.get("notificationType") or data.get("eventType")
    mail = _object(data.get("mail"))
    return_path = _text(mail.get("source"), 400)
    message_id = _ses_message_id(mail)
    notices: list[Notice] = []
    if kind == "Bounce" and isinstance(data.get("bounce"), dict):
        bounce = data["bounce"]
        bounce_type = _text(bounce.get("bounceType"), 40)
        event = EventKind.HARD_BOUNCE if bounce_type == "Permanent" else EventKind.SOFT_BOUNCE
        about = f"{bounce_type}/{_text(bounce.get('bounceSubType'), 40)}"
        for row in _records(bounce.get("bouncedRecipients")):
            status, diagnostic = _text(row.get("status"), 20), _text(row.get("diagnosticCode"))
            notices.append(
                Notice(
                    event,
                    _address(row.get("emailAddress")),
                    return_path,
                    message_id,
                    f"ses {about} {status} {diagnostic}".strip(),
                )
            )
    elif kind == "Complaint" and isinstance(data.get("complaint"), dict):
        complaint = data["complaint"]
        feedback = _text(complaint.get("complaintFeedbackType"), 40) or "abuse"
        for row in _records(complaint.get("complainedRecipients")):
            notices.append(
                Notice(
                    EventKind.COMPLAINT,
                    _address(row.get("emailAddress")),
                    return_path,
                    message_id,
                    f"ses feedback-type {feedback}",
                )
            )
    return notices


def _ses_message_id(mail: Mapping[str, Any]) -> str:
    for header in _records(mail.get("headers")):
        if str(header.get("name", "")).lower() == "message-id":
            return _text(header.get("value"))
    common = mail.get("commonHeaders")
    return _text(common.get("messageId")) if isinstance(common, dict) else ""


def _object(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def _records(value: object) -> list[dict[str, Any]]:
    """The objects of a JSON list, skipping anything else in it."""
    if not isinstance(value, list):
        return []
    return [item for item in value[:MAX_EVENTS] if isinstance(item, dict)]


# -- Postmark --------------------------------------------------------------------------------

#: Postmark bounce ``Type``s and what each means for the address. Not listed (auto-replies,
#: address changes, challenge mails, "Blocked" by content, ...) change nothing.
_POSTMARK_KINDS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "BadEmailAddress": EventKind.HARD_BOUNCE,
    "SoftBounce": EventKind.SOFT_BOUNCE,
    "Transient": EventKind.SOFT_BOUNCE,
    "DnsError": EventKind.SOFT_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
}


def verify_postmark(authorization: str, user: str, password: str | None) -> None:
    """Check HTTP Basic credentials (Postmark sends those put in the webhook URL)."""
    if not password:
        raise WebhookRefused(404, "the Postmark webhook is not configured")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise WebhookRefused(401, "missing Basic credentials")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise WebhookRefused(401, "malformed Basic credentials") from exc
    given_user, _, given_password = given.partition(":")
    # Both compared, always, in constant time: the answer says nothing about which was wrong.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise WebhookRefused(401, "wrong Basic credentials")


def postmark_notices(body: bytes) -> list[Notice]:
    """The notice of one Postmark Bounce or SpamComplaint record (one record per call)."""
    data = _json(body)
    if not isinstance(data, dict):
        raise WebhookRefused(400, "a Postmark record is a JSON object")
    record_type = data.get("RecordType")
    if record_type not in ("Bounce", "SpamComplaint"):
        return []
    kind = _POSTMARK_KINDS.get(str(data.get("Type", "")))
    if kind is None:
        return []
    # The bounce's full text (Content) quotes our Message-ID when Postmark was asked to keep it.
    content = data.get("Content")
    quoted = content[:200_000] if isinstance(content, str) else ""
    detail = f"postmark {_text(data.get('Type'), 40)}: {_text(data.get('Description'))}"
    details = _text(data.get("Details"))
    return [
        Notice(
            kind,
            _address(data.get("Email")),
            message_id=quoted,
            detail=f"{detail} {details}".strip(),
        )
    ]


# -- SendGrid --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _sendgrid_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64.strip()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    return key


def verify_sendgrid(
    public_key_b64: str | None,
    signature: str,
    timestamp: str,
    body: bytes,
    *,
    max_age: int,
    now: float | None = None,
) -> None:
    """Check the Signed Event Webhook's ECDSA (P-256, SHA-256) signature over timestamp + body."""
    if not public_key_b64:
        raise WebhookRefused(404, "the SendGrid webhook is not configured")
    if not signature.strip() or not timestamp.strip():
        raise WebhookRefused(401, "the SendGrid call is not signed")
    _timestamp(timestamp, time.time() if now is None else now, max_age)
    key = _sendgrid_key(public_key_b64)
    try:
        key.verify(
            _b64(signature, "the SendGrid signature"),
            timestamp.strip().encode("ascii") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature as exc:
        raise WebhookRefused(403, "the SendGrid signature does not match") from exc


def sendgrid_notices(body: bytes) -> list[Notice]:
    """Notices of a SendGrid event batch: ``bounce`` (type bounce: hard; blocked: soft),
    ``dropped`` (for a bounced or invalid address: hard; a spam-reporting one: complaint)
    and ``spamreport``. Other events (delivered, open, ...) change nothing."""
    data = _json(body)
    if not isinstance(data, list):
        raise WebhookRefused(400, "a SendGrid batch is a JSON list")
    notices: list[Notice] = []
    for event in _records(data):
        name = event.get("event")
        reason = _text(event.get("reason"))
        kind: EventKind | None = None
        if name == "bounce":
            blocked = event.get("type") == "blocked"
            kind = EventKind.SOFT_BOUNCE if blocked else EventKind.HARD_BOUNCE
        elif name == "spamreport":
            kind = EventKind.COMPLAINT
        elif name == "dropped":
            lowered = reason.lower()
            if "spam reporting" in lowered:
                kind = EventKind.COMPLAINT
            elif "bounced" in lowered or lowered == "invalid":
                kind = EventKind.HARD_BOUNCE
        if kind is None:
            continue
        status = _text(event.get("status"), 20)
        notices.append(
            Notice(
                kind,
                _address(event.get("email")),
                message_id=_text(event.get("smtp-id")),
                detail=f"sendgrid {name} {status} {reason}".strip(),
            )
        )
    return notices


# -- Mailgun ---------------------------------------------------------------------------------


class TokenMemory:
    """Tokens seen in the replay window, in this process's memory.

    Per process, on purpose: it needs no table or Redis, and a replay that reaches another
    process within the window can only apply again what was applied once, which changes
    nothing (``apply_event`` is idempotent). Bounded: past ``limit`` live tokens, new ones are
    refused (503, the relay retries) rather than letting memory grow without end.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, token: str, expires: float, now: float) -> bool:
        """True the first time ``token`` is seen before it expires."""
        with self._lock:
            if len(self._expiry) >= self.limit:
                self._expiry = {t: e for t, e in self._expiry.items() if e > now}
                if len(self._expiry) >= self.limit:
                    raise WebhookRefused(503, "too many webhook calls in the replay window")
            seen = self._expiry.get(token)
            if seen is not None and seen > now:
                return False
            self._expiry[token] = expires
            return True

    def release(self, token: str) -> None:
        """Forget a token whose call was not recorded, so the relay's retry is accepted."""
        with self._lock:
            self._expiry.pop(token, None)


def verify_mailgun(
    signing_key: str | None,
    body: bytes,
    memory: TokenMemory,
    *,
    max_age: int,
    now: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check ``signature`` = HMAC-SHA256(key, timestamp + token), the timestamp's age and that
    the token is new; returns the token (claimed in ``memory``) and the payload."""
    if not signing_key:
        raise WebhookRefused(404, "the Mailgun webhook is not configured")
    payload = _json(body)
    if not isinstance(payload, dict):
        raise WebhookRefused(400, "a Mailgun call is a JSON object")
    signed = payload.get("signature")
    if not isinstance(signed, dict):
        raise WebhookRefused(401, "the Mailgun call is not signed")
    token, given, stamp = signed.get("token"), signed.get("signature"), signed.get("timestamp")
    if not isinstance(token, str) or not isinstance(given, str) or stamp is None:
        raise WebhookRefused(401, "the Mailgun call is not signed")
    if not re.fullmatch(r"[\x21-\x7e]{1,200}", token):
        raise WebhookRefused(400, "malformed Mailgun token")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", given.strip()):
        raise WebhookRefused(403, "the Mailgun signature does not match")
    now = time.time() if now is None else now
    seconds = _timestamp(stamp, now, max_age)
    expected = hmac.new(
        signing_key.encode("utf-8"), f"{stamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise WebhookRefused(403, "the Mailgun signature does not match")
    # Claimed only once the signature holds, so forged calls cannot fill the memory.
    if not memory.claim(token, seconds + max_age, now):
        raise WebhookRefused(403, "the Mailgun token was used already")
    return token, payload


def mailgun_notices(payload: Mapping[str, Any]) -> list[Notice]:
    """The notice of a Mailgun ``failed`` (severity permanent: hard; temporary: soft) or
    ``complained`` event; other events change nothing."""
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise WebhookRefused(400, "the Mailgun call has no event-data")
    name = data.get("event")
    if name == "failed":
        permanent = data.get("severity") == "permanent"
        kind = EventKind.HARD_BOUNCE if permanent else EventKind.SOFT_BOUNCE
    elif name == "complained":
        kind = EventKind.COMPLAINT
    else:
        return []
    message = _object(data.get("message"))
    headers = _object(message.get("headers"))
    envelope = _object(data.get("envelope"))
    status = _object(data.get("delivery-status"))
    detail = " ".join(
        part
        for part in (
            "mailgun",
            _text(name, 20),
            _text(data.get("severity"), 20),
            _text(status.get("code"), 10),
            _text(status.get("message")) or _text(status.get("description")),
        )
        if part
    )
    return [
        Notice(
            kind,
            _address(data.get("recipient")),
            return_path=_text(envelope.get("sender")),
            message_id=_text(headers.get("message-id")),
            detail=detail,
        )
    ]


# -- matching and applying -------------------------------------------------------------------


def _delivery_to(
    session: Session, delivery_id: int, edition_id: int | None, recipient: str
) -> bool:
    """Whether the delivery exists, is of that edition (when given) and went to ``recipient``."""
    row = session.execute(
        select(Delivery.edition_id, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None or (edition_id is not None and row[0] != edition_id):
        return False
    return bool(recipient) and row[1].lower() == recipient


def match_delivery(session: Session, settings: Settings, notice: Notice) -> int | None:
    """The delivery a notice is about: from our VERP return path, else our Message-ID, and
    only if it went to the address the relay names."""
    if settings.bounce_domain and notice.return_path:
        token = split_bounce_address(notice.return_path, settings.bounce_domain)
        if token:
            try:
                delivery_id = VerpSigner(settings.secret).verify(token)
            except InputError as exc:
                log.warning("webhook: return path token refused (%s)", exc)
            else:
                if _delivery_to(session, delivery_id, None, notice.recipient):
                    return delivery_id
    ids = signer_for(settings.secret).verify(notice.message_id)
    if ids is not None and _delivery_to(session, ids[1], ids[0], notice.recipient):
        return ids[1]
    return None


def apply_notices(
    db: Database, settings: Settings, notices: Iterable[Notice], source: str
) -> Outcome:
    """Apply every notice of one call in one transaction: all or nothing."""
    outcome = Outcome()
    with db.session() as session:
        for notice in notices:
            delivery_id = match_delivery(session, settings, notice)
            if delivery_id is None and (
                not notice.recipient or is_forgotten(session, notice.recipient)
            ):
                # Nobody to name, or a forgotten person whose address must not be stored again.
                outcome.ignored += 1
                continue
            event = FeedbackEvent(
                notice.kind,
                email=notice.recipient,
                delivery_id=delivery_id,
                detail=notice.detail,
                source=source,
            )
            if apply_event(session, event, soft_bounce_limit=settings.soft_bounce_limit):
                outcome.applied += 1
            else:
                outcome.already += 1
    return outcome


def topic_arns(settings: Settings) -> list[str]:
    return [arn.strip() for arn in (settings.ses_topic_arns or "").split(",") if arn.strip()]
