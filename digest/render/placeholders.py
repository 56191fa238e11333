"""Personal links as placeholders: what lets a digest be rendered once and personalised per
recipient by a join.

Per recipient only the personal links differ. They are rendered as opaque
placeholder tokens (letters and digits only, so neither autoescape nor
premailer nor a line wrap can alter them) and the output is split on them
once, so personalising is a join of ready segments. Each render draws a fresh
random nonce into its tokens: feed or form text is stored before the render,
so it cannot spell a token, and a personal link lands only where the template
put one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from digest.errors import TemplateError

LINK_NAMES = ("unsubscribe", "preferences")
PLACEHOLDER_PREFIX = "DGSTLINK"
_NAME = re.compile(r"[a-z]+")

#: The open pixel's link (DIGEST_TRACK_OPENS): a personal link that, unlike ``LINK_NAMES``,
#: has a stand-in where there is no recipient (a preview, the archive, a test copy).
PIXEL = "pixel"
#: A transparent 1x1 GIF: the pixel's stand-in, which counts nothing.
BLANK_PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
#: Tracked article links (DIGEST_TRACK_CLICKS) are named ``click`` + the article id with its
#: digits spelt a-j: link names stay letters only, so a token's closing 0 still ends it.
CLICK_PREFIX = "click"
_CLICK_NAME = re.compile(r"click([a-j]+)")
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")
_LETTERS_AS_DIGITS = str.maketrans("abcdefghij", "0123456789")


def article_link(article_id: int) -> str:
    """The personal link name of article ``article_id``'s tracked link."""
    return CLICK_PREFIX + str(int(article_id)).translate(_DIGITS_AS_LETTERS)


def article_of(name: str) -> int | None:
    """The article id a tracked link's name stands for; None for any other link."""
    found = _CLICK_NAME.fullmatch(name)
    return int(found.group(1).translate(_LETTERS_AS_DIGITS)) if found else None


def is_link_name(name: str) -> bool:
    return name in LINK_NAMES or name == PIXEL or _CLICK_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Placeholders:
    """The placeholder tokens of one render: ``DGSTLINK<nonce><name>0``.

    The nonce is 64 random bits drawn per render and never leaves the process
    (every token is replaced before anything is shown or sent), so text that
    was written before the render cannot contain a token, however it is spelt.
    """

    nonce: str
    names: tuple[str, ...] = LINK_NAMES

    def __post_init__(self) -> None:
        # Letters only, and a digit after the name: the token stays one word that no
        # escaping or wrapping touches, and one name can never swallow the start of another.
        if not self.names or not all(_NAME.fullmatch(n) for n in self.names):
            raise ValueError(f"personal link names must be lower-case letters: {self.names}")
        if not re.fullmatch(r"[0-9a-f]{16,}", self.nonce):
            raise ValueError("placeholder nonce must be at least 16 hex digits")

    @classmethod
    def fresh(cls, names: Iterable[str] = LINK_NAMES) -> Placeholders:
        return cls(secrets.token_hex(8), tuple(names))

    def token(self, name: str) -> str:
        if name not in self.names:
            raise ValueError(f"not a personal link: {name}")
        return f"{PLACEHOLDER_PREFIX}{self.nonce}{name}0"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Exactly this render's tokens, capturing the link name; nothing else matches."""
        names = "|".join(re.escape(n) for n in self.names)
        return re.compile(f"{PLACEHOLDER_PREFIX}{self.nonce}({names})0")


@dataclass(frozen=True)
class PersonalTemplate:
    """Rendered output split on placeholders: even items are text, odd items link names.

    Every link name is one of ``LINK_NAMES`` or a tracked link (an article's, the open
    pixel), checked when the template is made, so filling it needs only the recipient's
    links. Each tracked link has a stand-in in ``fallback`` (the article's own URL, a blank
    pixel) for a fill without a recipient: previews, the archive, test copies.
    """

    segments: tuple[str, ...]
    fallback: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        names = set(self.segments[1::2])
        unknown = {n for n in names if not is_link_name(n)}
        if unknown:
            raise ValueError(f"unknown personal links in a template: {sorted(unknown)}")
        unbacked = names - set(LINK_NAMES) - set(self.fallback)
        if unbacked:
            raise ValueError(f"tracked links without a stand-in: {sorted(unbacked)}")

    @classmethod
    def split(
        cls,
        rendered: str,
        placeholders: Placeholders,
        fallback: Mapping[str, str] | None = None,
    ) -> PersonalTemplate:
        """Split ``rendered`` on the tokens of ``placeholders``, the ones its render used."""
        return cls(tuple(placeholders.pattern.split(rendered)), dict(fallback or {}))

    def value(self, name: str, values: Mapping[str, str]) -> str:
        """The link ``name`` from ``values``, else its stand-in; TemplateError if neither."""
        found = values.get(name)
        if found is None:
            found = self.fallback.get(name)
            if found is None:
                raise missing_link(name)
        return found

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value in ``values``.

        Raises TemplateError (a DigestError, so a send records one failed recipient
        and goes on) if ``values`` lacks a link this template has.
        """
        parts = list(self.segments)
        for i in range(1, len(parts), 2):
            parts[i] = self.value(parts[i], values)
        return "".join(parts)

    @property
    def names(self) -> set[str]:
        return set(self.segments[1::2])


def missing_link(name: object) -> TemplateError:
    return TemplateError("personal links", None, f"no value given for the {name} link")
