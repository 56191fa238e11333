"""Rendering an edition once per variant: personal links as placeholders (``placeholders``),
the list's language (``language``), what the templates see (``context``), and Jinja2 with
premailer under a size budget (``renderer``). Above ``edition``, below ``mail``."""

from digest.render.context import DigestContext, digest_context
from digest.render.language import MESSAGES, Language
from digest.render.placeholders import (
    BLANK_PIXEL,
    CLICK_PREFIX,
    LINK_NAMES,
    PIXEL,
    PLACEHOLDER_PREFIX,
    PersonalTemplate,
    Placeholders,
    article_link,
    article_of,
    is_link_name,
    missing_link,
)
from digest.render.renderer import (
    HTML_BUDGET,
    LINK_ALLOWANCE,
    TEXT_WIDTH,
    TRACKED_LINK_ALLOWANCE,
    RenderedDigest,
    Renderer,
    inline_css,
    wrap_text,
)

__all__ = [
    "BLANK_PIXEL",
    "CLICK_PREFIX",
    "HTML_BUDGET",
    "LINK_ALLOWANCE",
    "LINK_NAMES",
    "MESSAGES",
    "PIXEL",
    "PLACEHOLDER_PREFIX",
    "TEXT_WIDTH",
    "TRACKED_LINK_ALLOWANCE",
    "DigestContext",
    "Language",
    "PersonalTemplate",
    "Placeholders",
    "RenderedDigest",
    "Renderer",
    "article_link",
    "article_of",
    "digest_context",
    "inline_css",
    "is_link_name",
    "missing_link",
    "wrap_text",
]
