"""A strict reading of rendered HTML: tags must balance, and what tests ask about is collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Page:
    links: list[str] = field(default_factory=list)
    images: list[dict[str, str | None]] = field(default_factory=list)
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.page.tags.append((tag, values))
        if tag == "a" and "href" in values:
            self.page.links.append(values["href"] or "")
        if tag == "img":
            self.page.images.append(values)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            where = f"line {self.getpos()[0]}"
            self.page.errors.append(f"{where}: </{tag}> closes <{self.open[-1:]}>")
            return
        self.open.pop()


def read(html: str) -> Page:
    """The page's links, images and tags; ``errors`` lists every unbalanced tag."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.page.errors.extend(f"<{tag}> never closed" for tag in reader.open)
    return reader.page
