"""Rendering a digest: Jinja2, then premailer, once per edition and section variant.

Per recipient only the personal links differ. They are rendered as opaque
placeholder tokens (letters and digits only, so neither autoescape nor
premailer nor a line wrap can alter them) and the output is split on them
once, so personalising is a join of ready segments.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from premailer import Premailer

from digest.edition import SectionBlock
from digest.errors import TemplateError

LINK_NAMES = ("unsubscribe", "preferences")
PLACEHOLDER_PREFIX = "DGSTLINK0"
_PLACEHOLDER = re.compile(PLACEHOLDER_PREFIX + r"([a-z]+)0")
TEXT_WIDTH = 78


def placeholder(name: str) -> str:
    return f"{PLACEHOLDER_PREFIX}{name}0"


@dataclass(frozen=True)
class PersonalTemplate:
    """Rendered output split on placeholders: even items are text, odd items link names."""

    segments: tuple[str, ...]

    @classmethod
    def split(cls, rendered: str) -> PersonalTemplate:
        return cls(tuple(_PLACEHOLDER.split(rendered)))

    def fill(self, values: Mapping[str, str]) -> str:
        parts = list(self.segments)
        for i in range(1, len(parts), 2):
            parts[i] = values[parts[i]]
        return "".join(parts)

    @property
    def names(self) -> set[str]:
        return set(self.segments[1::2])


@dataclass(frozen=True)
class RenderedDigest:
    html: PersonalTemplate
    text: PersonalTemplate


@dataclass(frozen=True)
class DigestContext:
    """Everything the digest templates see."""

    site: Mapping[str, str]
    mailing_list: Mapping[str, str]
    edition: Mapping[str, str]
    sections: list[SectionBlock]
    links: Mapping[str, str]
    why_text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "mailing_list": self.mailing_list,
            "edition": self.edition,
            "sections": self.sections,
            "links": self.links,
            "why_text": self.why_text,
        }


class Renderer:
    """A Jinja2 environment over a templates folder, with autoescape on for HTML."""

    def __init__(self, templates_dir: str | Path) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render_template(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one template; any Jinja2 failure becomes a TemplateError with file and line."""
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.filename or name, exc.lineno, exc.message or str(exc)) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(name, None, "template not found") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(name, _template_line(exc, name), str(exc)) from exc

    def render_digest(self, context: DigestContext) -> RenderedDigest:
        """The HTML (CSS inlined) and text parts, with placeholders where personal links go."""
        values = context.as_dict()
        html = inline_css(self.render_template("email/digest.html", values))
        text = wrap_text(self.render_template("email/digest.txt", values))
        return RenderedDigest(PersonalTemplate.split(html), PersonalTemplate.split(text))


def _template_line(exc: BaseException, name: str) -> int | None:
    """The template line a runtime error came from, read off the traceback Jinja2 rewrites."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def inline_css(html: str) -> str:
    """Move the ``<style>`` rules into style attributes (Gmail and Outlook drop many
    ``<style>`` rules); media queries stay in the head, where clients that honour them look."""
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
