"""Operational faces beside the CLI and the web app: ``doctor``'s report."""

__all__ = [
    "doctor",
]
