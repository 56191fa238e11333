"""The public pages' catalogues: every message translated, nothing left out of them, and the
language a list's code is spoken in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from digest.service import translations
from digest.service.translations import DOMAIN, LOCALE_DIR

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")
TAG = re.compile(r"</?[a-z]+>")


def _catalogue(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _po_files() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def _ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def _forms(message: Message) -> tuple[list[str], list[str]]:
    """The message's English forms and its translated forms."""
    ids = [message.id] if isinstance(message.id, str) else list(message.id)
    strings = [message.string] if isinstance(message.string, str) else list(message.string)
    return ids, strings


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What ``pybabel extract`` finds today, run as docs/web.md says."""
    out = tmp_path_factory.mktemp("extract") / "messages.pot"
    babel_cfg = str(ROOT / "babel.cfg")
    command = ["pybabel", "-q", "extract", "-F", babel_cfg, "--no-location", "-o", str(out)]
    CommandLineInterface().run([*command, str(ROOT)])
    return _catalogue(out)


def test_urdu_is_shipped() -> None:
    """English (the message ids) and Urdu are the shipped languages."""
    assert translations.shipped() == ("en", "ur")
    assert [p.parent.parent.name for p in _po_files()] == ["ur"]


@pytest.mark.parametrize("path", _po_files(), ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated(path: Path) -> None:
    """No message of a shipped catalogue has an empty or fuzzy translation (either would show
    in English on that language's pages)."""
    catalog = _catalogue(path, path.parent.parent.name)
    untranslated = [m.id for m in catalog if m.id and ("fuzzy" in m.flags or not all(_forms(m)[1]))]
    assert untranslated == []


@pytest.mark.parametrize("path", _po_files(), ids=lambda p: p.parent.parent.name)
def test_translations_keep_placeholders_and_markup(path: Path) -> None:
    """Each translation has the placeholders and tags of its English message, no more, no
    fewer: a missing ``%(list)s`` would fail the page, a typo in one would too."""
    wrong = []
    for message in _catalogue(path, path.parent.parent.name):
        if not message.id:
            continue
        ids, strings = _forms(message)
        # The singular may say "once" or "a minute" instead of the count.
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            have = set(PLACEHOLDER.findall(string))
            if not have <= wanted or sorted(TAG.findall(string)) != sorted(TAG.findall(ids[0])):
                wrong.append(ids[0])
        if len(strings) > 1 and set(PLACEHOLDER.findall(strings[-1])) != set(
            PLACEHOLDER.findall(ids[-1])
        ):
            wrong.append(ids[-1])
    assert wrong == []


@pytest.mark.heavy  # runs Babel's extraction over the package and templates
def test_extraction_finds_nothing_the_catalogues_lack(extracted: Catalog) -> None:
    """Running Babel's extraction over the code and templates finds exactly the messages of
    the template and of every catalogue: a new English string without a translation (or a
    translation of a string no longer used) fails here."""
    found = _ids(extracted)
    assert len(found) > 50
    for path in [LOCALE_DIR / f"{DOMAIN}.pot", *_po_files()]:
        catalog = _ids(_catalogue(path))
        missing, unused = sorted(found - catalog), sorted(catalog - found)
        assert (missing, unused) == ([], []), f"{path.name}: update it as docs/web.md says"


def test_a_list_language_is_spoken_in_its_closest_shipped_language() -> None:
    """``ur`` and ``ur-PK`` get Urdu, right to left; a language without a catalogue (Arabic,
    French) or no language gets English, left to right, as its text is English."""
    for code in ("ur", "ur-PK", "ur_IN"):
        urdu = translations.wording(code)
        assert (urdu.tag, urdu.direction) == ("ur", "rtl")
        assert urdu.gettext("Subscribe") == "سبسکرائب کریں"
    for code in ("ar", "fr", "en-GB", None, "not a language"):
        english = translations.wording(code)
        assert (english.tag, english.direction) == ("en", "ltr")
        assert english.gettext("Subscribe") == "Subscribe"


def test_plural_forms_and_values_follow_the_language() -> None:
    """ngettext picks the form by count (a fraction takes the plural) and writes the count as
    the language writes numbers; values fill the message's placeholders."""
    english = translations.wording("en")
    minute = ("Please try again in about a minute.", "Please try again in about %(num)s minutes.")
    assert english.ngettext(*minute, 1) == "Please try again in about a minute."
    assert english.ngettext(*minute, 1500) == "Please try again in about 1,500 minutes."
    assert english.ngettext(*minute, 1.5) == "Please try again in about 1.5 minutes."
    urdu = translations.wording("ur")
    assert urdu.ngettext(*minute, 5) == "براہِ کرم تقریباً 5 منٹ بعد دوبارہ کوشش کریں۔"
    assert urdu.gettext("Subscribe to %(list)s", list="Daily") == "Daily کو سبسکرائب کریں"
    # A message no catalogue has yet is shown in English rather than failing the page.
    assert urdu.gettext("Not in any catalogue %(x)s", x=1) == "Not in any catalogue 1"


def test_a_browser_gets_the_shipped_language_it_prefers_most() -> None:
    """Accept-Language tags, best first: a region counts as its language (``ur-PK`` is Urdu,
    before a less preferred English), and no shipped language among them gives None."""
    assert translations.negotiate(["ur-PK", "en"]) == "ur"
    assert translations.negotiate(["en-US", "ur"]) == "en"
    assert translations.negotiate(["fr", "de", "*"]) is None
    assert translations.wording(translations.negotiate(["UR"])).tag == "ur"
