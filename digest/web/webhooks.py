"""Relay webhooks under ``/hooks/``: Amazon SES (through SNS), Postmark, SendGrid, Mailgun.

These are machine-to-machine calls, proven by each relay's own signature or credentials, not
by a browser session: no cookie is read or set and no CSRF token is asked for. What each call
comes to (checked, applied, answered; the lockout after failed authentications) is
``digest.service.relays``'s; this module hands it the request and sends its answer.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from digest.service.relays import HookAnswer, Relays
from digest.web import context

bp = Blueprint("webhooks", __name__, url_prefix="/hooks")


def relays() -> Relays:
    return context().core.relays


def _send(answer: HookAnswer) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


@bp.post("/ses")
def ses() -> Response:
    """Amazon SNS delivering SES bounce and complaint notifications."""
    return _send(relays().ses(request.get_data()))


@bp.post("/postmark")
def postmark() -> Response:
    """Postmark's Bounce and SpamComplaint webhooks, authenticated with HTTP Basic."""
    return _send(
        relays().postmark(
            request.headers.get("Authorization", ""),
            request.get_data(),
            ip=request.remote_addr,
        )
    )


@bp.post("/sendgrid")
def sendgrid() -> Response:
    """SendGrid's Signed Event Webhook."""
    return _send(
        relays().sendgrid(
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
            request.get_data(),
        )
    )


@bp.post("/mailgun")
def mailgun() -> Response:
    """Mailgun's webhooks (JSON, signed with the HTTP webhook signing key)."""
    return _send(relays().mailgun(request.get_data(), ip=request.remote_addr))
