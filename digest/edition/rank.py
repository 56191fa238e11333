"""The order of a section's stories: the editor's pins first, then a score that counts more
than recency. Pure: no database, no I/O, no clock (the edition says what "now" is).

A story's score is a sum of points:

* **Feeds carrying it:** ``COVERAGE_POINTS`` for every doubling of the feeds that carried it
  (log2: one feed 0, two 1.0, three 1.58, four 2.0). Every feed that ran a story is an editor
  who judged it news; the log keeps a story every outlet repeats from burying all the rest.
* **Top of its feed:** up to ``TOP_OF_FEED_POINTS`` for its best place in a feed: the top
  item gets it all, each place lower a tenth less, the tenth and below (or unknown) nothing.
  Feeds list a desk's lead first, but the order is also mostly the time of filing, so it
  weighs less than a second feed: a story in two feeds outranks one at the top of one.
* **Age:** minus one point per ``HOURS_PER_POINT`` hours between its latest report and the
  edition's newest article. Within a day's edition that is at most about two points: a story
  a second feed carried beats a single report up to twelve hours newer, and among stories
  alike in feeds and place the newest comes first, as before clustering.

Ties go to the newer story (its latest report), then to the higher id, the order the edition
used before it ranked (the newest first; of two at one instant, the later stored).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from digest.edition.cluster import Cluster, Story

COVERAGE_POINTS = 1.0
TOP_OF_FEED_POINTS = 0.5
#: Feed places that still earn something: the tenth item and below count as unknown.
FEED_DEPTH = 10
HOURS_PER_POINT = 12.0


class RankedStory(Story, Protocol):
    """What ranking reads of an article, besides what clustering reads."""

    @property
    def feed_position(self) -> int | None: ...


R = TypeVar("R", bound=RankedStory)


def feeds(cluster: Cluster[R]) -> int:
    """How many feeds carried the story; an article of a deleted source counts by its host."""
    keys: set[object] = set()
    for article in cluster.members:
        if article.source_id is not None:
            keys.add(article.source_id)
        else:
            try:
                keys.add(urlsplit(article.url).hostname or article.url)
            except ValueError:
                keys.add(article.url)
    return len(keys)


def best_position(cluster: Cluster[R]) -> int | None:
    """The story's highest place in any feed (0 = top), None if no feed's place is known."""
    places = [a.feed_position for a in cluster.members if a.feed_position is not None]
    return min(places) if places else None


def latest(cluster: Cluster[R]) -> dt.datetime:
    """When the story was last reported."""
    return max(a.published_at for a in cluster.members)


def score(cluster: Cluster[R], now: dt.datetime) -> float:
    """The story's points (see the module's docstring); ``now`` is the edition's newest
    article's time, so the same articles always score the same."""
    points = COVERAGE_POINTS * math.log2(feeds(cluster))
    place = best_position(cluster)
    if place is not None and place < FEED_DEPTH:
        points += TOP_OF_FEED_POINTS * (1 - max(place, 0) / FEED_DEPTH)
    hours = (now - latest(cluster)).total_seconds() / 3600
    return points - hours / HOURS_PER_POINT


def rank(
    clusters: Sequence[Cluster[R]],
    now: dt.datetime | None = None,
    pins: Sequence[int] = (),
) -> list[Cluster[R]]:
    """``clusters`` best first: those holding a pinned article (``pins``: article ids in the
    editor's order) in pin order, then the rest by score, then recency, then id.

    ``now`` defaults to the newest article among ``clusters``.
    """
    if not clusters:
        return []
    reference = now or max(latest(c) for c in clusters)
    pin_order = {article_id: i for i, article_id in reversed(list(enumerate(pins)))}

    def pinned(c: Cluster[R]) -> int | None:
        places = [pin_order[a.id] for a in c.members if a.id in pin_order]
        return min(places) if places else None

    pinned_clusters = sorted(
        (c for c in clusters if pinned(c) is not None), key=lambda c: pinned(c) or 0
    )
    rest = sorted(
        (c for c in clusters if pinned(c) is None),
        key=lambda c: (score(c, reference), latest(c), c.representative.id),
        reverse=True,
    )
    return [*pinned_clusters, *rest]
