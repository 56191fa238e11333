"""Relay webhooks under ``/hooks/``: Amazon SES (through SNS), Postmark, SendGrid, Mailgun.

These are machine-to-machine calls, proven by each relay's own signature or credentials, not
by a browser session: no cookie is read or set and no CSRF token is asked for. Every refusal
is a 4xx with a one-line JSON reason and changes nothing; an endpoint whose secret is not
configured answers 404. Parsing and verification live in ``digest.feedback.webhooks``.

The two hooks proven by a shared secret (Postmark's password, Mailgun's HMAC key) count
failed authentications per client IP and overall; past either limit the hook answers 429,
without checking the credential, until the window ends, so the secret cannot be guessed
online. Postmark and Mailgun retry a 429 for hours, so a lockout delays their reports and
loses none. SES and SendGrid sign with a private key nobody can guess: counting their
failures would only let anyone lock the relay out. A hook whose secret is weak (see
``digest.config.weak_webhook_reasons``) answers 503: ``digest web`` refuses to start with one,
and an app made some other way must not accept calls signed with it either.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from digest.config import weak_webhook_reasons
from digest.errors import ConfigError
from digest.feedback.webhooks import (
    Notice,
    Outcome,
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
from digest.web import context, throttle

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/hooks")

_STATE_KEY = "digest.webhooks"


@dataclass
class HookState:
    """What the webhooks keep between calls, per app: fetched SNS keys, Mailgun tokens seen.
    Tests replace ``sns.fetcher`` and ``confirm`` so nothing leaves the machine."""

    sns: SnsVerifier = field(default_factory=SnsVerifier)
    mailgun_tokens: TokenMemory = field(default_factory=TokenMemory)
    confirm: Callable[[str], bool] = confirm_subscription


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions[_STATE_KEY] = HookState()


def hook_state() -> HookState:
    found: HookState = current_app.extensions[_STATE_KEY]
    return found


def _answer(status: int, body: Mapping[str, object], **headers: str) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def _refused(exc: WebhookRefused, vendor: str) -> Response:
    # Logged without the body: a forger learns nothing from the answer, the operator sees why.
    log.warning("webhook %s refused (%s): %s", vendor, exc.status, exc.reason)
    headers = {}
    if exc.status == 401 and vendor == "postmark":
        headers["WWW-Authenticate"] = 'Basic realm="digest webhooks"'
    return _answer(exc.status, {"error": exc.reason}, **headers)


def _misconfigured(exc: ConfigError, vendor: str) -> Response:
    log.error("webhook %s: %s", vendor, exc)
    return _answer(503, {"error": "this webhook is misconfigured; see the server log"})


#: Throttle kinds of failed webhook authentication (see digest.web.throttle), each per hook.
FAILED_IP = "webhook-failed-ip"
FAILED_ALL = "webhook-failed-all"
#: Answers that mean the caller did not prove it is the relay: unsigned or wrong credentials,
#: a signature that does not match, a stale timestamp, a token used already.
_FAILED_AUTH = (401, 403)


def _guarded(vendor: str) -> Callable[[Callable[[], Response]], Callable[[], Response]]:
    """Refuse a hook whose secret is weak, and lock a client (or everyone) out of it after
    too many failed authentications; the wrapped view checks the credential."""

    def wrap(view: Callable[[], Response]) -> Callable[[], Response]:
        @functools.wraps(view)
        def guarded() -> Response:
            web = context()
            settings = web.settings
            weak = weak_webhook_reasons(settings).get(vendor)
            if weak:
                log.error("webhook %s refused: %s", vendor, weak)
                return _answer(503, {"error": "this webhook is misconfigured; see the server log"})
            window = dt.timedelta(seconds=settings.webhook_lockout_seconds)
            # remote_addr is the direct peer: behind a reverse proxy, the proxy must be trusted
            # to set it (ProxyFix), or every relay and guesser shares the proxy's count.
            ip_key = f"{vendor} {request.remote_addr or 'unknown'}"
            with web.db.session() as session:
                wait = max(
                    throttle.blocked(
                        session, FAILED_IP, ip_key, settings.webhook_failures_per_ip, window
                    ),
                    throttle.blocked(
                        session, FAILED_ALL, vendor, settings.webhook_failures_overall, window
                    ),
                )
            if wait:
                # Info, not warning: each failure that led here was logged as a warning already.
                log.info("webhook %s locked out after failed authentications (429)", vendor)
                return _answer(
                    429,
                    {"error": "too many failed authentications; try again later"},
                    **{"Retry-After": str(wait)},
                )
            response = view()
            # Counted after the check, unlike the login's slot taken before it: relays call
            # often, and a write per genuine call would make the overall row a hot spot. The
            # price is that guesses in flight together (a few, one per server thread) may
            # pass the limit before it shuts.
            if response.status_code in _FAILED_AUTH:
                with web.db.session() as session:
                    throttle.take(
                        session, FAILED_IP, ip_key, settings.webhook_failures_per_ip, window
                    )
                    throttle.take(
                        session, FAILED_ALL, vendor, settings.webhook_failures_overall, window
                    )
            return response

        return guarded

    return wrap


def _apply(notices: list[Notice], vendor: str) -> Response:
    web = context()
    outcome: Outcome = apply_notices(web.db, web.settings, notices, f"webhook:{vendor}")
    log.info("webhook %s: %s", vendor, outcome.as_dict())
    return _answer(200, outcome.as_dict())


@bp.post("/ses")
def ses() -> Response:
    """Amazon SNS delivering SES bounce and complaint notifications."""
    settings = context().settings
    state = hook_state()
    try:
        message = state.sns.verify(request.get_data(), topic_arns(settings))
        if message.type == "SubscriptionConfirmation":
            url = sns_subscribe_url(message)
            if settings.ses_auto_confirm and url:
                confirmed = state.confirm(url)
                log.warning("SNS subscription to %s confirmed: %s", message.topic_arn, confirmed)
                return _answer(200, {"subscription": "confirmed" if confirmed else "failed"})
            log.warning(
                "SNS asks to confirm the subscription to %s; to accept, open: %s",
                message.topic_arn,
                url or "(its SubscribeURL is not an SNS address; not shown)",
            )
            return _answer(200, {"subscription": "pending"})
        if message.type == "UnsubscribeConfirmation":
            log.warning("SNS says the subscription to %s has ended", message.topic_arn)
            return _answer(200, {"subscription": "ended"})
        return _apply(ses_notices(message.message), "ses")
    except WebhookRefused as exc:
        return _refused(exc, "ses")


@bp.post("/postmark")
@_guarded("postmark")
def postmark() -> Response:
    """Postmark's Bounce and SpamComplaint webhooks, authenticated with HTTP Basic."""
    settings = context().settings
    try:
        verify_postmark(
            request.headers.get("Authorization", ""),
            settings.postmark_webhook_user,
            settings.postmark_webhook_password,
        )
        return _apply(postmark_notices(request.get_data()), "postmark")
    except WebhookRefused as exc:
        return _refused(exc, "postmark")


@bp.post("/sendgrid")
def sendgrid() -> Response:
    """SendGrid's Signed Event Webhook."""
    settings = context().settings
    body = request.get_data()
    try:
        verify_sendgrid(
            settings.sendgrid_webhook_public_key,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
            body,
            max_age=settings.webhook_max_age_seconds,
        )
        return _apply(sendgrid_notices(body), "sendgrid")
    except WebhookRefused as exc:
        return _refused(exc, "sendgrid")
    except ConfigError as exc:
        return _misconfigured(exc, "sendgrid")


@bp.post("/mailgun")
@_guarded("mailgun")
def mailgun() -> Response:
    """Mailgun's webhooks (JSON, signed with the HTTP webhook signing key)."""
    settings = context().settings
    state = hook_state()
    try:
        token, payload = verify_mailgun(
            settings.mailgun_webhook_signing_key,
            request.get_data(),
            state.mailgun_tokens,
            max_age=settings.webhook_max_age_seconds,
        )
        try:
            return _apply(mailgun_notices(payload), "mailgun")
        except BaseException:
            # Not recorded: Mailgun's retry (same token) must not be taken for a replay.
            state.mailgun_tokens.release(token)
            raise
    except WebhookRefused as exc:
        return _refused(exc, "mailgun")
