"""Mail transports: SMTP, the outbox folder, and a recording one for tests."""

from __future__ import annotations

from digest.config import Settings
from digest.transports.base import Envelope, Outcome, SendResult, Transport, classify
from digest.transports.outbox import OutboxTransport
from digest.transports.recording import RecordingTransport
from digest.transports.smtp import SmtpConfig, SmtpTransport


def transport_for(settings: Settings) -> Transport:
    """SMTP when DIGEST_SMTP_URL is set, else the outbox folder."""
    if settings.smtp_url:
        return SmtpTransport(SmtpConfig.from_url(settings.smtp_url))
    return OutboxTransport(settings.outbox_dir)


__all__ = [
    "Envelope",
    "OutboxTransport",
    "Outcome",
    "RecordingTransport",
    "SendResult",
    "SmtpConfig",
    "SmtpTransport",
    "Transport",
    "classify",
    "transport_for",
]
