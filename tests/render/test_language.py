"""Subject and preheader from the list's template, the date in its language, RTL lists."""

from __future__ import annotations

import datetime as dt
import re

from digest.edition.build import _draft
from digest.edition.select import ArticleView, date_label, format_subject, group_sections
from tests.render import cases, htmlcheck


def test_default_subject_is_site_date_and_top_headline() -> None:
    """Without a template of its own a list's subject is "{site} — {date}: {top headline}",
    and the preheader carries the next sections' top headlines instead of repeating it."""
    d = cases.draft(14)
    top = d.sections[0].articles[0].headline
    assert d.subject == f"The Test Gazette — Tuesday, 24 November 2026: {top}"
    assert top not in d.preheader
    assert d.preheader.split(" · ")[0] == d.sections[1].articles[0].headline


def test_list_subject_template_and_language_are_used() -> None:
    """A list's subject template fills {list} and {date}, with the date in its language."""
    d = cases.draft(14, language="fr", subject_template="{list} · {date}")
    assert d.subject == "Morning Digest · mardi 24 novembre 2026"


def test_subject_placeholders_are_filled_once() -> None:
    """A headline containing a placeholder name is shown as written, not expanded."""
    subject = format_subject(
        "{site}: {top headline} ({list})",
        site="S",
        date_label="D",
        top_headline="Why {list} matters",
        list_name="L",
    )
    assert subject == "S: Why {list} matters (L)"


def test_date_label_follows_the_language() -> None:
    """English keeps day-month-year; Urdu and Arabic get their CLDR full dates; an unknown
    code falls back to English."""
    day = dt.date(2026, 11, 24)
    assert date_label(day) == "Tuesday, 24 November 2026"
    assert date_label(day, "ur") == "منگل، 24 نومبر، 2026"
    assert "نوفمبر" in date_label(day, "ar")
    assert date_label(day, "xx-nope") == "Tuesday, 24 November 2026"


def test_rtl_list_is_right_to_left_and_mirrored() -> None:
    """An Urdu list renders dir="rtl", right-aligned cells, the thumbnail's gap on the left,
    arrows pointing left, and the digest's own words in Urdu in both parts."""
    html, text = cases.filled(cases.draft(6, per_section=2, language="ur"))
    assert '<html lang="ur" dir="rtl"' in html
    page = htmlcheck.read(html)
    cells = [a for tag, a in page.tags if tag == "td" and "dg-start" in (a.get("class") or "")]
    assert cells and all(a.get("align") == "right" for a in cells)
    assert all("text-align:right" in (a.get("style") or "") for a in cells)
    assert "padding-left:16px" in html and "padding-right:16px" not in html.split("</style>")[-1]
    assert "مزید پڑھیں\u00a0←" in html
    assert "اس شمارے میں" in text and "ان سبسکرائب کریں" in text


def test_ltr_list_is_left_aligned() -> None:
    """An English list renders dir="ltr" with left-aligned cells and right-pointing arrows."""
    html = cases.filled(cases.draft(6))[0]
    assert '<html lang="en" dir="ltr"' in html
    assert "Read more\u00a0→" in html and "←" not in html


def test_feed_text_keeps_its_own_direction_in_either_digest() -> None:
    """Every headline, teaser and section name element carries dir="auto", in an English and
    in an Urdu digest, so an Urdu headline in an English digest starts on the right."""
    urdu_story = ArticleView(
        99, "national", "بجٹ قومی اسمبلی سے منظور", "وزیر خزانہ نے بجٹ پیش کیا۔",
        "https://gazette.example/national/budget", dt.datetime(2026, 11, 24, 8),
    )  # fmt: skip
    for language in ("en", "ur"):
        blocks = group_sections([urdu_story, *cases.articles(6)], cases.ORDER, 2)
        d = _draft(cases.settings(), cases.mailing_list(language), cases.DAY, blocks)
        html = cases.filled(d)[0]
        tags = htmlcheck.read(html).tags
        sections = len(d.sections)
        stories = sum(len(s.articles) for s in d.sections)
        teasers = sum(1 for s in d.sections for a in s.articles if a.teaser)
        assert [a.get("dir") for tag, a in tags if tag == "h2"] == ["auto"] * sections
        assert [a.get("dir") for tag, a in tags if tag == "h3"] == ["auto"] * stories
        assert len(re.findall(r'<p class="dg-p" dir="auto"', html)) == teasers
        assert re.search(r'<h3 dir="auto"[^>]*><a [^>]+>بجٹ قومی اسمبلی سے منظور</a></h3>', html)
        in_this_issue = html.split("</strong>", 1)[1].split("</p>", 1)[0]
        assert in_this_issue.count('<span dir="auto">') == sections
