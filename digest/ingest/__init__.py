"""Fetching and parsing sources into articles.

The names below load ``digest.ingest.run`` (httpx, feedparser) only when first used, so a
module that needs just ``digest.ingest.text`` does not pay for the whole fetcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.ingest.run import SourceReport, ingest_all, ingest_source

__all__ = ["SourceReport", "ingest_all", "ingest_source"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from digest.ingest import run

        return getattr(run, name)
    raise AttributeError(f"module 'digest.ingest' has no attribute {name!r}")
