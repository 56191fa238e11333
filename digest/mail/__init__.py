"""Turning a rendered edition into mail: MIME and headers (``mime``), DKIM (``dkim``), signed
links (``tokens``, ``tracking``) and the VERP return path (``verp``)."""

__all__ = [
    "dkim",
    "mime",
    "tokens",
    "tracking",
    "verp",
]
