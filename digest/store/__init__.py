"""The tables (``models``) and the database with its migrations (``db``)."""

__all__ = [
    "db",
    "models",
]
