"""A mailing list's language: the digest's own words in it, its script's direction, and its
way of writing numbers. Dates are written by ``digest.edition.select.date_label``, as the
subject line needs them before anything is rendered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal

#: The digest's own words per language; anything else falls back to English.
#: Section names are the operator's and shown as configured.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "in_this_issue": "In this issue",
        "read_more": "Read more",
        "more_in": "{n} more in {section}",
        "also_in": "Also in",
        "view_in_browser": "View in browser",
        "preferences": "Manage preferences",
        "unsubscribe": "Unsubscribe",
        "why": "You are receiving this because you subscribed to {list} at {site}.",
    },
    "ur": {
        "in_this_issue": "اس شمارے میں",
        "read_more": "مزید پڑھیں",
        "more_in": "{section} میں مزید {n}",
        "also_in": "یہ خبر یہاں بھی",
        "view_in_browser": "براؤزر میں دیکھیں",
        "preferences": "ترجیحات کا انتظام",
        "unsubscribe": "ان سبسکرائب کریں",
        "why": "آپ کو یہ ای میل اس لیے ملی ہے کہ آپ نے {site} پر {list} کو سبسکرائب کیا ہے۔",
    },
    "ar": {
        "in_this_issue": "في هذا العدد",
        "read_more": "اقرأ المزيد",
        "more_in": "المزيد في {section} ({n})",
        "also_in": "وردت أيضًا في",
        "view_in_browser": "العرض في المتصفح",
        "preferences": "إدارة التفضيلات",
        "unsubscribe": "إلغاء الاشتراك",
        "why": "تصلك هذه الرسالة لأنك مشترك في {list} على {site}.",
    },
    "fr": {
        "in_this_issue": "Dans ce numéro",
        "read_more": "Lire la suite",
        "more_in": "{n} de plus dans {section}",
        "also_in": "Aussi dans",
        "view_in_browser": "Voir dans le navigateur",
        "preferences": "Gérer mes préférences",
        "unsubscribe": "Se désabonner",
        "why": "Vous recevez ce message car vous êtes abonné à {list} sur {site}.",
    },
    "de": {
        "in_this_issue": "In dieser Ausgabe",
        "read_more": "Weiterlesen",
        "more_in": "{n} weitere in {section}",
        "also_in": "Auch in",
        "view_in_browser": "Im Browser ansehen",
        "preferences": "Einstellungen verwalten",
        "unsubscribe": "Abmelden",
        "why": "Sie erhalten diese E-Mail, weil Sie {list} bei {site} abonniert haben.",
    },
    "es": {
        "in_this_issue": "En este número",
        "read_more": "Leer más",
        "more_in": "{n} más en {section}",
        "also_in": "También en",
        "view_in_browser": "Ver en el navegador",
        "preferences": "Gestionar preferencias",
        "unsubscribe": "Darse de baja",
        "why": "Recibes este correo porque te suscribiste a {list} en {site}.",
    },
}


@dataclass(frozen=True)
class Language:
    """What rendering needs to know of a list's language."""

    tag: str  # for lang="..."
    locale: Locale
    rtl: bool
    messages: Mapping[str, str]

    @classmethod
    def of(cls, code: str | None) -> Language:
        """The language ``code`` (``ur``, ``pt-BR``); unknown codes fall back to English."""
        try:
            locale = Locale.parse((code or "en").replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            locale = Locale.parse("en")
        return cls(
            tag=str(locale).replace("_", "-"),
            locale=locale,
            rtl=locale.character_order == "right-to-left",
            messages=MESSAGES.get(locale.language, MESSAGES["en"]),
        )

    def number(self, value: int) -> str:
        """``value`` written as the language writes numbers (``1,234`` in English, ``1.234`` in
        German)."""
        return format_decimal(value, locale=self.locale)
