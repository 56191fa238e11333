"""The codebase stays lint-clean, formatted and type-checked (ruff and mypy, as configured)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_passes() -> None:
    """`ruff check` finds nothing in the package, tests and benchmarks."""
    result = _run("ruff", "check", "digest", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    """Every file is formatted as `ruff format` would write it."""
    result = _run("ruff", "format", "--check", "digest", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes() -> None:
    """The package type-checks under mypy with the project's settings."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
