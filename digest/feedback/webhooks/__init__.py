"""Bounce and complaint reports from mail relays' webhooks: Amazon SES (through SNS), Postmark,
SendGrid and Mailgun, one module each, and what they share in ``common``.

Each relay proves a call is its own in its own way (an RSA signature with a certificate on an
AWS host, HTTP Basic credentials, an ECDSA signature, an HMAC); ``verify_*`` checks it and
raises ``WebhookRefused`` (with the HTTP status to answer) for anything unsigned, forged,
stale or malformed, before anything is read from the payload. ``*_notices`` then turn the
payload into ``Notice``s, and ``apply_notices`` matches each to a delivery and applies it as a
``FeedbackEvent``, all in one transaction.

No Flask here: the routes are in ``digest.web.webhooks``.
"""

from digest.feedback.webhooks.common import (
    MAX_EVENTS,
    Notice,
    Outcome,
    WebhookRefused,
    apply_notices,
    match_delivery,
)
from digest.feedback.webhooks.mailgun import TokenMemory, mailgun_notices, verify_mailgun
from digest.feedback.webhooks.postmark import postmark_notices, verify_postmark
from digest.feedback.webhooks.sendgrid import sendgrid_notices, verify_sendgrid
from digest.feedback.webhooks.ses import (
    SNS_MAX_AGE,
    SNS_MAX_SKEW,
    CertificateFetcher,
    CertificateUnavailable,
    SnsMessage,
    SnsVerifier,
    confirm_subscription,
    fetch_certificate,
    ses_notices,
    sns_subscribe_url,
    topic_arns,
)

__all__ = [
    "MAX_EVENTS",
    "SNS_MAX_AGE",
    "SNS_MAX_SKEW",
    "CertificateFetcher",
    "CertificateUnavailable",
    "Notice",
    "Outcome",
    "SnsMessage",
    "SnsVerifier",
    "TokenMemory",
    "WebhookRefused",
    "apply_notices",
    "confirm_subscription",
    "fetch_certificate",
    "mailgun_notices",
    "match_delivery",
    "postmark_notices",
    "sendgrid_notices",
    "ses_notices",
    "sns_subscribe_url",
    "topic_arns",
    "verify_mailgun",
    "verify_postmark",
    "verify_sendgrid",
]
