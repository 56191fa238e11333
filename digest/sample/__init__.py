"""The bundled sample site: a fictional news publisher's feeds and subscribers.

``site.toml`` holds the stories; ``write_feeds`` turns them into one RSS 2.0
file per section, dated relative to the moment it runs, so "today's digest"
always has today's news in it.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from digest.edition.select import zone

__all__ = [
    "LISTS",
    "SAMPLE_DIR",
    "SITE_FILE",
    "TIMEZONE",
    "SampleSite",
    "load_site",
    "publication_times",
    "write_feeds",
]

SAMPLE_DIR = Path(__file__).resolve().parent
SITE_FILE = SAMPLE_DIR / "site.toml"
TIMEZONE = "Asia/Karachi"

#: The sample lists: slug, name, sections in digest order, per-section limit, subscriber CSV.
LISTS: list[dict[str, Any]] = [
    {
        "slug": "daily",
        "name": "The Daily Meridian — Morning Digest",
        "sections": [
            "national",
            "international",
            "business",
            "health-education",
            "sports",
            "technology",
        ],
        "per_section": 5,
        "csv": SAMPLE_DIR / "subscribers-daily.csv",
    },
    {
        "slug": "markets",
        "name": "Meridian Markets & Tech",
        "sections": ["business", "technology", "national"],
        "per_section": 4,
        "csv": SAMPLE_DIR / "subscribers-business.csv",
    },
]


@dataclass(frozen=True)
class SampleSite:
    name: str
    url: str
    postal_address: str
    sections: list[tuple[str, str]]
    articles: list[dict[str, Any]]


def load_site() -> SampleSite:
    data = tomllib.loads(SITE_FILE.read_text(encoding="utf-8"))
    site = data["site"]
    return SampleSite(
        name=site["name"],
        url=site["url"],
        postal_address=site["postal_address"],
        sections=[(s["slug"], s["name"]) for s in data["sections"]],
        articles=data["articles"],
    )


def publication_times(
    articles: list[dict[str, Any]], now: dt.datetime, tz_name: str = TIMEZONE
) -> dict[str, dt.datetime]:
    """An aware publication time per guid: today's stories between local midnight and now,
    yesterday's across yesterday, each section's in file order."""
    local_now = now.astimezone(zone(tz_name))
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    spans = {
        "today": (midnight, local_now - dt.timedelta(seconds=1)),
        "yesterday": (midnight - dt.timedelta(hours=23), midnight - dt.timedelta(hours=1)),
    }
    times: dict[str, dt.datetime] = {}
    for day, (start, end) in spans.items():
        chosen = [a for a in articles if a.get("day", "today") == day]
        step = (end - start) / (len(chosen) + 1)
        for i, article in enumerate(chosen, start=1):
            times[article["guid"]] = start + step * i
    return times


def write_feeds(directory: Path, now: dt.datetime | None = None) -> dict[str, Path]:
    """Write ``<section>.xml`` RSS 2.0 feeds into ``directory``; returns section slug -> path."""
    site = load_site()
    now = now or dt.datetime.now(dt.UTC)
    times = publication_times(site.articles, now)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for slug, name in site.sections:
        items = [a for a in site.articles if a["section"] == slug or slug in a.get("also_in", [])]
        items.sort(key=lambda a: times[a["guid"]], reverse=True)
        path = directory / f"{slug}.xml"
        path.write_text(_rss(site, slug, name, items, times), encoding="utf-8")
        paths[slug] = path
    return paths


def _rss(
    site: SampleSite,
    slug: str,
    name: str,
    items: list[dict[str, Any]],
    times: dict[str, dt.datetime],
) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:media="http://search.yahoo.com/mrss/">',
        "<channel>",
        f"<title>{escape(site.name)} — {escape(name)}</title>",
        f"<link>{escape(site.url)}/{slug}</link>",
        f"<description>{escape(name)} news from {escape(site.name)}</description>",
        "<language>en</language>",
    ]
    for article in items:
        link = f"{site.url}/{article['section']}/{article['slug']}"
        lines += [
            "<item>",
            f"<title>{escape(article['title'])}</title>",
            f"<link>{escape(link)}</link>",
            f'<guid isPermaLink="false">{escape(article["guid"])}</guid>',
            f"<pubDate>{format_datetime(times[article['guid']])}</pubDate>",
        ]
        if "summary" in article:
            lines.append(f"<description>{escape(article['summary'])}</description>")
        if "content" in article:
            lines.append(f"<content:encoded><![CDATA[{article['content']}]]></content:encoded>")
        if "image" in article:
            lines.append(f'<media:content url="{escape(article["image"])}" medium="image"/>')
        lines.append("</item>")
    lines += ["</channel>", "</rss>", ""]
    return "\n".join(lines)
