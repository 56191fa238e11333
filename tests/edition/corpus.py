"""The labelled clustering corpus (tests/data/cluster/corpus.json) and how a clustering of it
is scored: shared by the clustering tests and bench/cluster.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from digest.edition.cluster import Cluster
from digest.edition.select import ArticleView

CORPUS = Path(__file__).resolve().parents[1] / "data" / "cluster" / "corpus.json"


@dataclass(frozen=True)
class Corpus:
    articles: list[ArticleView]
    #: Article id -> its story's label: the same label, the same story.
    story: dict[int, str]
    #: Pairs of story labels on one topic that must stay apart.
    hard_negatives: list[tuple[str, str]]

    def day(self, day: dt.date) -> list[ArticleView]:
        """The articles published on ``day`` (UTC): about what one edition sees."""
        return [a for a in self.articles if a.published_at.date() == day]

    @property
    def days(self) -> list[dt.date]:
        return sorted({a.published_at.date() for a in self.articles})


def load(path: Path = CORPUS) -> Corpus:
    data = json.loads(path.read_text(encoding="utf-8"))
    articles = [
        ArticleView(
            id=item["id"],
            section_slug=item["section"],
            headline=item["headline"],
            teaser=item["teaser"],
            url=item["url"],
            published_at=dt.datetime.fromisoformat(item["published_at"]),
            source_id=item["source_id"],
            source_name=item["source"],
            feed_position=item["position"],
        )
        for item in data["items"]
    ]
    story = {item["id"]: item["story"] for item in data["items"]}
    negatives = [(a, b) for a, b in data["hard_negatives"]]
    return Corpus(articles, story, negatives)


@dataclass(frozen=True)
class Scores:
    """Pairwise figures: a pair is "same story" in the labels, the clustering, or both."""

    true_pairs: int
    false_pairs: int
    missed_pairs: int
    #: Pairs of articles from hard-negative stories put in one cluster.
    hard_negatives_merged: int
    #: The wrong and the missed pairs themselves, for a reader tuning the method.
    false: list[tuple[int, int]]
    missed: list[tuple[int, int]]

    @property
    def precision(self) -> float:
        found = self.true_pairs + self.false_pairs
        return self.true_pairs / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_pairs + self.missed_pairs
        return self.true_pairs / labelled if labelled else 1.0


def _pairs(groups: Iterable[Sequence[int]]) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for group in groups for a, b in combinations(group, 2)}


def score(
    clusters: Sequence[Cluster[ArticleView]],
    story: dict[int, str],
    hard_negatives: Sequence[tuple[str, str]] = (),
) -> Scores:
    """Pairwise precision and recall of ``clusters`` against the labels of the articles in them."""
    ids = [a.id for c in clusters for a in c.members]
    by_story: dict[str, list[int]] = {}
    for i in ids:
        by_story.setdefault(story[i], []).append(i)
    labelled = _pairs(by_story.values())
    found = _pairs([a.id for a in c.members] for c in clusters)
    negative = {frozenset(p) for p in hard_negatives}
    merged = sum(1 for a, b in found if frozenset((story[a], story[b])) in negative)
    return Scores(
        true_pairs=len(labelled & found),
        false_pairs=len(found - labelled),
        missed_pairs=len(labelled - found),
        hard_negatives_merged=merged,
        false=sorted(found - labelled),
        missed=sorted(labelled - found),
    )
