"""Amazon SES bounce and complaint notifications, delivered through SNS.

SNS signs each message with RSA (SHA1 or SHA256) under a certificate it serves from an SNS
host; ``SnsVerifier`` fetches and keeps those certificates' keys and checks the signature, the
topic and the message's age before anything is read from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.config import Settings
from digest.feedback.events import EventKind
from digest.feedback.webhooks.common import (
    Notice,
    WebhookRefused,
    clean_address,
    clean_text,
    decode_b64,
    json_object,
    json_records,
    parse_json,
)

log = logging.getLogger(__name__)

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
        payload = parse_json(body)
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
                decode_b64(signature_b64, "the SNS signature"),
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
        data = parse_json(message)
    except WebhookRefused:
        data = None
    if not isinstance(data, dict):
        # Signed by SNS, so genuine: SES's own "Successfully validated SNS topic" text, or
        # another publisher on the topic. Nothing to act on, and nothing to retry.
        log.info("SNS notification that is not an SES event; ignored")
        return []
    kind = data.get("notificationType") or data.get("eventType")
    mail = json_object(data.get("mail"))
    return_path = clean_text(mail.get("source"), 400)
    message_id = _ses_message_id(mail)
    notices: list[Notice] = []
    if kind == "Bounce" and isinstance(data.get("bounce"), dict):
        bounce = data["bounce"]
        bounce_type = clean_text(bounce.get("bounceType"), 40)
        event = EventKind.HARD_BOUNCE if bounce_type == "Permanent" else EventKind.SOFT_BOUNCE
        about = f"{bounce_type}/{clean_text(bounce.get('bounceSubType'), 40)}"
        for row in json_records(bounce.get("bouncedRecipients")):
            status = clean_text(row.get("status"), 20)
            diagnostic = clean_text(row.get("diagnosticCode"))
            notices.append(
                Notice(
                    event,
                    clean_address(row.get("emailAddress")),
                    return_path,
                    message_id,
                    f"ses {about} {status} {diagnostic}".strip(),
                )
            )
    elif kind == "Complaint" and isinstance(data.get("complaint"), dict):
        complaint = data["complaint"]
        feedback = clean_text(complaint.get("complaintFeedbackType"), 40) or "abuse"
        for row in json_records(complaint.get("complainedRecipients")):
            notices.append(
                Notice(
                    EventKind.COMPLAINT,
                    clean_address(row.get("emailAddress")),
                    return_path,
                    message_id,
                    f"ses feedback-type {feedback}",
                )
            )
    return notices


def _ses_message_id(mail: Mapping[str, Any]) -> str:
    for header in json_records(mail.get("headers")):
        if str(header.get("name", "")).lower() == "message-id":
            return clean_text(header.get("value"))
    common = mail.get("commonHeaders")
    return clean_text(common.get("messageId")) if isinstance(common, dict) else ""


def topic_arns(settings: Settings) -> list[str]:
    return [arn.strip() for arn in (settings.ses_topic_arns or "").split(",") if arn.strip()]
