"""The operator's JSON API under ``/api/``, one module per resource on the blueprint of
``base`` (authentication, errors and request helpers): ``catalog`` (sections, sources,
lists, subscribers), ``editions``, ``review`` (an editor's review of a held edition) and
``openapi``."""

from __future__ import annotations

from digest.web.api import catalog, editions, openapi, review
from digest.web.api.base import bp

__all__ = ["bp", "catalog", "editions", "openapi", "review"]
