"""What must hold for any rendered digest: valid links and markup, escaped feed text,
Gmail's size limit, a readable text part."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from digest.edition.select import group_sections
from digest.render.renderer import HTML_BUDGET, TEXT_WIDTH
from tests.render import cases, htmlcheck

ALL = sorted(cases.CASES)


@pytest.mark.parametrize("case", ALL)
def test_every_link_is_absolute_http_or_mailto(case: str) -> None:
    """Every href and src in the HTML, and every URL in the text, is absolute http(s) or
    mailto: a relative link has no base in an inbox."""
    html, text = cases.filled(cases.CASES[case]())
    page = htmlcheck.read(html)
    urls = page.links + [str(img.get("src")) for img in page.images]
    urls += re.findall(r"^\S+://\S*$", text, re.M)
    assert urls
    for url in urls:
        parts = urlsplit(url)
        ok = (parts.scheme in ("http", "https") and parts.netloc) or parts.scheme == "mailto"
        assert ok, url


@pytest.mark.parametrize("case", ALL)
def test_html_parses_and_every_image_has_alt_and_size(case: str) -> None:
    """The HTML's tags balance, and every <img> has alt text, width and height (clients
    that block images show the alt text in a box of that size)."""
    page = htmlcheck.read(cases.filled(cases.CASES[case]())[0])
    assert page.errors == []
    assert page.images
    for img in page.images:
        assert (img.get("alt") or "").strip(), img
        assert img.get("width") and img.get("height"), img


def test_layout_has_what_inboxes_need() -> None:
    """The HTML carries the 600px container, the mobile and dark-mode media queries, the
    color-scheme meta, Outlook's conditional table and a hidden preheader."""
    html = cases.filled(cases.draft())[0]
    assert 'width="600"' in html and "max-width:600px" in html.replace(" ", "")
    assert "@media (max-width: 620px)" in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "<!--[if mso]><table" in html
    assert re.search(r'<div style="display: none;[^"]*">Story \d+', html)


def test_hostile_headline_is_escaped_everywhere() -> None:
    """Markup in a headline or teaser reaches the HTML as text: no script tag, no event
    handler, no extra image; the text part shows it literally."""
    html, text = cases.filled(cases.hostile_draft())
    page = htmlcheck.read(html)
    assert [t for t, _ in page.tags if t == "script"] == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert [img["src"] for img in page.images] == ["https://gazette.example/img/1.jpg?a=1&b=2"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert cases.HOSTILE in text


def _shown(html: str) -> int:
    return len(re.findall(r'<h3 dir="auto"', html))


def test_200_article_edition_stays_under_budget_with_more_links() -> None:
    """200 articles at the list's limit of 5 per section: the HTML stays under 100 KB and
    each section links to the archive for the rest ("N more in Section")."""
    d = cases.draft(200, per_section=5)
    html, text = cases.filled(d)
    assert len(html.encode("utf-8")) < HTML_BUDGET
    assert _shown(html) == 30
    business = next(s for s in d.sections if s.slug == "business")
    assert business.more == 33 - 5  # articles 2, 8, ..., 194 are Business
    assert f"{business.more} more in Business" in html
    assert 'href="https://news.example/archive/daily/2026-11-24#business"' in html
    assert (
        f"{business.more} more in Business:\nhttps://news.example/archive/daily/2026-11-24" in text
    )


def test_oversized_edition_is_cut_to_fit_and_counts_the_rest() -> None:
    """A list allowing 200 per section would render far over budget: the renderer cuts
    every section, re-renders under 100 KB, and the "more" counts cover every article."""
    d = cases.draft(200, per_section=200)
    html, text = cases.filled(d)
    assert len(html.encode("utf-8")) < HTML_BUDGET
    shown = _shown(html)
    assert 6 <= shown < 200
    counts = [int(n) for n in re.findall(r"(\d+) more in ", text)]
    assert shown + sum(counts) == 200
    assert "Unsubscribe" in html[-3000:]


def test_text_part_is_wrapped_with_links_on_their_own_lines() -> None:
    """Every line of the text part fits 78 columns unless it is one unbroken URL, and
    every URL stands alone on its line."""
    text = cases.filled(cases.draft(40, per_section=5))[1]
    for line in text.splitlines():
        if "://" in line:
            assert re.fullmatch(r"\S+://\S+", line), line
        else:
            assert len(line) <= TEXT_WIDTH, line
    assert "NATIONAL\n========" in text
    assert "In this issue: National · International · Business" in text


def test_more_counts_come_from_the_days_articles() -> None:
    """group_sections records how many of a section's articles the limit left out."""
    blocks = group_sections(cases.articles(20, sections=2), cases.ORDER, 3)
    assert [(b.slug, len(b.articles), b.more) for b in blocks] == [
        ("national", 3, 7),
        ("international", 3, 7),
    ]
