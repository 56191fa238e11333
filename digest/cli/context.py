"""What every command is handed: the settings file named by ``--config`` and, made on first
use, the settings and the core. Nothing heavy is imported until a command needs it, so
``digest --help`` answers at once."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import click

from digest.errors import InputError

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.service.core import Digest


class App:
    """The CLI's handle on the core: one ``Digest``, built from the settings when first asked."""

    def __init__(
        self, config_file: str | None, *, core: Digest | None = None, require_site: bool = False
    ) -> None:
        """``core``: a core already made (a test's, on its own database); ``require_site``:
        refuse to run where no site is configured (every command but those that make one)."""
        self.config_file = config_file
        self.require_site = require_site
        self._settings: Settings | None = core.settings if core else None
        self._core: Digest | None = core

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from digest.config import load_settings

            self._settings = load_settings(self.config_file, require_site=self.require_site)
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

    def require_schema(self) -> None:
        """Say in one line (run `digest init`) if the database is not set up or out of date:
        before a command does anything, rather than as a traceback halfway through."""
        self.core.require_schema()


pass_app = click.make_pass_decorator(App)

#: A row id (edition, token): the columns are PostgreSQL INTEGER, so a larger number names
#: nothing and would only overflow the query.
ROW_ID = click.IntRange(1, 2**31 - 1)

_NEGATIVE = re.compile(r"-[0-9][0-9_.eE+-]*")


class NumberArgs(click.Command):
    """A command with a number argument: ``digest status -1`` is refused for its range
    ("-1 is not in the range 1<=x<...") rather than taken for an unknown option ``-1``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        kept: list[str] = []
        numbers: list[str] = []
        after_value_option = False
        for arg in args:
            if arg == "--":
                break
            if not after_value_option and _NEGATIVE.fullmatch(arg):
                numbers.append(arg)
            else:
                kept.append(arg)
            after_value_option = arg in takes_value
        rest = args[len(kept) + len(numbers) :]
        if numbers:
            # After "--" click reads them as arguments whatever they look like.
            args = [*kept, "--", *numbers, *rest[1:]]
        return super().parse_args(ctx, args)


def parse_date(value: str | None) -> dt.date | None:
    """``--date``'s value: YYYY-MM-DD or nothing."""
    from digest.service.core import parse_day

    try:
        return parse_day(value)
    except InputError as exc:
        raise InputError(f"--{exc}") from exc
