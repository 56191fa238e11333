"""The publisher's tracking tags (a list's --utm) on article links: checked, filled from the list
and the edition only, added with the links' own parameters kept, never on Digest's own links,
and the same through a tracked click's redirect."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask.testing import FlaskClient

from digest.config import Settings
from digest.errors import InputError
from digest.render.utm import check_utm, fill_utm, with_utm
from digest.service.core import Digest
from digest.store.db import Database
from digest.web import create_app
from tests.conftest import SmtpSink
from tests.render import htmlcheck
from tests.test_clicks import URLS, parts, send, site

TAGS = "utm_source=digest&utm_medium=email&utm_campaign={list}-{date}"
DAY = dt.date(2026, 11, 24)
WANTED = [("utm_source", "digest"), ("utm_medium", "email"), ("utm_campaign", "daily-2026-11-24")]


@pytest.mark.unit
def test_tags_keep_the_links_own_parameters_and_fragment() -> None:
    """Added after the link's own parameters, a same-named one replaced, the fragment kept;
    a non-web link untouched."""
    pairs = fill_utm(check_utm(TAGS), "daily", DAY)
    assert pairs == WANTED
    url = with_utm("https://n.example/a?id=7&utm_source=rss#top", pairs)
    assert url == (
        "https://n.example/a?id=7&utm_source=digest&utm_medium=email"
        "&utm_campaign=daily-2026-11-24#top"
    )
    assert with_utm("mailto:x@example.com", pairs) == "mailto:x@example.com"
    assert with_utm("https://n.example/a", []) == "https://n.example/a"


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [
        "utm_source",  # no value
        "utm source=x",  # space in a key
        "utm_source=a b",  # space in a value
        "utm_source=x&utm_source=y",  # twice
        "utm_source=x#frag",  # a fragment
        "utm_source=x&&utm_medium=y",  # an empty pair
        "a=%0d%0aBcc:x",  # escapes that decode to a header break
        "utm_campaign={headline}",  # not one of the placeholders
        "x=" + "a" * 600,  # too long
    ],
)
def test_malformed_tags_are_refused(bad: str) -> None:
    """Only key=value pairs of safe characters and the two placeholders pass."""
    with pytest.raises(InputError):
        check_utm(bad)


def test_sent_digest_tags_article_links_only(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """Every article link of the sent message carries the tags; unsubscribe, preferences and
    the archive links carry none."""
    edition_id = _tagged_site(db, settings)
    send(db, settings.replace(smtp_url=smtp_server.url), edition_id)
    html, text = parts(smtp_server.received[0].data)
    links = htmlcheck.read(html).links
    articles = [h for h in links if h.startswith(("https://n.example/", "https://s.example/"))]
    assert len(articles) == 6
    for href in articles:
        assert parse_qsl(urlsplit(href).query) == WANTED
    own = [h for h in links if h.startswith("https://news.example/")]
    assert own and not any("utm_" in h for h in own)
    assert f"{URLS[0]}?utm_source=digest" in text


def test_a_tracked_click_redirects_to_the_tagged_link(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """With click tracking on, the redirect's target carries the tags too."""
    tracked = settings.replace(smtp_url=smtp_server.url, track_clicks=True)
    edition_id = _tagged_site(db, tracked)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    href = next(h for h in htmlcheck.read(html).links if "/c/" in h)
    client: FlaskClient = create_app(tracked).test_client()
    answer = client.get(href.removeprefix("https://news.example"))
    assert answer.status_code == 302
    target = answer.headers["Location"]
    assert target.split("?")[0] in URLS
    assert parse_qsl(urlsplit(target).query) == WANTED


def _tagged_site(db: Database, settings: Settings) -> int:
    edition_id = site(db, settings, readers=1)
    Digest(settings, db=db).catalog.edit_list("daily", utm=TAGS)
    return edition_id
