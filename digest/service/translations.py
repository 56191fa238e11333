"""The words of the public pages and of the sign-up notices, in each shipped language.

The catalogues are gettext ``.po`` files, ``digest/locale/<language>/LC_MESSAGES/messages.po``,
made with Babel (``docs/web.md`` says how). They are read as they are and compiled in memory
once per process, not compiled to ``.mo`` files at install time: setuptools has no step that
runs for both ``pip install -e .`` (which builds nothing) and ``pip install .``, so a compiled
file would be missing from one of them or left behind its source in the other. Reading a
``.po`` costs 10-50 ms, once per process and language (measured on the Urdu catalogue).

English is the source language: its words are the message ids, so it has no catalogue. A
language without a catalogue is spoken in English, and then left to right whatever its script
(the page's ``lang`` and ``dir`` say what its text is, and its text is English).
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from digest.render.language import Language

__all__ = ["DOMAIN", "LOCALE_DIR", "N_", "SOURCE_LANGUAGE", "Wording", "shipped", "wording"]

#: Where the catalogues are (package data).
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
#: The gettext domain: the catalogues' file name.
DOMAIN = "messages"
#: The language the message ids are written in.
SOURCE_LANGUAGE = "en"


def N_(message: str) -> str:
    """Mark ``message`` for extraction where it is translated later, when its language is
    known (a module constant)."""
    return message


@dataclass(frozen=True)
class Wording:
    """One language's words: gettext over its catalogue, its direction and its numbers.

    As in Jinja2's "newstyle" gettext, every message is ``%``-formatted with the values given
    (so a literal ``%`` is written ``%%``), and ``ngettext`` adds ``num``, the count as the
    language writes numbers.
    """

    tag: str
    rtl: bool
    translations: gettext.NullTranslations

    @property
    def direction(self) -> str:
        """The value of ``dir`` for text in this language."""
        return "rtl" if self.rtl else "ltr"

    def gettext(self, message: str, **values: object) -> str:
        return self.translations.gettext(message) % values

    def ngettext(self, singular: str, plural: str, n: float, **values: object) -> str:
        return self.plural_form(singular, plural, n) % {"num": self.number(n), **values}

    def plural_form(self, singular: str, plural: str, n: float) -> str:
        """The translation of the message's form for ``n``, not yet formatted."""
        # gettext picks plural forms by integer; a fraction takes the "other" form, as it does
        # in every shipped language (CLDR: "1.5 hours", "1.5 گھنٹے").
        count = int(n) if float(n).is_integer() else 2
        return self.translations.ngettext(singular, plural, count)

    def number(self, value: float) -> str:
        """``value`` as the language writes numbers."""
        return format_decimal(value, locale=self.tag.replace("-", "_"))


@functools.cache
def shipped() -> tuple[str, ...]:
    """The languages there are words for: English, then each catalogue's, alphabetically."""
    found = sorted(
        path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )
    return (SOURCE_LANGUAGE, *(tag for tag in found if tag != SOURCE_LANGUAGE))


def negotiate(preferred: Iterable[str]) -> str | None:
    """The shipped language a visitor prefers most (``preferred``: their browser's
    Accept-Language tags, best first), a region falling back to its language (``ur-PK`` to
    ``ur``) before a less preferred language is tried; None if none is shipped."""
    tags = [tag for tag in preferred if tag != "*"]
    return negotiate_locale(tags, list(shipped()), sep="-")


def wording(language: str | None) -> Wording:
    """The shipped language closest to ``language`` (a list's Babel code: ``ur``, ``ur-PK``,
    ``pt_BR``): the same code, else its base language, else English."""
    return _wording(_closest(language))


def _closest(language: str | None) -> str:
    try:
        locale = Locale.parse((language or SOURCE_LANGUAGE).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return SOURCE_LANGUAGE
    available = shipped()
    for tag in (str(locale).replace("_", "-"), locale.language):
        if tag in available:
            return tag
    return SOURCE_LANGUAGE


@functools.cache
def _wording(tag: str) -> Wording:
    return Wording(tag=tag, rtl=Language.of(tag).rtl, translations=_translations(tag))


def _translations(tag: str) -> gettext.NullTranslations:
    if tag == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = LOCALE_DIR / tag / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=tag.replace("-", "_"), domain=DOMAIN)
    compiled = io.BytesIO()
    # Fuzzy and empty translations are left out, so those messages stay in English.
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
