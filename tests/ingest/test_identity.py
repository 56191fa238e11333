"""canonical_url: the identity of a story, free of tracking parameters and fragments."""

from __future__ import annotations

import pytest

from digest.ingest.identity import canonical_url


def test_drops_utm_parameters_and_fbclid() -> None:
    """utm_* and fbclid go; the story's own parameters stay, in order."""
    url = "https://news.example/story?id=7&utm_source=rss&utm_medium=feed&page=2&fbclid=abc"
    assert canonical_url(url) == "https://news.example/story?id=7&page=2"


def test_tracking_parameter_names_are_case_insensitive() -> None:
    """UTM_Source and FBCLID are tracking too."""
    assert canonical_url("https://news.example/a?UTM_Source=x&FBCLID=y") == "https://news.example/a"


def test_drops_the_fragment() -> None:
    """The fragment is not part of the story's identity."""
    assert canonical_url("https://news.example/a?x=1#comments") == "https://news.example/a?x=1"


def test_keeps_blank_and_repeated_parameters() -> None:
    """Other parameters survive, including blank values and repeats."""
    assert canonical_url("https://news.example/a?tag=x&tag=y&flag=") == (
        "https://news.example/a?tag=x&tag=y&flag="
    )


def test_lowercases_scheme_and_host_but_not_path() -> None:
    """Scheme and host are case-insensitive and lowered; the path keeps its case."""
    assert (
        canonical_url("HTTPS://News.Example.COM/Story/ABC") == "https://news.example.com/Story/ABC"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("http://news.example:443/a", "http://news.example:443/a"),
    ],
)
def test_drops_only_the_default_port(url: str, expected: str) -> None:
    """:80 for http and :443 for https are dropped; any other port is kept."""
    assert canonical_url(url) == expected


def test_empty_path_becomes_slash() -> None:
    """A bare host and a host with "/" are the same URL."""
    assert canonical_url("https://news.example") == canonical_url("https://news.example/")
    assert canonical_url("https://news.example") == "https://news.example/"


def test_url_variants_of_one_story_are_equal() -> None:
    """Different tracking, fragment, case and port spellings of one story canonicalise alike."""
    variants = [
        "https://news.example/a?id=1",
        "https://NEWS.example:443/a?id=1&utm_campaign=spring",
        "HTTPS://news.example/a?utm_source=x&id=1#top",
        "  https://news.example/a?id=1&fbclid=zzz  ",
    ]
    assert {canonical_url(v) for v in variants} == {"https://news.example/a?id=1"}


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/story/1", "https://news.example/story/1"),
        ("story/2", "https://news.example/feeds/story/2"),
        ("../story/3?utm_source=x", "https://news.example/story/3"),
        ("//cdn.example/story/4", "https://cdn.example/story/4"),
        ("https://other.example/5", "https://other.example/5"),
    ],
)
def test_resolves_relative_links_against_base(link: str, expected: str) -> None:
    """Relative links are resolved against the feed's URL; absolute ones ignore it."""
    assert canonical_url(link, "https://news.example/feeds/main.xml") == expected


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "mailto:editor@news.example",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "ftp://files.example/a",
        "file:///etc/passwd",
    ],
)
def test_non_http_links_are_refused(link: str) -> None:
    """javascript:, mailto:, data: and other non-http(s) links give None, with or without a base."""
    assert canonical_url(link) is None
    assert canonical_url(link, "https://news.example/feed.xml") is None


@pytest.mark.parametrize("link", ["", "   ", "/relative/without/base", "https://"])
def test_unusable_links_give_none(link: str) -> None:
    """Empty links, relative links with no base and links without a host give None."""
    assert canonical_url(link) is None


@pytest.mark.parametrize("link", ["http://news.example:99999/a", "http://[::1/a", "http://x:port/"])
def test_malformed_links_give_none_not_an_exception(link: str) -> None:
    """A bad port or a broken IPv6 literal in a feed's link is refused, not raised."""
    assert canonical_url(link) is None


def test_ipv6_host_keeps_its_brackets() -> None:
    """An IPv6 literal host stays bracketed, so the result is still a valid URL."""
    assert canonical_url("http://[2001:DB8::1]:8080/a") == "http://[2001:db8::1]:8080/a"
    assert canonical_url("https://[::1]:443/a") == "https://[::1]/a"
