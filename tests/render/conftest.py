"""Fixtures shared with the CLI tests: `operator` runs `digest ...` against a test database."""

from tests.test_cli import operator  # noqa: F401 - re-exported as a fixture for this folder
