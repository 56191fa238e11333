"""Rendering a digest: Jinja2, then premailer, once per edition and section variant, kept
under Gmail's clipping size; the text part wrapped for plain-text readers. Personal links stay
placeholders (``digest.render.placeholders``) until each recipient's message is made.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from digest.errors import TemplateError
from digest.render.context import DigestContext
from digest.render.placeholders import (
    CLICK_PREFIX,
    LINK_NAMES,
    PLACEHOLDER_PREFIX,
    PersonalTemplate,
    Placeholders,
)

log = logging.getLogger(__name__)

TEXT_WIDTH = 78


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
