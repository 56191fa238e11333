"""What every command is handed: the settings file named by ``--config`` and, made on first
use, the settings and the core. Nothing heavy is imported until a command needs it, so
``digest --help`` answers at once."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from digest.errors import InputError

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.service.core import Digest
    from digest.store.db import Database


class App:
    """The CLI's handle on the core: one ``Digest``, built from the settings when first asked."""

    def __init__(self, config_file: str | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None
        self._core: Digest | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.config_file)
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        # Only before the core is made (the demo narrows the settings first).
        self._settings = value
        self._core = None

    @property
    def core(self) -> Digest:
        if self._core is None:
            from digest.service.core import Digest

            self._core = Digest(self.settings)
        return self._core

    @property
    def db(self) -> Database:
        """The database, once it is known to be set up (else one line: run `digest init`)."""
        return self.core.require_schema()

    def fresh_db(self) -> Database:
        """The database without the schema check (for ``init`` and ``demo``)."""
        return self.core.db


pass_app = click.make_pass_decorator(App)


def parse_date(value: str | None) -> dt.date | None:
    """``--date``'s value: YYYY-MM-DD or nothing."""
    from digest.service.core import parse_day

    try:
        return parse_day(value)
    except InputError as exc:
        raise InputError(f"--{exc}") from exc
