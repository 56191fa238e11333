"""`digest lists edit`, `--when-empty` and `--utm` as the operator types them; a command run
where no site is configured; and output cut short by `| head`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.test_cli import Operator, operator  # noqa: F401 - the fixture


def _site(operator: Operator) -> None:  # noqa: F811
    operator("init")
    for slug in ("national", "sports"):
        operator("sections", "add", slug, "--name", slug.title())
    operator("lists", "add", "daily", "--name", "Daily", "--sections", "national,sports",
             "--per-section", "5", "--timezone", "Asia/Karachi")  # fmt: skip


def test_lists_edit_changes_only_the_settings_given(operator: Operator) -> None:  # noqa: F811
    """--per-section 3 changes that alone: name, sections and zone stay; the new settings are
    shown by `lists list`."""
    _site(operator)
    said = operator("lists", "edit", "daily", "--per-section", "3").output
    assert "changed list daily (--per-section)" in said
    assert "national, sports; Asia/Karachi, sends at 07:00, 3 per section" in said
    operator("lists", "edit", "daily", "--when-empty", "all", "--utm",
             "utm_source=digest&utm_campaign={list}")  # fmt: skip
    listing = operator("lists", "list").output
    assert "Asia/Karachi 07:00  [national,sports]  Daily" in listing
    assert "when a reader's sections have nothing: all" in listing
    assert "article links tagged utm_source=digest&utm_campaign={list}" in listing
    operator("lists", "edit", "daily", "--utm", "")
    assert "tagged" not in operator("lists", "list").output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["lists", "edit", "weekly", "--per-section", "3"], "unknown list: weekly"),
        (["lists", "edit", "daily"], "nothing to change"),
        (["lists", "edit", "daily", "--per-section", "0"], "not in the range"),
        (["lists", "edit", "daily", "--when-empty", "never"], "'never' is not one of"),
        (["lists", "edit", "daily", "--utm", "utm_source=a b"], "--utm value of utm_source"),
        (["lists", "edit", "daily", "--sections", "national,nope"], "unknown section: nope"),
        (["lists", "edit", "daily", "--timezone", "Mars/Olympus"], "Mars/Olympus"),
    ],
)
def test_lists_edit_refuses_bad_input_in_one_line_and_changes_nothing(
    operator: Operator,  # noqa: F811
    args: list[str],
    words: str,
) -> None:
    """An unknown list or a bad value is one line, exit 1 or 2, and the list is as it was."""
    _site(operator)
    before = operator("lists", "list").output
    result = operator(*args, ok=False)
    assert result.exit_code in (1, 2)
    assert words in result.output
    assert "Traceback" not in result.output
    assert operator("lists", "list").output == before


def test_a_folder_with_no_site_is_said_not_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no digest.toml, DIGEST_CONFIG or DIGEST_DATABASE_URL, `status` names `digest setup`
    and `digest demo` and leaves no digest.db or secret behind; --help, --version and setup
    still work."""
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    runner = CliRunner()
    for args in (["status"], ["lists", "list"], ["ingest"], ["doctor", "--quick"]):
        result = runner.invoke(cli, args, env={**dict.fromkeys(os.environ), **env})
        assert result.exit_code == 1, result.output
        assert "no Digest site here" in result.output
        assert "`digest setup`" in result.output and "`digest demo`" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert runner.invoke(cli, ["--version"]).exit_code == 0
    assert runner.invoke(cli, ["status", "--help"]).exit_code == 0
    setup = ["setup", "--no-interactive", "--site-name", "Town", "--site-url",
             "https://t.example", "--postal-address", "1 Road", "--from-address",
             "news@t.example", "--base-url", "https://digest.t.example"]  # fmt: skip
    made = runner.invoke(cli, setup, env={**dict.fromkeys(os.environ), **env})
    assert made.exit_code == 0, made.output
    assert (tmp_path / "digest.toml").exists()


def test_output_cut_short_by_the_reader_ends_quietly(
    operator: Operator,  # noqa: F811
) -> None:
    """`digest lists list` whose reader has gone (`| head -1`): no traceback, no error line."""
    _site(operator)
    process = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "lists", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **operator.env},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader leaves before the first line is written
    errors = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in errors
    assert "Broken pipe" not in errors and "Error" not in errors
