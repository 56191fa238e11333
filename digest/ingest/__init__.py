"""Fetching and parsing sources into articles."""

from digest.ingest.run import SourceReport, ingest_all, ingest_source

__all__ = ["SourceReport", "ingest_all", "ingest_source"]
