"""The operator's commands on a site the sample never showed: feeds on disk, a CSV, SMTP."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.builders import atom, atom_entry, rss, rss_item
from tests.conftest import SmtpSink

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW - dt.timedelta(minutes=30)
# The list is in UTC: name the day of the stories, so a run just after midnight still works.
DAY = TODAY.date().isoformat()


def _rss(items: list[tuple[str, str, dt.datetime]]) -> str:
    return rss(*(rss_item(*item) for item in items)).decode()


def _atom(items: list[tuple[str, str, dt.datetime]]) -> str:
    return atom(*(atom_entry(*item) for item in items)).decode()


class Operator:
    """Runs `digest ...` as an operator would, with settings in the environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def operator(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpSink
) -> Operator:
    monkeypatch.chdir(tmp_path)
    return Operator(
        {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SMTP_URL": smtp_server.url,
            "DIGEST_SECRET_KEY": "cli-test-secret",
            "DIGEST_BASE_URL": "https://town.example",
            "DIGEST_SITE_NAME": "Town Crier",
            "DIGEST_FROM_ADDRESS": "news@town.example",
        }
    )


def _set_up_town(operator: Operator, tmp_path: Path) -> None:
    today = TODAY
    (tmp_path / "local.xml").write_text(
        _rss([(f"Local story {i}", f"https://town.example/local/{i}", today) for i in range(4)])
    )
    (tmp_path / "weather.atom").write_text(
        _atom(
            [
                ("Rain tomorrow", "https://town.example/weather/rain", today),
                ("Old forecast", "https://town.example/weather/old", NOW - dt.timedelta(days=3)),
            ]
        )
    )
    (tmp_path / "readers.csv").write_text(
        "email,name\n"
        "ann@example.com,Ann\n"
        "not-an-address,Broken\n"
        "bob@example.org,Bob\n"
        "Carol@Example.NET,Carol\n"
    )
    operator("init")
    operator("sections", "add", "local", "--name", "Local")
    operator("sections", "add", "weather", "--name", "Weather")
    operator("sources", "add", str(tmp_path / "local.xml"), "--section", "local")
    operator("sources", "add", (tmp_path / "weather.atom").as_uri(), "--section", "weather")
    operator(
        "lists",
        "add",
        "town",
        "--name",
        "Town Daily",
        "--sections",
        "weather,local",
        "--per-section",
        "3",
    )


def test_operator_steps_produce_one_correct_digest_each(
    operator: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """init, sources, lists, CSV import (bad row reported by line), ingest, preview and send
    deliver one digest per good address with the list's sections in order, once."""
    _set_up_town(operator, tmp_path)
    imported = operator("subscribers", "import", "readers.csv", "--list", "town", ok=False)
    assert imported.exit_code == 1
    assert "readers.csv:3:" in imported.output and "imported 3 new" in imported.output

    assert "6 new articles" in operator("ingest").output
    assert "0 new articles" in operator("ingest").output

    preview = operator("preview", "--list", "town", "--date", DAY, "--out", "p.html").output
    assert "preview written" in preview
    html = (tmp_path / "p.html").read_text()
    assert html.index(">Weather<") < html.index(">Local<")
    # 3 per section: of four stories filed at one instant, the feed's lowest is left out.
    assert "Local story 3" not in html and "Local story 0" in html
    assert "Old forecast" not in html  # not today's

    dry = operator("send", "--list", "town", "--date", DAY, "--dry-run").output
    assert "would send to 3 subscribers" in dry and not smtp_server.received

    sent = operator("send", "--list", "town", "--date", DAY).output
    assert "3 sent" in sent
    assert sorted(r.recipients[0] for r in smtp_server.received) == [
        "ann@example.com",
        "bob@example.org",
        "carol@example.net",
    ]
    assert "nothing to send" in operator("send", "--list", "town", "--date", DAY).output
    assert len(smtp_server.received) == 3
    status = operator("status").output
    header, row = status.splitlines()
    assert header.split() == [
        "ID",
        "LIST",
        "DATE",
        "STATE",
        *["SENT", "DEFERRED", "BOUNCED", "FAILED", "SKIPPED", "PENDING"],
    ]
    assert row.split()[1:] == ["town", DAY, "done", "3", "0", "0", "0", "0", "0"]

    exported = operator("subscribers", "export", "--list", "town").output.splitlines()
    assert exported[0] == "email,name,status,subscribed_at" and len(exported) == 4


def test_test_copy_does_not_touch_the_ledger(
    operator: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """`send --to` mails one copy to that address and a real send afterwards still reaches all."""
    _set_up_town(operator, tmp_path)
    operator("subscribers", "add", "ann@example.com", "--list", "town")
    operator("ingest")
    operator("send", "--list", "town", "--date", DAY, "--to", "editor@town.example")
    assert [r.recipients for r in smtp_server.received] == [["editor@town.example"]]
    operator("send", "--list", "town", "--date", DAY)
    assert [r.recipients for r in smtp_server.received][1:] == [["ann@example.com"]]


def test_errors_are_one_clear_line(operator: Operator, tmp_path: Path) -> None:
    """Unknown list, bad date and bad address print one line and exit non-zero."""
    _set_up_town(operator, tmp_path)
    cases = [
        (["send", "--list", "nope"], "unknown list: nope"),
        (["send", "--list", "town", "--date", "24/11/2026"], "--date must be YYYY-MM-DD"),
        (["subscribers", "add", "bad@", "--list", "town"], "invalid email address"),
        (
            ["lists", "add", "x", "--name", "X", "--sections", "local", "--timezone", "Mars/Base"],
            "unknown time zone",
        ),
    ]
    for args, message in cases:
        result = operator(*args, ok=False)
        assert result.exit_code == 1, args
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_unreachable_smtp_fails_before_building(operator: Operator, tmp_path: Path) -> None:
    """With the SMTP server down, send says so in one line and no edition is built."""
    _set_up_town(operator, tmp_path)
    operator("subscribers", "add", "ann@example.com", "--list", "town")
    operator("ingest")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    operator.env["DIGEST_SMTP_URL"] = f"smtp://127.0.0.1:{dead_port}"
    result = operator("send", "--list", "town", "--date", DAY, ok=False)
    assert result.exit_code == 1 and "cannot reach SMTP server" in result.output
    assert "no editions yet" in operator("status").output


def test_uninitialised_database_says_run_init(operator: Operator) -> None:
    """A command on a database that was never set up tells the operator to run init."""
    result = operator("sections", "list", ok=False)
    assert result.exit_code == 1 and "digest init" in result.output


def test_help_explains_every_command() -> None:
    """`digest --help` lists the operator commands, each with a line of explanation."""
    output = CliRunner().invoke(cli, ["--help"]).output
    for command in (
        "init",
        "sections",
        "sources",
        "lists",
        "subscribers",
        "ingest",
        "preview",
        "send",
        "status",
        "demo",
        "worker",
    ):
        assert f"  {command} " in output


def test_watch_pause_resume_cancel_from_the_command_line(
    operator: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """status --watch ends on a finished edition at 100%; pause, resume and cancel say what they
    did, and refuse, in one line, what makes no sense."""
    _set_up_town(operator, tmp_path)
    operator("subscribers", "add", "ann@example.com", "--list", "town")
    operator("ingest")
    operator("send", "--list", "town", "--date", DAY)
    watched = operator("status", "1", "--watch", "--interval", "0").output
    assert watched.startswith("done") and "100.0%" in watched and "1 sent" in watched
    refused = operator("pause", "1", ok=False)
    assert refused.exit_code == 1 and "is done, not sending" in refused.output
    assert "0 failed recipients" in operator("retry-failed", "1").output
    missing = operator("cancel", "99", ok=False)
    assert missing.exit_code == 1 and "unknown edition: 99" in missing.output
