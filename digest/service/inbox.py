"""The loop back from the inbox, as the faces start it: the inbound SMTP server, IMAP polling,
and forgetting a person on request. The decisions (what a report means, whether it is signed)
are ``digest.feedback``'s; the rules it sets off are ``digest.audience``'s."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from digest import audience
from digest.audience import ForgetReport
from digest.config import Settings
from digest.errors import ConfigError
from digest.service import throttle
from digest.service.notices import SIGNUP_MAIL, signup_mail_key
from digest.store.db import Database
from digest.store.models import Delivery, MailingList
from digest.transports import OutboxTransport

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

__all__ = ["ForgetReport", "Inbox"]


class Inbox:
    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database

    def forget(self, email: str) -> ForgetReport:
        """Erase a person (see ``digest.audience.forget``), their sign-up mail counters and
        the outbox files addressed to them; InputError if ``email`` cannot be an address. The
        report says what was cleared and what is out of reach."""
        with self._database().session() as session:
            report = audience.forget(session, email)
            # The counters are keyed on hashes of the mailbox: gone with the address, so
            # nothing derived from it outlives it but the suppression hash.
            throttles = sum(
                throttle.forget(session, SIGNUP_MAIL, signup_mail_key(report.address, list_id))
                for list_id in session.scalars(select(MailingList.id))
            )
            sent = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.subscriber_id == report.subscriber_id,
                    Delivery.sent_at.is_not(None),
                )
            )
        removed = 0
        for path in OutboxTransport(self.settings.outbox_dir).recipient_files(report.address):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return replace(
            report,
            throttles=throttles,
            outbox_files=removed,
            not_reached=self._not_reached(int(sent or 0)),
        )

    def _not_reached(self, sent: int) -> tuple[str, ...]:
        """What still holds the address and Digest cannot erase: said, so the operator can."""
        where = "DIGEST_SMTP_URL's relay" if self.settings.smtp_url else "the outbox's readers"
        lines = [
            "log lines already written (the inbound server, webhooks and sends may quote the "
            "address): search the logs for it",
            "backups of the database and of the outbox folder taken before now",
        ]
        if sent:
            lines.insert(
                0,
                f"{sent} message(s) already handed to {where}, and the copies in the "
                "person's own mailbox",
            )
        return tuple(lines)

    @staticmethod
    def lookup_form(email: str) -> str | None:
        """``email`` as Digest stores addresses, or None if it cannot be one."""
        return audience.lookup_form(email)

    def smtp_server(self, host: str, port: int) -> Controller:
        """The inbound SMTP server (not started): bounces, complaints, mailto unsubscribes."""
        from digest.feedback.inbound import inbound_controller

        return inbound_controller(self._database(), self.settings, host, port)

    def poll_imap(self, url: str, *, interval: float | None = None) -> dict[str, int]:
        """Read the mailbox at ``url`` once and return what each message came to (verdict:
        count); with ``interval``, poll for ever, every ``interval`` seconds."""
        from digest.feedback.inbound import ImapConfig, poll_imap, poll_imap_forever

        try:
            config = ImapConfig.from_url(url)
        except ValueError as exc:  # urlsplit's own refusals: "imaps://[::1"
            raise ConfigError(f"--imap: {exc}") from exc
        if interval is not None:
            poll_imap_forever(self._database(), self.settings, config, interval)
            return {}
        counts = poll_imap(self._database(), self.settings, config)
        return {verdict.value: count for verdict, count in counts.items()}
