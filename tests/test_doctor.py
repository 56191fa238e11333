"""`digest doctor` against real services: what works says ok, what does not says why."""

from __future__ import annotations

import io
import json
import logging
import secrets
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Settings, load_settings, require_strong_secrets, weak_secret_reasons
from digest.errors import ConfigError
from digest.logs import JsonFormatter
from digest.ops.doctor import Check, report, run_checks
from tests.conftest import SmtpSink

#: A key as `secrets.token_urlsafe(32)` makes them (fixed here so failures are reproducible).
STRONG_KEY = "q3VfN8sK1xZ0cR7tW2mY5pL9dH4gB6jE-aU_oI8nT3v"


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    for name in ("DIGEST_BROKER_URL", "DIGEST_SMTP_URL", "DIGEST_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DIGEST_SECRET_KEY", "DIGEST_OPERATOR_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG_KEY)
    # A site (its database named, not yet made): in a folder with none, doctor says only that.
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'digest.db'}")
    return monkeypatch


def test_everything_reachable_is_ok(
    environment: pytest.MonkeyPatch, db_url: str, smtp_server: SmtpSink, redis_url: str
) -> None:
    """With an upgraded database, a live Redis with a worker's heartbeat in it and a live SMTP
    server every check passes."""
    from digest.service.workers import Beacon, heartbeat_key, redis_for
    from digest.store.db import Database

    Database(db_url).upgrade()
    queue = f"doctor-{secrets.token_hex(4)}"
    environment.setenv("DIGEST_DATABASE_URL", db_url)
    environment.setenv("DIGEST_BROKER_URL", redis_url)
    environment.setenv("DIGEST_QUEUE", queue)
    environment.setenv("DIGEST_SMTP_URL", smtp_server.url)
    client = redis_for(Settings(broker_url=redis_url))
    assert client is not None
    Beacon(client, queue, "mail1@host", 10).beat()
    try:
        checks = _by_name(run_checks())
    finally:
        client.delete(heartbeat_key(queue))
    assert checks["database"].status == "ok" and "schema current" in checks["database"].detail
    assert checks["broker"].status == "ok"
    assert checks["workers"].status == "ok" and "mail1@host" in checks["workers"].detail
    assert checks["smtp"].status == "ok" and "EHLO 250" in checks["smtp"].detail
    assert all(check.status != "fail" for check in checks.values())


def test_each_broken_service_is_one_failing_line(environment: pytest.MonkeyPatch) -> None:
    """An uninitialised database, a dead broker and a dead SMTP server each fail with a
    reason, the password is not shown, and the command exits 1."""
    environment.setenv("DIGEST_BROKER_URL", f"redis://127.0.0.1:{_dead_port()}/0")
    environment.setenv("DIGEST_SMTP_URL", f"smtp://user:hunter2@127.0.0.1:{_dead_port()}")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    failing = {line.split(":")[0] for line in lines if line.startswith("fail")}
    assert failing == {"fail database", "fail broker", "fail smtp"}
    assert "hunter2" not in result.output
    assert any("digest init" in line for line in lines)


def test_a_folder_with_no_site_is_one_failing_line(environment: pytest.MonkeyPatch) -> None:
    """In a folder with no settings file, no DIGEST_DATABASE_URL and no digest.db, doctor
    fails on one line naming `digest setup` and `digest demo`, and writes nothing."""
    environment.delenv("DIGEST_DATABASE_URL")
    (check,) = run_checks()
    assert check.status == "fail" and "no Digest site here" in check.detail
    assert "digest setup" in check.detail and "digest demo" in check.detail
    assert list(Path.cwd().iterdir()) == []


def test_bad_setting_is_reported_not_raised(environment: pytest.MonkeyPatch) -> None:
    """A malformed setting is a failing check, not a traceback."""
    environment.setenv("DIGEST_BATCH_SIZE", "many")
    (check,) = run_checks()
    assert check.status == "fail" and "DIGEST_BATCH_SIZE" in check.detail


def test_report_prints_one_line_per_check() -> None:
    """report() prints each check on its own line and says whether any failed."""
    lines: list[str] = []
    ok = report([Check("ok", "a", "fine"), Check("warn", "b", "hm")], lines.append)
    assert ok and lines == ["ok   a: fine", "warn b: hm"]
    assert not report([Check("fail", "c", "broken")], lines.append)


def test_json_log_lines_carry_edition_and_batch_ids(settings: Settings) -> None:
    """With the JSON format each record is one JSON object holding the ids passed as extra."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("digest.test")
    logger.addHandler(handler)
    try:
        logger.warning("batch stopped: %s", "421", extra={"edition_id": 7, "batch_id": "ab"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "batch stopped: 421" and entry["level"] == "warning"
    assert (entry["edition_id"], entry["batch_id"]) == (7, "ab")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DIGEST_SECRET_KEY", "change-me-to-a-long-random-string", "placeholder"),
        ("DIGEST_SECRET_KEY", "doctor-secret", "13 characters"),
        ("DIGEST_SECRET_KEY", "ab" * 24, "repeats"),
        ("DIGEST_SECRET_KEY", "x" * 40, "repeats"),
        ("DIGEST_OPERATOR_PASSWORD", "change-me-too", "placeholder"),
        ("DIGEST_OPERATOR_PASSWORD", "hunter2", "shorter than 12"),
        ("DIGEST_OPERATOR_PASSWORD", "QWERTY123456", "commonly guessed"),
        ("DIGEST_OPERATOR_PASSWORD", "Correct Horse Battery Staple", "commonly guessed"),
        ("DIGEST_OPERATOR_PASSWORD", "aaaaaaaaaaaaaaaa", "repeats"),
    ],
)
def test_weak_secret_or_password_fails_with_the_reason(
    environment: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    """A placeholder, short, repetitive or common secret key or operator password is a failing
    check that says why, without showing the value."""
    environment.setenv(name, value)
    checks = run_checks()
    failing = [c for c in checks if c.status == "fail" and c.name != "database"]
    assert len(failing) == 1 and reason in failing[0].detail
    assert value not in failing[0].detail


def test_weak_secret_reasons_lists_each_problem() -> None:
    """weak_secret_reasons (what `web` and `worker` check before starting) names both a weak key
    and a weak password, and nothing for strong ones or unset ones."""
    weak = Settings(secret_key="k", operator_password="letmein")
    assert [r.split(" ")[0] for r in weak_secret_reasons(weak)] == [
        "DIGEST_SECRET_KEY",
        "DIGEST_OPERATOR_PASSWORD",
    ]
    with pytest.raises(ConfigError, match="refusing to start"):
        require_strong_secrets(weak)
    strong = Settings(secret_key=STRONG_KEY, operator_password="plum-raft-ocean-47-minnow")
    assert weak_secret_reasons(strong) == [] and weak_secret_reasons(Settings()) == []
    require_strong_secrets(strong)


def test_generated_local_secret_passes(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On one host with no DIGEST_SECRET_KEY, the key the app generates into .digest-secret
    passes the check (ok, not fail), and a strong hex key does too."""
    environment.delenv("DIGEST_SECRET_KEY")
    generated = load_settings().secret_key
    assert generated and (tmp_path / ".digest-secret").exists()
    assert weak_secret_reasons(Settings(secret_key=generated)) == []
    check = _by_name(run_checks())["secret key"]
    assert check.status == "ok" and ".digest-secret" in check.detail
    environment.setenv("DIGEST_SECRET_KEY", secrets.token_hex(16))
    assert _by_name(run_checks())["secret key"].status == "ok"


def test_secret_files_readable_by_others_are_warned_about(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A digest.toml readable by its group, a .digest-secret readable by everyone and a DKIM
    key readable by either each get a 'file modes' warning naming the file and chmod 600;
    once they are owner-only the check is one ok line."""
    settings_file = tmp_path / "digest.toml"
    settings_file.write_text('site_name = "Gazette"\n', encoding="utf-8")
    secret_file = tmp_path / ".digest-secret"
    secret_file.write_text(STRONG_KEY + "\n", encoding="utf-8")
    key_file = tmp_path / "dkim.pem"
    key_file.write_text("not checked here\n", encoding="utf-8")
    environment.setenv("DIGEST_DKIM_DOMAIN", "gazette.example")
    environment.setenv("DIGEST_DKIM_SELECTOR", "s1")
    environment.setenv("DIGEST_DKIM_KEY_FILE", str(key_file))
    for path, mode in ((settings_file, 0o640), (secret_file, 0o604), (key_file, 0o644)):
        path.chmod(mode)
    warned = [c for c in run_checks() if c.name == "file modes"]
    assert [c.status for c in warned] == ["warn", "warn", "warn"]
    details = "\n".join(c.detail for c in warned)
    assert "settings file digest.toml (mode 0640) can be read by its group: chmod 600" in details
    assert ".digest-secret (mode 0604) can be read by everyone" in details
    assert f"DKIM key {key_file} (mode 0644) can be read by its group and everyone" in details
    for path in (settings_file, secret_file, key_file):
        path.chmod(0o600)
    private = [c for c in run_checks() if c.name == "file modes"]
    assert [c.status for c in private] == ["ok"]
