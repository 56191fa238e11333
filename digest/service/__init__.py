"""The core under every face: ``core.Digest`` and the facades it hands out (the catalog, the
readers' pages, access, the inbox, tracking), with the view models the faces format."""

__all__ = [
    "access",
    "catalog",
    "core",
    "csvio",
    "demo",
    "dispatch",
    "health",
    "identity",
    "inbox",
    "metrics",
    "notices",
    "queue",
    "readers",
    "stats",
    "summary",
    "throttle",
    "tracking",
]
