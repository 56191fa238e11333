"""Stories told once: an edition's candidate articles grouped into clusters of one story each.

Pure: no database, no I/O, no clock. The same story often reaches an edition more than once:
one publisher files it under two sections (two feeds, two URLs), or two outlets report it in
their own words. A cluster is those articles; the edition shows one and names the others.

The method, in the order it runs:

1. **Terms.** Each article becomes a bag of terms from its headline and the lead of its teaser
   (``LEAD_WORDS`` words). Text is normalised so that spelling noise does not count: NFKC,
   case folded, the diacritics writers routinely omit (Latin accents, Arabic-script harakat)
   dropped, Arabic and Urdu letter variants (ي/ی, ك/ک, ه/ہ) unified, zero-width joiners and
   tatweel removed, every script's digits read as ASCII digits, punctuation as spaces. English
   and Urdu stop words are dropped (the lists cannot clash: different scripts), English words
   are trimmed to a crude stem (plural and tense endings, then 7 letters). Numbers are kept
   whole (``1,200`` is ``1200``, ``9.2`` stays ``9.2``), and so are names with a number in
   them (``T20``, ``M-2``, ``KSE-100``): they tell stories apart.
2. **Weights.** TF-IDF over this edition's candidates, so a term every other story has (a
   city, "Pakistan") counts little and a rare one (a name, a figure) counts much. Headline
   and lead terms weigh the same: with the headline counted twice, same-topic headlines
   ("Supreme Court reserves verdict ...") outweighed the leads that told their stories apart.
3. **Candidate pairs.** An inverted index of the terms. Each article looks up its
   ``PROBE_TERMS`` rarest terms that some other article has (skipping any in more than
   ``MAX_POSTINGS`` articles: a topic, not a story), and is compared only with the articles
   holding ``PROBE_HITS`` of them. Two reports of one story share rare terms (a name, a
   figure, a place), so this finds them without comparing every pair: the work grows with the
   articles, not with their square (``bench/cluster.py`` times 5,000).
4. **Same story?** A pair is linked when its cosine similarity reaches ``THRESHOLD`` (or
   ``SAME_FEED_THRESHOLD`` for two items of one feed, which seldom carries a story twice:
   a follow-up is usually the same feed's next item), it shares at least ``MIN_SHARED`` terms
   (one common word is no evidence), its headlines do not give different figures ("450
   points" against "1,200 points" is another day's market report; "9 million" and "9.2
   million" agree; see ``numbers_conflict``), and the two were published within ``WINDOW``
   of each other (on different days, the same words are a different day's story). Two URLs on
   one host naming the same article (the same numeric id or slug in another section's path,
   an AMP copy) link a pair sharing ``MIN_SHARED`` terms whatever its similarity and figures
   (an id in more than ``MAX_URL_SHARING`` URLs is a category's, and ignored).
5. **Groups.** Union-find over the links, strongest first, with a guard against chaining (A
   like B, B like C, A nothing like C): two groups join only when the mean similarity of all
   their cross pairs reaches ``GROUP_THRESHOLD`` (lower than ``THRESHOLD``: a third report
   may word a story differently from one of two others, as long as the group holds together),
   no cross pair breaks step 4's rules on figures, feeds and time, and the joined group has
   at most ``MAX_CLUSTER`` members.

The thresholds were set on ``tests/data/cluster/corpus.json`` (fictional, hand-labelled
items, English and Urdu): any ``THRESHOLD`` from 0.24 to 0.36 with this ``GROUP_THRESHOLD``
keeps pairwise precision and recall at 0.95 or more there, and 0.30 is the middle of that
range. ``tests/edition/test_cluster.py`` holds the figures; ``bench/cluster.py`` prints them
with the timing.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

#: Words of the teaser read after the headline: enough for the who/what/where of a lead,
#: not the background paragraphs that every story on a topic shares.
LEAD_WORDS = 30
#: Characters read of a headline and of a teaser: hostile or broken feeds send megabytes.
MAX_HEADLINE_CHARS = 400
MAX_TEASER_CHARS = 1200
#: Longest number read as a quantity (digits and separators).
MAX_NUMBER_CHARS = 20
#: Cosine similarity from which two articles are one story.
THRESHOLD = 0.30
#: The same, for two articles of one feed (a feed rarely repeats a story; it follows it up).
SAME_FEED_THRESHOLD = 0.7
#: Mean similarity of all cross pairs from which two groups join.
GROUP_THRESHOLD = 0.25
#: Terms two articles must share before their similarity means anything.
MIN_SHARED = 3
#: Articles further apart in time than this are different stories (tomorrow's market report).
WINDOW = dt.timedelta(hours=18)
#: Rarest terms of each article looked up in the index ...
PROBE_TERMS = 8
#: ... and how many of them another article must have to be compared with it.
PROBE_HITS = 2
#: A term in more articles than this is never looked up: it is a topic, not a story.
MAX_POSTINGS = 60
#: Most articles one cluster takes: a bound on the work, far above any real story's reach.
MAX_CLUSTER = 32
#: An id or slug in more URLs of one host than this names a category, not an article.
MAX_URL_SHARING = 4

_STOP_WORDS_EN = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers him his how i if in into is it its itself just
me more most my no nor not now of off on once only or other our out over own same she should
so some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your
says said say told amid new per
"""
_STOP_WORDS_UR = """
اور کا کی کے کو سے میں نے پر ہے ہیں تھا تھی تھے ہو ہوا ہوئی ہوئے گا گی گے یہ وہ ایک بھی
کہ جو تک لیے کر کیا کیے گیا گئی گئے دیا دی دیے رہا رہی رہے ہوگا ہوگی نہیں اس ان جس جن
بعد ساتھ مطابق جانب باعث والے والی واسطے کرنے کرتے
"""

#: A name with a number in it ("T20", "M-2", "KSE-100", "Rs50"), a number, or a word.
_TOKEN = re.compile(r"[^\W\d_]+-?\d+(?:[.,]\d+)*|\d+(?:[.,]\d+)*|[^\s\d.,-]+")
#: The letters of a name with a number in it, and the hyphen after them.
_CODE_LETTERS = re.compile(r"([^\W\d_]+)-?(?=\d)")
#: Letters that make the number after them an amount, not a name ("Rs50bn").
_CURRENCIES = frozenset({"rs", "pkr", "usd", "inr", "eur", "gbp", "aed", "sar", "cny"})
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


class _CharMap(dict[int, str]):
    """``str.translate`` table built as characters are met: each code point's fate, once."""

    #: Code points remembered: every script's letters in use fit; hostile text cycling
    #: through all of Unicode costs time, not memory.
    LIMIT = 20_000

    def __missing__(self, code: int) -> str:
        char = chr(code)
        category = unicodedata.category(char)
        value: str
        if char in _LETTER_VARIANTS:
            value = _LETTER_VARIANTS[char]
        elif char in "٫":
            value = "."
        elif char in "٬":
            value = ","
        elif category == "Nd":
            value = str(unicodedata.decimal(char))
        elif (category == "Mn" and code < 0x0800) or category == "Cf" or char == "\u0640":
            # Accents and harakat (Latin to Arabic blocks: writers drop them at will), zero-width
            # joiners, bidi marks, soft hyphens and tatweel: none changes the word. Marks of
            # scripts further up (Devanagari vowel signs) are letters of the word and stay.
            value = ""
        elif char in "-\u2010\u2011":
            value = "-"  # kept: "M-2" is one name; a word's hyphen splits it all the same
        elif category[0] in "PSZC" and char not in ".,":
            value = " "
        else:
            value = char
        if len(self) < self.LIMIT:
            self[code] = value
        return value


#: Arabic-script letters Urdu text is typed with interchangeably (Arabic keyboards).
_LETTER_VARIANTS = {"ي": "ی", "ى": "ی", "ك": "ک", "ه": "ہ"}
_CHARS = _CharMap()


def normalise(text: str) -> str:
    """``text`` as matching sees it: one form per letter, digits in ASCII, punctuation gone."""
    text = unicodedata.normalize("NFKC", text).casefold()
    # Decomposed so that an accent or a hamza is a mark of its own, which the map drops.
    text = unicodedata.normalize("NFD", text).translate(_CHARS)
    return unicodedata.normalize("NFC", text)


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A crude English stem: enough that "rises", "rise" and "rising" meet."""
    if not (word.isascii() and word.isalpha()) or len(word) < 4:
        return word
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word[:7]


def _number(token: str) -> str:
    """``1,200`` as ``1200``; ``9.2`` and ``3.72`` unchanged; ``1,5`` (a decimal comma) ``1.5``."""
    if _THOUSANDS.fullmatch(token):
        return token.replace(",", "")
    return token.replace(",", ".")


_STOP_WORDS = frozenset(
    _stem(normalise(word)) for word in (_STOP_WORDS_EN + _STOP_WORDS_UR).split()
)


def terms(text: str, limit: int | None = None) -> list[str]:
    """The matching terms of ``text`` in order (the first ``limit`` words only, if given)."""
    return _terms(normalise(text), limit)


def _terms(normalised: str, limit: int | None = None) -> list[str]:
    words = _TOKEN.findall(normalised)
    if limit is not None:
        words = words[:limit]
    out = []
    for word in words:
        if word[0].isdigit():
            out.append(_number(word))
        elif word[-1].isdigit():
            out.append(word.replace("-", ""))
        elif len(word) > 1:
            stem = _stem(word)
            if stem not in _STOP_WORDS:
                out.append(stem)
    return out


def numbers(text: str) -> frozenset[Decimal]:
    """The quantities ``text`` states, as written (``9.2`` keeps its one decimal); a number
    glued to letters ("T20", "M-2", "KSE-100") is part of a name, not a quantity, unless the
    letters are a currency ("Rs50")."""
    return _numbers(normalise(text))


def _numbers(normalised: str) -> frozenset[Decimal]:
    values = set()
    for word in _TOKEN.findall(normalised):
        letters = _CODE_LETTERS.match(word)
        if letters is None:
            token = word if word[0].isdigit() else ""
        else:
            # A name ("T20", "KSE-100") unless the letters are a currency ("Rs50").
            token = word[letters.end() :] if letters.group(1) in _CURRENCIES else ""
        if not token or len(token) > MAX_NUMBER_CHARS:
            continue  # no figure in the news has this many digits; Decimal would choke on it
        try:
            values.add(Decimal(_number(token)))
        except InvalidOperation:  # "1.2.3": a version or a date, not a quantity
            continue
    return frozenset(values)


def _agree(a: Decimal, b: Decimal) -> bool:
    """One figure, maybe given with fewer decimals by one report: 9.2 and 9 ("over 9
    million") agree, 9.2 and 9.3 do not, and neither do 115 and 121."""
    if a == b:
        return True
    finer, coarser = (a, b) if _exponent(a) < _exponent(b) else (b, a)
    step = Decimal(1).scaleb(_exponent(coarser))
    return coarser in (
        finer.quantize(step, rounding=ROUND_HALF_UP),
        finer.quantize(step, rounding=ROUND_DOWN),
    )


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def numbers_conflict(
    left: frozenset[Decimal],
    right: frozenset[Decimal],
    left_text: frozenset[Decimal],
    right_text: frozenset[Decimal],
) -> bool:
    """True when two headlines give different figures: both state numbers (``left``,
    ``right``) and none of either's is found anywhere in the other article (``*_text``:
    headline and teaser), so "450 points" and "1,200 points" are two days' reports, while a
    number one headline names in passing ("Domestic T20") and the other's teaser repeats is
    no conflict."""
    if not left or not right:
        return False
    found = any(_agree(a, b) for a in left for b in right_text) or any(
        _agree(a, b) for a in right for b in left_text
    )
    return not found


_HOST_PREFIXES = ("www.", "m.", "amp.", "mobile.")
_SLUG = re.compile(r"[^\W_]+(?:-[^\W_]+){2,}")


def url_keys(url: str) -> frozenset[str]:
    """What in a URL names its article: ``host|id`` for a numeric id of five digits or more,
    ``host|slug`` for a hyphenated slug of three words or more. Two URLs sharing a key are one
    article under two paths (another section, an AMP copy, tracking parameters)."""
    try:
        parts = urlsplit(url.strip()[:2000])
        host = (parts.hostname or "").lower()
    except ValueError:
        return frozenset()
    if not host:
        return frozenset()
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    keys = set()
    for segment in parts.path.lower().split("/"):
        segment = segment.removesuffix(".html").removesuffix(".htm").removesuffix(".amp")
        article_id = segment.isdigit() and len(segment) >= 5 and not _looks_like_date(segment)
        if article_id or _SLUG.fullmatch(segment):
            keys.add(f"{host}|{segment}")
    return frozenset(keys)


def _looks_like_date(digits: str) -> bool:
    """20261124 is a day, not an article: every story of that day would share it."""
    return len(digits) == 8 and digits[:2] in ("19", "20")


class Story(Protocol):
    """What clustering reads of an article."""

    @property
    def id(self) -> int: ...
    @property
    def headline(self) -> str: ...
    @property
    def teaser(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def published_at(self) -> dt.datetime: ...
    @property
    def source_id(self) -> int | None: ...


S = TypeVar("S", bound=Story)


@dataclass(frozen=True)
class Cluster(Generic[S]):
    """One story: the article an edition shows, and the other reports of it."""

    representative: S
    others: tuple[S, ...] = ()

    @property
    def members(self) -> tuple[S, ...]:
        return (self.representative, *self.others)


@dataclass
class _Doc:
    index: int
    vector: dict[str, float]
    shared: frozenset[str]
    numbers: frozenset[Decimal]
    all_numbers: frozenset[Decimal]
    urls: frozenset[str]
    when: dt.datetime
    source: int | None


def _vectors(stories: Sequence[Story]) -> list[_Doc]:
    """Each story as a unit TF-IDF vector (IDF over ``stories``) with what the rules read."""
    docs = []
    for i, story in enumerate(stories):
        headline = normalise(story.headline[:MAX_HEADLINE_CHARS])
        teaser = normalise(story.teaser[:MAX_TEASER_CHARS])
        bag: dict[str, float] = defaultdict(float)
        for term in (*_terms(headline), *_terms(teaser, LEAD_WORDS)):
            bag[term] += 1.0
        in_headline = _numbers(headline)
        docs.append(
            _Doc(
                index=i,
                vector=bag,
                shared=frozenset(bag),
                numbers=in_headline,
                all_numbers=in_headline | _numbers(teaser),
                urls=url_keys(story.url),
                when=story.published_at,
                source=story.source_id,
            )
        )
    df: dict[str, int] = defaultdict(int)
    for doc in docs:
        for term in doc.shared:
            df[term] += 1
    n = len(docs)
    for doc in docs:
        weighted = {t: w * (math.log((1 + n) / (1 + df[t])) + 1.0) for t, w in doc.vector.items()}
        norm = math.sqrt(sum(w * w for w in weighted.values())) or 1.0
        doc.vector = {t: w / norm for t, w in weighted.items()}
    return docs


def _cosine(left: dict[str, float], right: dict[str, float]) -> float:
    if len(left) > len(right):
        left, right = right, left
    return sum(w * right.get(t, 0.0) for t, w in left.items())


def _candidates(docs: Sequence[_Doc]) -> set[tuple[int, int]]:
    """Pairs worth comparing: sharing at least ``PROBE_HITS`` of either's ``PROBE_TERMS``
    rarest terms (terms some other article has, in at most ``MAX_POSTINGS`` articles), or an
    article key in their URLs."""
    postings: dict[str, list[int]] = defaultdict(list)
    for doc in docs:
        for term in doc.shared:
            postings[term].append(doc.index)
    pairs: set[tuple[int, int]] = set()
    for doc in docs:
        # Terms no other article has lead nowhere; terms too many have say too little.
        probes = sorted(
            (t for t in doc.shared if 1 < len(postings[t]) <= MAX_POSTINGS),
            key=lambda t: (len(postings[t]), t),
        )[:PROBE_TERMS]
        hits: dict[int, int] = defaultdict(int)
        for term in probes:
            for other in postings[term]:
                hits[other] += 1
        needed = min(PROBE_HITS, len(probes))
        for other, count in hits.items():
            if other != doc.index and count >= needed:
                pairs.add((min(doc.index, other), max(doc.index, other)))
    by_url: dict[str, list[int]] = defaultdict(list)
    for doc in docs:
        for key in doc.urls:
            by_url[key].append(doc.index)
    for key, indices in by_url.items():
        if len(indices) > MAX_URL_SHARING:
            # Not an article's id or slug but a category's, which many articles carry.
            for i in indices:
                docs[i].urls = docs[i].urls - {key}
            continue
        for x, a in enumerate(indices):
            for b in indices[x + 1 :]:
                pairs.add((a, b))
    return pairs


def similarity(left: _Doc, right: _Doc) -> float:
    """How alike two articles are, 0 to 1; 1 for one article under two URLs."""
    if left.urls & right.urls:
        return 1.0
    return _cosine(left.vector, right.vector)


def _forbidden(left: _Doc, right: _Doc) -> bool:
    """True when the pair cannot be one story, however many others link them."""
    if abs(left.when - right.when) > WINDOW:
        return True
    if left.urls & right.urls:
        return False
    if numbers_conflict(left.numbers, right.numbers, left.all_numbers, right.all_numbers):
        return True
    if left.source is not None and left.source == right.source:
        return similarity(left, right) < SAME_FEED_THRESHOLD
    return False


def _linked(left: _Doc, right: _Doc, score: float) -> bool:
    """True when the pair on its own is evidence of one story (``score``: its similarity)."""
    if _forbidden(left, right) or len(left.shared & right.shared) < MIN_SHARED:
        return False
    return bool(left.urls & right.urls) or score >= THRESHOLD


class _Groups:
    """Union-find whose groups keep what the chaining guard needs: their members and the sum
    of their unit vectors (the mean cosine over all cross pairs is the dot product of the two
    sums, divided by the number of pairs)."""

    def __init__(self, docs: Sequence[_Doc]) -> None:
        self.docs = docs
        self.parent = list(range(len(docs)))
        self.members: dict[int, list[int]] = {d.index: [d.index] for d in docs}
        self.sums: dict[int, dict[str, float]] = {d.index: dict(d.vector) for d in docs}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> bool:
        """Join the groups of linked articles ``a`` and ``b`` unless the guard refuses."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        left, right = self.members[ra], self.members[rb]
        if len(left) + len(right) > MAX_CLUSTER:
            return False
        times = [self.docs[i].when for i in (*left, *right)]
        if max(times) - min(times) > WINDOW:
            return False
        if len(left) * len(right) > 1:
            mean = _cosine(self.sums[ra], self.sums[rb]) / (len(left) * len(right))
            if mean < GROUP_THRESHOLD:
                return False
            if any(_forbidden(self.docs[i], self.docs[j]) for i in left for j in right):
                return False
        if len(left) < len(right):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))
        total = self.sums[ra]
        for term, weight in self.sums.pop(rb).items():
            total[term] = total.get(term, 0.0) + weight
        return True


def cluster(stories: Sequence[S], prefer: Callable[[S], Any] | None = None) -> list[Cluster[S]]:
    """``stories`` grouped into one cluster per story, each story in exactly one.

    ``prefer`` orders a cluster's members (smallest first); the first is its representative.
    By default the earliest published, then the lowest id. Clusters come in the order of
    their representatives under the same key.
    """
    key: Callable[[S], Any] = prefer or (lambda s: (s.published_at, s.id))
    unique: dict[int, S] = {}
    for story in stories:
        unique.setdefault(story.id, story)
    items = list(unique.values())
    docs = _vectors(items)
    links = []
    for a, b in _candidates(docs):
        left, right = docs[a], docs[b]
        # The cheap test first: most candidate pairs share a rare term and little else.
        if len(left.shared & right.shared) < MIN_SHARED:
            continue
        score = similarity(left, right)
        if _linked(left, right, score):
            links.append((-score, a, b))
    links.sort()
    groups = _Groups(docs)
    for _, a, b in links:
        groups.join(a, b)
    clusters = []
    for indices in groups.members.values():
        members = sorted((items[i] for i in indices), key=key)
        clusters.append(Cluster(members[0], tuple(members[1:])))
    clusters.sort(key=lambda c: key(c.representative))
    return clusters
