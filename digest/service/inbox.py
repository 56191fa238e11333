"""The loop back from the inbox, as the faces start it: the inbound SMTP server, IMAP polling,
and forgetting a person on request. The decisions (what a report means, whether it is signed)
are ``digest.feedback``'s; the rules it sets off are ``digest.audience``'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from digest import audience
from digest.audience import ForgetReport
from digest.config import Settings
from digest.errors import ConfigError
from digest.store.db import Database

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

__all__ = ["ForgetReport", "Inbox"]


class Inbox:
    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database

    def forget(self, email: str) -> ForgetReport:
        """Erase a person (see ``digest.audience.forget``); InputError if ``email`` cannot be
        an address."""
        with self._database().session() as session:
            return audience.forget(session, email)

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
