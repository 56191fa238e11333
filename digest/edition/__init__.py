"""Choosing, building and steering editions: the pure selection of a day's articles (``select``),
the build that stores an edition and writes its ledger (``build``), the ledger itself
(``ledger``), every status change (``lifecycle``) and the operator's names for states
(``state``)."""

__all__ = [
    "build",
    "ledger",
    "lifecycle",
    "popularity",
    "select",
    "state",
]
