"""Turning untrusted feed text into inert plain text: headlines and teasers."""

from __future__ import annotations

import html
import re

import nh3

# C0/C1 control characters (tab, CR and LF included) and Unicode line and
# paragraph separators: none may survive into a headline, which ends up in a
# Subject header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Bidirectional embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069)
# reorder everything up to their terminator: "Invoice\u202efdp.exe" shows as
# "Invoiceexe.pdf", and an unterminated override flips the rest of a subject or a
# page (the Trojan Source trick, CVE-2021-42574). Nothing a feed or a form sends
# needs them: the Unicode bidi algorithm lays out Urdu and Arabic text by itself.
# The marks U+200E, U+200F and U+061C stay: they are invisible strong characters
# that only settle where neighbouring punctuation goes, cannot reverse a run of
# text, and Urdu and Arabic writers use them to place numbers and punctuation.
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")
# Where a block element ends, the text of the next one must not run into it.
# WordPress ends every excerpt with a "read more" marker: "[…]" or "[...]".
_MORE_MARKER = re.compile(r"\s*\[(?:…|\.\.\.|&hellip;)\]\s*$")
_BLOCK_END = re.compile(r"</(p|div|li|h[1-6]|blockquote|tr|td|figcaption)\s*>|<br\s*/?>", re.I)

TEASER_LENGTH = 200
ELLIPSIS = "…"


def plain_text(markup: str | None) -> str:
    """Feed markup or text as one line of plain text: no tags, entities decoded, no controls."""
    if not markup:
        return ""
    spaced = _BLOCK_END.sub(lambda m: m.group(0) + " ", markup)
    # nh3 (an HTML5 parser) removes every tag, and with them scripts and
    # styles whole; what is left is text with entities still encoded.
    stripped = nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"})
    text = html.unescape(stripped)
    return inert(text)


def inert(text: str) -> str:
    """``text`` on one line with single spaces: no control characters, no line or paragraph
    separators, no bidirectional overrides or isolates."""
    if not text.isascii():  # the common case per recipient skips a regex pass
        text = _BIDI_CONTROL.sub("", text)
    # str.split() splits on exactly the characters \s matches, faster than a regex.
    return " ".join(_CONTROL.sub(" ", text).split())


def one_line(text: str | None, limit: int = 500) -> str:
    """Plain text safe to put in a header: no controls, no bidi overrides, no line breaks,
    bounded length."""
    return cut_at_word(inert(text or ""), limit)


def cut_at_word(text: str, limit: int = TEASER_LENGTH) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS) + 1]
    space = head.rfind(" ")
    # A single enormous word has no boundary worth keeping: cut it hard.
    head = head[:space] if space > limit // 2 else head[: limit - len(ELLIPSIS)]
    return head.rstrip(" ,;:.-–—") + ELLIPSIS


def teaser(summary: str | None, content: str | None, limit: int = TEASER_LENGTH) -> str:
    """The teaser: the summary as plain text, else the lead of the content, cut at a word."""
    text = _MORE_MARKER.sub("", plain_text(summary)) or plain_text(content)
    return cut_at_word(text, limit)
