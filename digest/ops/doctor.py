"""``digest doctor``'s report: one line per check (the checks are ``digest.service.health``'s),
and whether everything needed works."""

from __future__ import annotations

from collections.abc import Callable

from digest.service.health import Check, run_checks

__all__ = ["Check", "report", "run_checks"]


def report(checks: list[Check], echo: Callable[[str], None]) -> bool:
    """Print one line per check; returns whether everything needed works."""
    for check in checks:
        echo(f"{check.status:<4} {check.name}: {check.detail}")
    return all(check.status != "fail" for check in checks)
