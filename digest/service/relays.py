"""What a relay's webhook call comes to (Amazon SES through SNS, Postmark, SendGrid, Mailgun):
checked, applied, and answered as a status, a JSON body and headers the web face sends back.

These are machine-to-machine calls, proven by each relay's own signature or credentials. Every
refusal is a 4xx with a one-line reason and changes nothing; a hook whose secret is not
configured answers 404 (the relay's parser says so). Parsing and verification live in
``digest.feedback.webhooks``.

The two hooks proven by a shared secret (Postmark's password, Mailgun's HMAC key) count failed
authentications per client IP and overall; past either limit the hook answers 429, without
checking the credential, until the window ends, so the secret cannot be guessed online.
Postmark and Mailgun retry a 429 for hours, so a lockout delays their reports and loses none.
SES and SendGrid sign with a private key nobody can guess: counting their failures would only
let anyone lock the relay out. A hook whose secret is weak (``config.weak_webhook_reasons``)
answers 503: ``digest web`` refuses to start with one, and a core made some other way must not
accept calls signed with it either.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from digest.config import weak_webhook_reasons
from digest.errors import ConfigError
from digest.feedback.webhooks import (
    Notice,
    SnsVerifier,
    TokenMemory,
    WebhookRefused,
    apply_notices,
    confirm_subscription,
    mailgun_notices,
    postmark_notices,
    sendgrid_notices,
    ses_notices,
    sns_subscribe_url,
    topic_arns,
    verify_mailgun,
    verify_postmark,
    verify_sendgrid,
)
from digest.service import throttle

if TYPE_CHECKING:
    from digest.service.core import Digest

__all__ = ["HookAnswer", "Relays"]

log = logging.getLogger(__name__)

#: Throttle kinds of failed webhook authentication, each per hook.
FAILED_IP = "webhook-failed-ip"
FAILED_ALL = "webhook-failed-all"
#: Answers that mean the caller did not prove it is the relay: unsigned or wrong credentials,
#: a signature that does not match, a stale timestamp, a token used already.
_FAILED_AUTH = (401, 403)
_MISCONFIGURED = {"error": "this webhook is misconfigured; see the server log"}


@dataclass(frozen=True)
class HookAnswer:
    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


def _refused(exc: WebhookRefused, vendor: str) -> HookAnswer:
    # Logged without the body: a forger learns nothing from the answer, the operator sees why.
    log.warning("webhook %s refused (%s): %s", vendor, exc.status, exc.reason)
    headers = {}
    if exc.status == 401 and vendor == "postmark":
        headers["WWW-Authenticate"] = 'Basic realm="digest webhooks"'
    return HookAnswer(exc.status, {"error": exc.reason}, headers)


class Relays:
    """The relays' hooks, with what they keep between calls: fetched SNS keys and Mailgun
    tokens seen. Tests replace ``sns.fetcher`` and ``confirm`` so nothing leaves the machine."""

    def __init__(self, core: Digest) -> None:
        self.core = core
        self.settings = core.settings
        self.sns = SnsVerifier()
        self.mailgun_tokens = TokenMemory()
        self.confirm: Callable[[str], bool] = confirm_subscription

    def _apply(self, notices: list[Notice], vendor: str) -> HookAnswer:
        outcome = apply_notices(self.core.db, self.settings, notices, f"webhook:{vendor}")
        log.info("webhook %s: %s", vendor, outcome.as_dict())
        return HookAnswer(200, dict(outcome.as_dict()))

    def _guarded(self, vendor: str, ip: str | None, check: Callable[[], HookAnswer]) -> HookAnswer:
        """Refuse a hook whose secret is weak, and lock a client (or everyone) out of it after
        too many failed authentications; ``check`` checks the credential and applies."""
        settings = self.settings
        weak = weak_webhook_reasons(settings).get(vendor)
        if weak:
            log.error("webhook %s refused: %s", vendor, weak)
            return HookAnswer(503, dict(_MISCONFIGURED))
        window = dt.timedelta(seconds=settings.webhook_lockout_seconds)
        # The direct peer: behind a reverse proxy, the proxy must be trusted to set it
        # (ProxyFix), or every relay and guesser shares the proxy's count.
        ip_key = f"{vendor} {ip or 'unknown'}"
        per_ip, overall = settings.webhook_failures_per_ip, settings.webhook_failures_overall
        with self.core.db.session() as session:
            wait = max(
                throttle.blocked(session, FAILED_IP, ip_key, per_ip, window),
                throttle.blocked(session, FAILED_ALL, vendor, overall, window),
            )
        if wait:
            # Info, not warning: each failure that led here was logged as a warning already.
            log.info("webhook %s locked out after failed authentications (429)", vendor)
            return HookAnswer(
                429,
                {"error": "too many failed authentications; try again later"},
                {"Retry-After": str(wait)},
            )
        answer = check()
        # Counted after the check, unlike the login's slot taken before it: relays call
        # often, and a write per genuine call would make the overall row a hot spot. The
        # price is that guesses in flight together (a few, one per server thread) may pass
        # the limit before it shuts.
        if answer.status in _FAILED_AUTH:
            with self.core.db.session() as session:
                throttle.take(session, FAILED_IP, ip_key, per_ip, window)
                throttle.take(session, FAILED_ALL, vendor, overall, window)
        return answer

    def ses(self, body: bytes) -> HookAnswer:
        """Amazon SNS delivering SES bounce and complaint notifications."""
        settings = self.settings
        try:
            message = self.sns.verify(body, topic_arns(settings))
            if message.type == "SubscriptionConfirmation":
                url = sns_subscribe_url(message)
                if settings.ses_auto_confirm and url:
                    confirmed = self.confirm(url)
                    log.warning(
                        "SNS subscription to %s confirmed: %s", message.topic_arn, confirmed
                    )
                    return HookAnswer(200, {"subscription": "confirmed" if confirmed else "failed"})
                log.warning(
                    "SNS asks to confirm the subscription to %s; to accept, open: %s",
                    message.topic_arn,
                    url or "(its SubscribeURL is not an SNS address; not shown)",
                )
                return HookAnswer(200, {"subscription": "pending"})
            if message.type == "UnsubscribeConfirmation":
                log.warning("SNS says the subscription to %s has ended", message.topic_arn)
                return HookAnswer(200, {"subscription": "ended"})
            return self._apply(ses_notices(message.message), "ses")
        except WebhookRefused as exc:
            return _refused(exc, "ses")

    def postmark(self, authorization: str, body: bytes, *, ip: str | None) -> HookAnswer:
        """Postmark's Bounce and SpamComplaint webhooks, authenticated with HTTP Basic."""
        settings = self.settings

        def check() -> HookAnswer:
            try:
                verify_postmark(
                    authorization,
                    settings.postmark_webhook_user,
                    settings.postmark_webhook_password,
                )
                return self._apply(postmark_notices(body), "postmark")
            except WebhookRefused as exc:
                return _refused(exc, "postmark")

        return self._guarded("postmark", ip, check)

    def sendgrid(self, signature: str, timestamp: str, body: bytes) -> HookAnswer:
        """SendGrid's Signed Event Webhook."""
        settings = self.settings
        try:
            verify_sendgrid(
                settings.sendgrid_webhook_public_key,
                signature,
                timestamp,
                body,
                max_age=settings.webhook_max_age_seconds,
            )
            return self._apply(sendgrid_notices(body), "sendgrid")
        except WebhookRefused as exc:
            return _refused(exc, "sendgrid")
        except ConfigError as exc:
            log.error("webhook sendgrid: %s", exc)
            return HookAnswer(503, dict(_MISCONFIGURED))

    def mailgun(self, body: bytes, *, ip: str | None) -> HookAnswer:
        """Mailgun's webhooks (JSON, signed with the HTTP webhook signing key)."""
        settings = self.settings

        def check() -> HookAnswer:
            try:
                token, payload = verify_mailgun(
                    settings.mailgun_webhook_signing_key,
                    body,
                    self.mailgun_tokens,
                    max_age=settings.webhook_max_age_seconds,
                )
                try:
                    return self._apply(mailgun_notices(payload), "mailgun")
                except BaseException:
                    # Not recorded: Mailgun's retry (same token) must not be taken for a replay.
                    self.mailgun_tokens.release(token)
                    raise
            except WebhookRefused as exc:
                return _refused(exc, "mailgun")

        return self._guarded("mailgun", ip, check)
