"""Tracked links and the open pixel as the web face serves them: where a click leads, and
whether the fetch is counted (only a GET, only while tracking is on; scanners marked)."""

from __future__ import annotations

from collections.abc import Callable

from digest.config import Settings
from digest.feedback import clicks
from digest.mail.tracking import CLICK, OPEN, LinkSigner, TrackedLink
from digest.store.db import Database

__all__ = ["Tracking"]


class Tracking:
    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database
        self._links = LinkSigner(settings.secret)

    def _verify(self, purpose: str, token: str) -> TrackedLink:
        """The link a token names; InputError for a forged or altered one."""
        return self._links.verify(purpose, token)

    def follow(self, token: str, *, count: bool) -> str:
        """Where a tracked link leads (its article's address); with ``count`` (a GET, not a
        HEAD) the click is recorded if tracking is on. InputError for a token that is not
        ours or names an article its edition did not carry; NotFoundError when it is gone.
        Links mailed while tracking was on keep leading to their articles once it is off."""
        link = self._verify(CLICK, token)
        with self._database().session() as session:
            url = clicks.target(session, link)
            if count and self.settings.track_clicks:
                clicks.record(session, link, clicks.ScannerRules.of(self.settings))
            return url

    def opened(self, token: str, *, count: bool) -> None:
        """Record an open (a GET of the pixel, tracking opens on); InputError for a bad token."""
        link = self._verify(OPEN, token)
        if count and self.settings.track_opens:
            with self._database().session() as session:
                clicks.record(session, link, clicks.ScannerRules.of(self.settings))
