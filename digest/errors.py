"""The exceptions Digest raises, so callers can catch one family at a time.

::

    DigestError                     anything Digest reports to an operator
    ├── ConfigError                 a setting is missing or malformed
    ├── NotFoundError               an unknown list, section, source or edition
    ├── InputError                  operator input that cannot be used
    │   └── CsvRowError             one bad row of a subscriber import (has .line)
    ├── FeedError                   a source could not be fetched or parsed (has .url)
    ├── TemplateError               a template failed to render (has .template, .line)
    └── TransportError              the mail transport failed as a whole (has .transient,
                                    .unanswered)

Third-party exceptions are translated into these at the module that talks to
the third party (``raise FeedError(...) from exc``), so the CLI can print one
clear line for any of them and exit non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence


class DigestError(Exception):
    """Base class of every error Digest reports to an operator."""


class ConfigError(DigestError):
    """A setting is missing or malformed."""


class NotFoundError(DigestError):
    """An object named by the operator does not exist."""

    def __init__(self, kind: str, key: object, suggestions: Sequence[str] = ()) -> None:
        hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown {kind}: {key}{hint}")
        self.kind = kind
        self.key = key
        #: The closest existing names, best first (a typo's likely meaning).
        self.suggestions = tuple(suggestions)


class InputError(DigestError):
    """Operator input (an argument, a file) that cannot be used."""


class CsvRowError(InputError):
    """One row of a subscriber CSV import is unusable."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class FeedError(DigestError):
    """A source could not be fetched or parsed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class TemplateError(DigestError):
    """A template failed to load or render."""

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        where = f"{template}:{line}" if line else template
        super().__init__(f"template {where}: {reason}")
        self.template = template
        self.line = line
        self.reason = reason


class TransportError(DigestError):
    """The mail transport failed as a whole (not one recipient).

    ``transient`` says whether trying again later may succeed (a connection
    refused, a 421) or not (authentication rejected). ``unanswered``: the connection was
    lost after the whole message was sent and before the server answered, so the server
    may have taken it (RFC 1047): sending it again may deliver a second copy.
    """

    def __init__(self, message: str, *, transient: bool = True, unanswered: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.unanswered = unanswered
