"""Stories told once: clustering an edition's candidates, on the labelled corpus and at the
edges (one item, empty teasers, hostile text, Urdu, numbers, time, feeds, URLs)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.edition import cluster as clustering
from digest.edition.cluster import cluster, normalise, numbers, terms, url_keys
from digest.edition.select import ArticleView
from tests.edition.corpus import load, score

pytestmark = pytest.mark.unit

WHEN = dt.datetime(2026, 11, 24, 8)
#: The issue's bar for clustering on the labelled corpus.
TARGET = 0.95


def _article(
    i: int,
    headline: str,
    teaser: str = "",
    *,
    url: str | None = None,
    source: int | None = None,
    when: dt.datetime = WHEN,
    section: str = "national",
) -> ArticleView:
    return ArticleView(
        i,
        section,
        headline,
        teaser,
        url or f"https://site{i}.example/news/{i}",
        when,
        source_id=source if source is not None else i,
    )


def _groups(articles: list[ArticleView]) -> list[list[int]]:
    return sorted(sorted(a.id for a in c.members) for c in cluster(articles))


def test_corpus_precision_and_recall_meet_the_target() -> None:
    """On the labelled corpus (200+ items, English and Urdu, three days at once) pairwise
    precision and recall are both at least 0.95, and no hard-negative pair is merged."""
    corpus = load()
    assert len(corpus.articles) >= 200
    figures = score(cluster(corpus.articles), corpus.story, corpus.hard_negatives)
    assert figures.precision >= TARGET, figures.false
    assert figures.recall >= TARGET, figures.missed
    assert figures.hard_negatives_merged == 0, figures.false


def test_each_day_of_the_corpus_keeps_its_precision() -> None:
    """One day's items (about one edition's candidates) are never wrongly merged either."""
    corpus = load()
    for day in corpus.days:
        figures = score(cluster(corpus.day(day)), corpus.story, corpus.hard_negatives)
        assert figures.precision >= TARGET, (day, figures.false)


def test_corpus_has_labelled_duplicates_and_urdu() -> None:
    """The corpus holds what the issue asks for: 60+ items in duplicate groups, Urdu items,
    and hard negatives naming stories that exist."""
    corpus = load()
    sizes: dict[str, int] = {}
    for label in corpus.story.values():
        sizes[label] = sizes.get(label, 0) + 1
    assert sum(n for n in sizes.values() if n > 1) >= 60
    assert sum(1 for a in corpus.articles if "\u0600" <= a.headline[0] <= "\u06ff") >= 20
    assert all(a in sizes and b in sizes for a, b in corpus.hard_negatives)


def test_nothing_and_one_article() -> None:
    """No articles make no clusters; one article is one cluster with no others."""
    assert cluster([]) == []
    (only,) = cluster([_article(1, "Rupee gains against the dollar in interbank trade")])
    assert only.representative.id == 1 and only.others == ()


def test_the_same_article_twice_is_counted_once() -> None:
    """An article passed twice (same id) is one member, not a duplicate of itself."""
    article = _article(1, "Rupee gains against the dollar in interbank trade")
    (only,) = cluster([article, article])
    assert only.members == (article,)


def test_identical_headlines_in_two_sections_are_one_story() -> None:
    """One site filing a story under two sections (two feeds, two URLs, same words) gives
    one cluster; the earliest report represents it by default."""
    headline = "IHC announces winter vacation from December 23 to January 1"
    teaser = "ISLAMABAD: The Islamabad High Court has announced winter vacation for its benches."
    national = _article(
        1, headline, teaser, url="https://paper.example/national/ihc-winter-vacation", source=1
    )
    education = _article(
        2,
        headline,
        teaser,
        url="https://paper.example/education/ihc-winter-vacation",
        source=2,
        section="health-education",
        when=WHEN - dt.timedelta(minutes=5),
    )
    (story,) = cluster([national, education])
    assert story.representative.id == 2 and [a.id for a in story.others] == [1]


def test_prefer_chooses_the_representative() -> None:
    """The caller's key orders a cluster's members: its first is the one shown."""
    a = _article(1, "Karachi Port handles record 286,000 containers in November", source=1)
    b = _article(2, "Karachi Port sets monthly record with 286,000 containers", source=2)
    (story,) = cluster([a, b], prefer=lambda s: -s.id)
    assert story.representative.id == 2


def test_empty_teasers_rest_on_the_headline() -> None:
    """Without teasers, reworded headlines of one story still meet, and two stories whose
    headlines share only a topic word stay apart."""
    articles = [
        _article(1, "Polio vaccination drive reaches 9.2 million children in three days"),
        _article(2, "Polio drive covers 9.2 million children in first three days"),
        _article(3, "Polio case confirmed in Bannu child who missed the vaccination drive"),
    ]
    assert _groups(articles) == [[1, 2], [3]]


def test_different_figures_in_headlines_are_different_stories() -> None:
    """Two market reports alike but for their figures are two days' stories; a figure one
    report rounds ("over 9 million" for 9.2) is still the same story."""
    teaser = "KARACHI: Banks and cement shares led trading at the stock exchange."
    assert _groups(
        [
            _article(1, "KSE-100 gains 450 points as banks lead", teaser),
            _article(2, "KSE-100 gains 1,200 points as banks lead", teaser),
        ]
    ) == [[1], [2]]
    assert _groups(
        [
            _article(1, "Anti-polio campaign covers over 9 million children"),
            _article(2, "Anti-polio campaign covers 9.2 million children"),
        ]
    ) == [[1, 2]]


def test_a_number_inside_a_name_is_not_a_figure() -> None:
    """ "Domestic T20" and "2 wickets" do not contradict each other: T20 is a name."""
    assert numbers("Domestic T20: Hawks beat Mariners by 2 wickets on the M-2") == {
        clustering.Decimal("2")
    }
    teaser = "KARACHI: Bilal Shah hit the last ball for four as the Hawks chased 176."
    assert _groups(
        [
            _article(1, "Domestic T20: Hyderabad Hawks edge Multan Mariners", teaser),
            _article(2, "Hawks beat Mariners by 2 wickets off the final ball", teaser),
        ]
    ) == [[1, 2]]


def test_far_apart_in_time_is_another_story() -> None:
    """The same words a day apart (a daily market report) are two stories."""
    headline = "Rupee closes higher against the dollar in interbank market"
    teaser = "KARACHI: The local currency gained against the greenback, the State Bank said."
    assert _groups(
        [
            _article(1, headline, teaser),
            _article(2, headline, teaser, when=WHEN + dt.timedelta(hours=24)),
        ]
    ) == [[1], [2]]


def test_one_feed_repeating_itself_needs_near_identical_text() -> None:
    """Text alike enough to be one story told by two feeds is, from a single feed, a story and
    its update: a feed lists a story once and follows it up. The same words under a second
    URL of one feed are still one story."""
    first = _article(
        1,
        "Fog shuts M-2 motorway near Lahore overnight",
        "LAHORE: Motorway police closed sections of the M-2 as visibility fell below 50 metres.",
        source=7,
    )
    update = _article(
        2,
        "Fog shuts M-2 and M-3 motorways, flights delayed at Lahore airport",
        "LAHORE: Motorway police kept sections of the M-2 and M-3 closed as visibility stayed "
        "below 50 metres.",
        source=7,
    )
    assert _groups([first, update]) == [[1], [2]]
    other_feed = _article(2, update.headline, update.teaser, source=8)
    assert _groups([first, other_feed]) == [[1, 2]]
    again = _article(3, first.headline, first.teaser, source=7)
    assert _groups([first, again]) == [[1, 3]]


def test_urls_naming_one_article_join_a_reworded_pair() -> None:
    """Two paths on one host with the same article id are one story even when the section
    editor reworded the headline; an id many URLs share is a category's, and joins nothing."""
    a = _article(
        1,
        "Cabinet approves amendments to evidence law",
        "ISLAMABAD: Courts may accept video-link testimony under the changes.",
        url="https://www.paper.example/national/1187654",
    )
    b = _article(
        2,
        "Evidence law changes cleared by federal cabinet",
        "Courts may accept testimony by video link and digitally signed documents.",
        url="https://m.paper.example/amp/business/1187654",
    )
    assert url_keys(a.url) == url_keys(b.url) == {"paper.example|1187654"}
    assert _groups([a, b]) == [[1, 2]]
    category = [
        _article(
            10 + i,
            f"Story {i} on {topic} in the capital today",
            f"Officials discussed {topic} again.",
            url=f"https://paper.example/section/55555/{i}-{topic}",
        )
        for i, topic in enumerate(["water", "roads", "schools", "parks", "buses", "power"])
    ]
    assert all(len(c.members) == 1 for c in cluster(category))


def test_a_date_in_a_url_is_not_an_article_id() -> None:
    """20261124 in a path is the day, which every story of that day shares."""
    assert url_keys("https://paper.example/news/20261124/7") == frozenset()
    assert url_keys("not a url") == frozenset()
    assert url_keys("http://[::1") == frozenset()


def test_chaining_is_guarded() -> None:
    """A like B and B like C, but A nothing like C: C does not join through B (it would with
    the group guard off, so the guard is what holds them apart)."""
    articles = [
        _article(1, "Harbour cranes stall as dockers strike over unpaid wages in Gwadar"),
        _article(2, "Dockers strike over unpaid wages spreads to Karachi fish harbour auction"),
        _article(3, "Karachi fish harbour auction suspended after trawler fleet ties up"),
    ]
    assert _groups(articles) == [[1, 2], [3]]
    original = clustering.GROUP_THRESHOLD
    try:
        clustering.GROUP_THRESHOLD = 0.0
        assert _groups(articles) == [[1, 2, 3]]
    finally:
        clustering.GROUP_THRESHOLD = original


def test_urdu_spelling_variants_are_one_spelling() -> None:
    """Arabic-keyboard letters, Urdu digits, diacritics, tatweel and zero-width joiners do not
    make two words of one."""
    urdu = "پاکستان نے 6 وکٹوں سے کامیابی حاصل کی"
    typed = "پاكستان نے ۶ وکٹوں سے كاميابى حاصل كی\u200c"
    assert terms(urdu) == terms(typed)
    assert normalise("Kara\u0301chi\u00ad") == "karachi"
    assert terms("کـــراچی") == terms("کراچی")


def test_urdu_reports_of_one_story_meet_and_others_do_not() -> None:
    """Two Urdu outlets' reports of one match are one story; another match that day is not."""
    articles = [
        _article(
            1,
            "دوسرا ون ڈے: پاکستان نے سری لنکا کو 6 وکٹوں سے ہرا دیا",
            "فیصل آباد: حارث قدیر کی ناقابل شکست 88 رنز کی اننگز کی بدولت 271 رنز کا ہدف حاصل",
        ),
        _article(
            2,
            "پاکستان کی سری لنکا کے خلاف 6 وکٹوں سے فتح، سیریز برابر",
            "فیصل آباد: حارث قدیر کے ناقابل شکست 88 رنز کی مدد سے 271 رنز کا ہدف پورا",
        ),
        _article(
            3,
            "پاکستان ویمن ٹیم نے آئرلینڈ کے خلاف ون ڈے سیریز جیت لی",
            "لاہور: ثنا میر خان کے 74 رنز کی بدولت 212 رنز کا ہدف 7 وکٹوں سے حاصل",
        ),
    ]
    assert _groups(articles) == [[1, 2], [3]]


def test_very_long_and_hostile_text_is_read_within_bounds() -> None:
    """A megabyte headline, markup, NUL and control characters, lone surrogates, bidi
    overrides and emoji are read without error; only the first characters count, so two
    such articles that begin alike are one story and a clean one stays apart."""
    hostile = (
        '<script>alert(1)</script>\x00\x1b[31m\ud800 \u202e\u2066 🎉 "quoted" '
        "floods swamp riverside villages near Sukkur barrage "
    )
    long_one = _article(1, hostile + "x" * 1_000_000, "\x00" * 10_000)
    long_two = _article(2, hostile + "y" * 1_000_000, "")
    clean = _article(3, "Rupee gains against the dollar in interbank trade")
    assert _groups([long_one, long_two, clean]) == [[1, 2], [3]]
    assert len(terms("word " * 100_000, limit=30)) == 30


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=80), st.text(max_size=120), st.integers(0, 3)),
        max_size=25,
    )
)
def test_every_article_is_in_exactly_one_cluster(
    rows: list[tuple[str, str, int]],
) -> None:
    """Whatever the text, clustering partitions the articles: each in one cluster, none lost,
    none invented, and each cluster's members within the time window of each other."""
    articles = [
        _article(i, headline, teaser, source=source, when=WHEN + dt.timedelta(hours=i))
        for i, (headline, teaser, source) in enumerate(rows)
    ]
    clusters = cluster(articles)
    ids = [a.id for c in clusters for a in c.members]
    assert sorted(ids) == [a.id for a in articles]
    for c in clusters:
        times = [a.published_at for a in c.members]
        assert max(times) - min(times) <= clustering.WINDOW
