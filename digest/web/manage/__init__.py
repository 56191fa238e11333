"""The operator's management pages under ``/dashboard/``: sections, sources, lists,
subscribers, suppressions and bounces. One blueprint (``common.bp``), a module per page group;
every page needs the operator role, every change is a POST with the session's CSRF token, and
every change goes through ``digest.service`` (the catalog facade), whose InputError becomes a
message on the page, never a 500."""

# The page modules register their routes on the blueprint when loaded.
from digest.web.manage import lists, sections, sources, subscribers, suppressions
from digest.web.manage.common import bp

__all__ = ["bp", "lists", "sections", "sources", "subscribers", "suppressions"]
