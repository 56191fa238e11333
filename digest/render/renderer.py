"""Rendering a digest: Jinja2, then premailer, once per edition and section variant.

Per recipient only the personal links differ. They are rendered as opaque
placeholder tokens (letters and digits only, so neither autoescape nor
premailer nor a line wrap can alter them) and the output is split on them
once, so personalising is a join of ready segments. Each render draws a fresh
random nonce into its tokens: feed or form text is stored before the render,
so it cannot spell a token, and a personal link lands only where the template
put one.
"""

from __future__ import annotations

import logging
import re
import secrets
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from jinja2.sandbox import SandboxedEnvironment

from digest.edition.select import ArticleView, SectionBlock, date_label
from digest.errors import TemplateError

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.edition.build import Draft

log = logging.getLogger(__name__)

LINK_NAMES = ("unsubscribe", "preferences")
PLACEHOLDER_PREFIX = "DGSTLINK"
_NAME = re.compile(r"[a-z]+")
TEXT_WIDTH = 78

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


@dataclass(frozen=True)
class RenderedDigest:
    html: PersonalTemplate
    text: PersonalTemplate


#: Gmail clips an HTML part over about 102 KB, hiding what follows it, the
#: unsubscribe link too. Every edition's HTML stays under this many bytes.
HTML_BUDGET = 100_000
#: Room kept in the budget for the personal links that replace the placeholders.
LINK_ALLOWANCE = 1_000
#: Room kept for each tracked article link on top of that: ``BASE/c/`` and the token (three
#: ids and a 22-character tag) in place of a 30-odd character placeholder.
TRACKED_LINK_ALLOWANCE = 100

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


@dataclass(frozen=True)
class DigestContext:
    """Everything the digest templates see."""

    site: Mapping[str, str]
    mailing_list: Mapping[str, str]
    edition: Mapping[str, str]
    sections: list[SectionBlock]
    links: Mapping[str, str]
    why_text: str
    language: Language = field(default_factory=lambda: Language.of("en"))
    #: The links left to each recipient: rendered as placeholder tokens.
    personal: tuple[str, ...] = ()
    #: Article links go through the click counter (DIGEST_TRACK_CLICKS): each article's URL
    #: is rendered as the placeholder of its tracked link.
    track_clicks: bool = False

    def as_dict(self, placeholders: Placeholders | None = None) -> dict[str, Any]:
        """The template variables; personal links as the tokens of ``placeholders``
        (fresh ones if not given)."""
        lang = self.language
        links = dict(self.links)
        sections = self.sections
        if self.personal:
            placeholders = placeholders or Placeholders.fresh(self.personal)
            links.update(
                (name, placeholders.token(name))
                for name in self.personal
                if article_of(name) is None
            )
            if self.track_clicks:
                # Every use of an article's URL, whatever the template, becomes its tracked
                # link: an operator's own template cannot leave one untracked by accident.
                # The other reports of a story ("also in") are articles too.
                token = placeholders.token
                sections = [
                    replace(
                        s,
                        articles=[
                            replace(
                                a,
                                url=token(article_link(a.id)),
                                also_in=tuple(
                                    replace(o, url=token(article_link(o.id))) for o in a.also_in
                                ),
                            )
                            for a in s.articles
                        ],
                    )
                    for s in sections
                ]
        return {
            "site": self.site,
            "mailing_list": self.mailing_list,
            "edition": self.edition,
            "sections": sections,
            "links": links,
            "why_text": self.why_text,
            "lang": lang.tag,
            "dir": "rtl" if lang.rtl else "ltr",
            # Where lines start and end: mirrored for right-to-left languages.
            "start": "right" if lang.rtl else "left",
            "end": "left" if lang.rtl else "right",
            "arrow": "\u2190" if lang.rtl else "\u2192",
            "t": lang.messages,
            "more_text": self.more_text,
        }

    def fallback(self) -> dict[str, str]:
        """The stand-in of each tracked link: the article's own URL, a blank pixel."""
        stand_ins = {
            article_link(article_id): url
            for s in self.sections
            for a in s.articles
            for article_id, url in _article_links(a)
        }
        stand_ins[PIXEL] = BLANK_PIXEL
        return {name: stand_ins[name] for name in self.personal if name in stand_ins}

    def more_text(self, section: SectionBlock) -> str:
        """``12 more in Business``, in the list's language."""
        count = format_decimal(section.more, locale=self.language.locale)
        return self.language.messages["more_in"].format(n=count, section=section.name)


def _article_links(article: ArticleView) -> list[tuple[int, str]]:
    """(id, URL) of an article's links: its own, then its story's other reports'."""
    return [(article.id, article.url), *((o.id, o.url) for o in article.also_in)]


def digest_context(
    settings: Settings, draft: Draft, links: Mapping[str, str] | None = None
) -> DigestContext:
    """The template context of one edition variant; personal links stay placeholders
    unless ``links`` gives them."""
    lst = draft.mailing_list
    language = Language.of(lst.language)
    archive = f"{settings.base_url.rstrip('/')}/archive/{lst.slug}/{draft.day.isoformat()}"
    all_links = {
        "view_in_browser": archive,
        # "N more in Section" points at the section's anchor on this page.
        "archive": archive,
    }
    all_links.update(links or {})
    personal = tuple(name for name in LINK_NAMES if name not in all_links)
    if settings.track_opens and PIXEL not in all_links:
        personal += (PIXEL,)
    if settings.track_clicks:
        personal += tuple(
            dict.fromkeys(
                article_link(article_id)
                for s in draft.sections
                for a in s.articles
                for article_id, _ in _article_links(a)
            )
        )
    return DigestContext(
        site={
            "name": settings.site_name,
            "url": settings.site_url,
            "postal_address": settings.postal_address,
        },
        mailing_list={"name": lst.name, "slug": lst.slug},
        edition={
            "date_label": date_label(draft.day, language.tag),
            "subject": draft.subject,
            "preheader": draft.preheader,
        },
        sections=draft.sections,
        links=all_links,
        why_text=language.messages["why"].format(list=lst.name, site=settings.site_name),
        language=language,
        personal=personal,
        track_clicks=settings.track_clicks,
    )


class Renderer:
    """A sandboxed Jinja2 environment, autoescaping HTML, over the templates folder and,
    in front of it, a list's own folder (whose files win, name for name)."""

    def __init__(self, templates_dir: str | Path, list_dir: str | Path | None = None) -> None:
        self.templates_dir = str(templates_dir)
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(self.templates_dir)]
        if list_dir:
            if not Path(list_dir).is_dir():
                raise TemplateError(str(list_dir), None, "template folder not found")
            loaders.insert(0, jinja2.FileSystemLoader(str(list_dir)))
        # Sandboxed: a list's templates may come from someone other than the
        # developers, and must not reach Python internals through attributes.
        self.env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._per_list: dict[str, Renderer] = {}

    def for_list(self, list_dir: str | None) -> Renderer:
        """The renderer of a list with its own template folder (this one if it has none);
        kept, so its compiled templates are reused for every edition of the list."""
        if not list_dir:
            return self
        renderer = self._per_list.get(list_dir)
        if renderer is None:
            renderer = self._per_list[list_dir] = Renderer(self.templates_dir, list_dir)
        return renderer

    def render_template(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one template; any failure in it becomes a TemplateError with file and line."""
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.filename or name, exc.lineno, exc.message or str(exc)) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(name, None, "template not found") from exc
        try:
            return template.render(context)
        except jinja2.TemplateSyntaxError as exc:  # in an included template
            raise TemplateError(exc.filename or name, exc.lineno, exc.message or str(exc)) from exc
        except Exception as exc:
            # Not only Jinja2's errors: an operator's template can divide by zero or add
            # a list to a number, and that too must be one clear line, not a traceback.
            where, line = _template_position(exc, template.filename or name)
            raise TemplateError(where, line, f"{type(exc).__name__}: {exc}") from exc

    def check(self, context: DigestContext) -> None:
        """Render both parts without inlining: raises TemplateError, cheaply, if either fails."""
        values = context.as_dict()
        self.render_template("email/digest.html", values)
        self.render_template("email/digest.txt", values)

    def render_digest(self, context: DigestContext, budget: int = HTML_BUDGET) -> RenderedDigest:
        """The HTML (CSS inlined) and text parts, with placeholders where personal links go.

        The list's per-section limit keeps an edition small; if the HTML is still
        over ``budget`` bytes (long teasers, many sections) every section is cut
        to fewer articles, the rest counted in its "more" link, and rendered again.
        """
        placeholders = Placeholders.fresh(context.personal or LINK_NAMES)
        tracked = (
            re.compile(f"{PLACEHOLDER_PREFIX}{placeholders.nonce}{CLICK_PREFIX}[a-j]+0")
            if context.track_clicks
            else None
        )
        while True:
            html = self.render_template("email/digest.html", context.as_dict(placeholders))
            # Inlining only adds: an edition already over budget is cut before paying for it.
            if _over(html, budget, tracked) and (smaller := _trim(context, html, budget, tracked)):
                context = smaller
                continue
            html = inline_css(html)
            if _over(html, budget, tracked) and (smaller := _trim(context, html, budget, tracked)):
                context = smaller
                continue
            break
        if _over(html, budget, tracked):
            log.warning(
                "digest HTML is %d bytes even at one article per section", _size(html, tracked)
            )
        text = wrap_text(self.render_template("email/digest.txt", context.as_dict(placeholders)))
        fallback = context.fallback()
        return RenderedDigest(
            PersonalTemplate.split(html, placeholders, fallback),
            PersonalTemplate.split(text, placeholders, fallback),
        )


def _size(html: str, tracked: re.Pattern[str] | None = None) -> int:
    """The bytes the HTML will have once personalised: ``tracked`` finds the placeholders of
    tracked article links, each of which may grow by ``TRACKED_LINK_ALLOWANCE``."""
    extra = len(tracked.findall(html)) * TRACKED_LINK_ALLOWANCE if tracked else 0
    return len(html.encode("utf-8")) + LINK_ALLOWANCE + extra


def _over(html: str, budget: int, tracked: re.Pattern[str] | None = None) -> bool:
    return _size(html, tracked) > budget


def _trim(
    context: DigestContext, html: str, budget: int, tracked: re.Pattern[str] | None = None
) -> DigestContext | None:
    """The context with fewer articles per section, about enough to fit ``budget``;
    None when every section is down to one article already."""
    shown = max((len(s.articles) for s in context.sections), default=0)
    if shown <= 1:
        return None
    # Proportional guess with a margin, and always at least one fewer.
    cap = max(1, min(shown - 1, int(shown * budget * 0.9 / _size(html, tracked))))
    sections = [
        replace(s, articles=s.articles[:cap], more=s.more + max(0, len(s.articles) - cap))
        for s in context.sections
    ]
    return replace(context, sections=sections)


def _template_position(exc: BaseException, default: str) -> tuple[str, int | None]:
    """The template file and line an error came from, read off the traceback Jinja2
    rewrites so that template frames carry the template's file name and line."""
    where, line = default, None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.endswith(".py") and not filename.startswith("<"):
            where, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return where, line


def inline_css(html: str) -> str:
    """Move the ``<style>`` rules into style attributes (Gmail and Outlook drop many
    ``<style>`` rules); media queries stay in the head, where clients that honour them look."""
    # Imported here: premailer (with lxml and cssutils) is a fifth of a second of start-up
    # that commands which never render, such as `digest status`, should not pay.
    from premailer import Premailer

    return str(
        Premailer(
            html,
            allow_network=False,
            keep_style_tags=True,
            strip_important=False,
            remove_classes=False,
            cssutils_logging_level=logging.CRITICAL,
            disable_validation=True,
        ).transform()
    )


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap every line to ``width`` columns; URLs and placeholders are never broken."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line.rstrip())
            continue
        out.extend(
            textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
        )
    # Templates leave runs of blank lines where blocks were skipped; keep at most one.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
