"""The README stays true to the code: every setting is in its configuration table, and
every command the CLI has is one the README or `digest --help` names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import COMMANDS, cli
from digest.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.unit


def test_every_setting_is_documented() -> None:
    """Each `DIGEST_*` variable Settings reads appears in the README."""
    missing = [
        f"DIGEST_{field.name.upper()}"
        for field in dataclasses.fields(Settings)
        if f"DIGEST_{field.name.upper()}" not in README
    ]
    assert missing == []


def test_command_table_matches_each_commands_own_help() -> None:
    """`digest --help` lists every command from the static table (so it loads no command
    module), and each line there is the first line of that command's own help."""
    listing = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for name, (_module, _attribute, summary) in COMMANDS.items():
        assert f"{name} {summary.split()[0]}" in listing, name
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None, name
        own = (command.help or "").strip().split()
        assert own[:2] == summary.split()[:2], (name, own[:2], summary)


def test_every_number_setting_has_a_range() -> None:
    """Each int or float setting is checked against a range at load (NUMBER_RANGES), so a
    negative rate or a zero pool is one clear line, not a hang or a traceback later."""
    from digest.config import NUMBER_RANGES

    numbers = {f.name for f in dataclasses.fields(Settings) if f.type in ("int", "float")}
    assert numbers - set(NUMBER_RANGES) == set()
