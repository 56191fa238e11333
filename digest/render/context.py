"""What the digest templates see: ``DigestContext``, and ``digest_context`` that builds it for
one edition variant from the settings and the edition's draft."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from digest.edition.select import ArticleView, SectionBlock, date_label
from digest.render.language import Language
from digest.render.placeholders import (
    BLANK_PIXEL,
    LINK_NAMES,
    PIXEL,
    Placeholders,
    article_link,
    article_of,
)
from digest.render.utm import fill_utm, with_utm

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.edition.build import Draft


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
        count = self.language.number(section.more)
        return self.language.messages["more_in"].format(n=count, section=section.name)


def _article_links(article: ArticleView) -> list[tuple[int, str]]:
    """(id, URL) of an article's links: its own, then its story's other reports'."""
    return [(article.id, article.url), *((o.id, o.url) for o in article.also_in)]


def tagged(sections: list[SectionBlock], pairs: list[tuple[str, str]]) -> list[SectionBlock]:
    """The sections with the publisher's tracking tags on every article link (its own and its
    story's other reports'); the digest's other links are left alone."""
    return [
        replace(
            s,
            articles=[
                replace(
                    a,
                    url=with_utm(a.url, pairs),
                    also_in=tuple(replace(o, url=with_utm(o.url, pairs)) for o in a.also_in),
                )
                for a in s.articles
            ],
        )
        for s in sections
    ]


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
    sections = draft.sections
    if lst.utm:
        sections = tagged(sections, fill_utm(lst.utm, lst.slug, draft.day))
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
            # The editor's note (plain text, autoescaped in the HTML), above the sections.
            "note": draft.note,
        },
        sections=sections,
        links=all_links,
        why_text=language.messages["why"].format(list=lst.name, site=settings.site_name),
        language=language,
        personal=personal,
        track_clicks=settings.track_clicks,
    )
