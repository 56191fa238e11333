"""Fixed editions for the rendering tests: no database, no clock, same output every run."""

from __future__ import annotations

import datetime as dt

from digest.config import Settings
from digest.edition.build import Draft, _draft
from digest.edition.select import ArticleView, SectionBlock, group_sections
from digest.render.renderer import RenderedDigest
from digest.send.mailer import EditionMailer
from digest.store.models import MailingList

DAY = dt.date(2026, 11, 24)
ORDER = [
    ("national", "National"),
    ("international", "International"),
    ("business", "Business"),
    ("health-education", "Health & Education"),
    ("sports", "Sports"),
    ("technology", "Science & Technology"),
]
#: What the placeholders become in a tested message: realistic lengths, absolute https.
SAMPLE_LINKS = {
    "unsubscribe": "https://news.example/unsubscribe/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
    "preferences": "https://news.example/preferences/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
}
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)> & {list} Ünïcode'
#: Feed text spelling the placeholders Digest once used for personal links: it must come
#: out as written, never as a reader's link nor as an error.
SPOOF_URL = "https://wire.example.net/story?u=DGSTLINK0unsubscribe0&p=DGSTLINK0preferences0"
SPOOF_HEADLINE = "Wire: DGSTLINK0evil0 and DGSTLINK0unsubscribe0 in a headline"


def settings() -> Settings:
    return Settings(
        secret_key="render-tests",
        base_url="https://news.example",
        site_name="The Test Gazette",
        site_url="https://gazette.example",
        postal_address="1 Test Street, Testville 12345",
        from_address="digest@gazette.example",
    )


def mailing_list(language: str = "en", **fields: object) -> MailingList:
    return MailingList(
        id=1, slug="daily", name="Morning Digest", per_section=5, language=language, **fields
    )


def article(i: int, section: str, *, image: bool = False, teaser: str | None = None) -> ArticleView:
    return ArticleView(
        id=i,
        section_slug=section,
        headline=f"Story {i}: council approves plan for {section} after long debate",
        teaser=teaser
        if teaser is not None
        else (
            f"The {section} desk reports that story {i} moved forward on Tuesday, with "
            "officials saying the next steps would be announced within the week."
        ),
        url=f"https://gazette.example/{section}/story-{i}",
        published_at=dt.datetime(2026, 11, 24, 3) + dt.timedelta(minutes=i),
        image_url=f"https://gazette.example/img/{i}.jpg" if image else None,
    )


def articles(count: int, sections: int = len(ORDER)) -> list[ArticleView]:
    """``count`` articles spread over the first ``sections`` sections; every third has a
    thumbnail and every fifth no teaser."""
    return [
        article(
            i,
            ORDER[i % sections][0],
            image=i % 3 == 0,
            teaser="" if i % 5 == 4 else None,
        )
        for i in range(count)
    ]


def draft(
    count: int = 14, *, per_section: int = 3, language: str = "en", **fields: object
) -> Draft:
    """A draft built the way ``draft_edition`` builds one, from fixed articles."""
    lst = mailing_list(language, **fields)
    lst.per_section = per_section
    return _draft(settings(), lst, DAY, group_sections(articles(count), ORDER, per_section))


def hostile_draft() -> Draft:
    lst = mailing_list()
    bad = ArticleView(
        1,
        "national",
        HOSTILE,
        HOSTILE,
        "https://gazette.example/national/1?a=1&b=2",
        dt.datetime(2026, 11, 24, 5),
        image_url="https://gazette.example/img/1.jpg?a=1&b=2",
    )
    spoof = ArticleView(
        2,
        "national",
        SPOOF_HEADLINE,
        "Teaser naming DGSTLINK0preferences0.",
        SPOOF_URL,
        dt.datetime(2026, 11, 24, 6),
    )
    block = SectionBlock("national", "National", [bad, spoof], more=2)
    return _draft(settings(), lst, DAY, [block])


def rendered(d: Draft) -> RenderedDigest:
    template = EditionMailer(settings()).message_template(d)
    return RenderedDigest(template.html, template.text)


def filled(d: Draft) -> tuple[str, str]:
    """The HTML and text parts as a subscriber gets them (sample personal links)."""
    r = rendered(d)
    return r.html.fill(SAMPLE_LINKS), r.text.fill(SAMPLE_LINKS)


#: The golden cases: name -> draft factory.
CASES = {
    "daily-en": lambda: draft(14, per_section=3),
    "urdu-rtl": lambda: draft(6, per_section=2, language="ur"),
    "hostile": hostile_draft,
}
