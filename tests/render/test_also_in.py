"""Rendering a story told once: "Also in" under it, its labels escaped, its links only the
other reports' own article URLs (tracked like every article link), within the size budget."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from digest.edition.build import Draft, _draft
from digest.edition.select import AlsoIn, ArticleView, SectionBlock
from digest.render.placeholders import article_link
from digest.render.renderer import HTML_BUDGET
from digest.send.mailer import EditionMailer
from tests.render import cases, htmlcheck

pytestmark = pytest.mark.unit

OTHERS = (
    AlsoIn(7, cases.HOSTILE, "https://wire.example/story/7?a=1&b=2"),
    AlsoIn(8, "Health & Education", "https://gazette.example/health-education/story-8"),
)


def _told_once(language: str = "en", **fields: object) -> Draft:
    shown = ArticleView(
        1,
        "national",
        "IHC announces winter vacation from December 23",
        "ISLAMABAD: The court's deputy registrar issued the notification.",
        "https://gazette.example/national/story-1",
        dt.datetime(2026, 11, 24, 5),
        also_in=OTHERS,
    )
    plain = ArticleView(
        2,
        "national",
        "Rupee closes higher",
        "",
        "https://gazette.example/national/story-2",
        dt.datetime(2026, 11, 24, 6),
    )
    block = SectionBlock("national", "National", [shown, plain])
    return _draft(cases.settings(), cases.mailing_list(language, **fields), cases.DAY, [block])


def test_also_in_links_the_other_reports_with_escaped_labels() -> None:
    """Under the story: "Also in:" and one link per other report, to its own URL, its label
    (feed text) escaped; nothing under a story told by one feed; no script or handler."""
    html, text = cases.filled(_told_once())
    page = htmlcheck.read(html)
    assert page.errors == []
    assert [t for t, _ in page.tags if t == "script"] == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert html.count("Also in:") == 1
    links = [link for link in page.links if "wire.example" in link or "health-education" in link]
    assert links == [o.url for o in OTHERS]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="https://wire.example' not in html  # the label is text, not markup
    assert f"Also in: {cases.HOSTILE}, Health & Education" in text.replace("\n", " ")


def test_also_in_speaks_the_lists_language() -> None:
    """An Urdu list says "Also in" in Urdu."""
    html, text = cases.filled(_told_once("ur"))
    assert "یہ خبر یہاں بھی:" in html
    assert "یہ خبر یہاں بھی:" in text


def test_tracked_also_in_links_are_tracked_too() -> None:
    """With click tracking on, an "also in" link is a personal link of its own (its article's
    id), standing in for its URL where there is no recipient: no article URL in clear."""
    settings = cases.settings().replace(track_clicks=True)
    template = EditionMailer(settings).message_template(_told_once())
    tracked = {article_id for article_id, _ in template.tracked_links}
    assert tracked == {1, 2, 7, 8}
    assert article_link(7) in template.html.names
    assert "wire.example" not in "".join(template.html.segments[::2])
    preview = template.html.fill({"unsubscribe": "u", "preferences": "p"})
    assert OTHERS[0].url in preview  # the stand-in where there is no recipient: its own URL


def test_an_edition_of_stories_told_many_times_stays_under_budget() -> None:
    """200 articles, each with three "also in" links, at 200 per section: the renderer cuts
    the edition until the HTML fits under Gmail's clipping size."""
    base = cases.draft(200, per_section=200)
    sections = [
        replace(
            s,
            articles=[
                replace(
                    a,
                    also_in=tuple(
                        AlsoIn(10_000 + a.id * 3 + k, f"Feed number {k}", f"{a.url}/other-{k}")
                        for k in range(3)
                    ),
                )
                for a in s.articles
            ],
        )
        for s in base.sections
    ]
    html, _ = cases.filled(replace(base, sections=sections))
    assert len(html.encode("utf-8")) < HTML_BUDGET
    assert "Also in:" in html
