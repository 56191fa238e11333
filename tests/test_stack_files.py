"""The compose file, Dockerfile and .env.example agree with the code (no Docker engine here)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import click
import yaml

from digest.cli import cli
from digest.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = {f"DIGEST_{f.name.upper()}" for f in dataclasses.fields(Settings)}
# Read by the tests or the CLI itself rather than by Settings.
OTHER_NAMES = {"DIGEST_CONFIG"}


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _digest_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if service.get("image") == "digest:latest"
    }


def test_every_digest_command_exists_in_the_cli() -> None:
    """Each app service runs a `digest` subcommand that exists, with options it accepts."""
    services = _digest_services()
    assert {"migrate", "web", "worker", "beat"} <= set(services)
    for name, service in services.items():
        program, subcommand, *args = service["command"]
        assert program == "digest", name
        command = cli.get_command(click.Context(cli), subcommand)
        assert command is not None, f"{name}: no `digest {subcommand}`"
        if not command.context_settings.get("ignore_unknown_options"):
            # Celery's own options pass through worker/beat; the others must parse.
            command.make_context(subcommand, list(args))


def test_every_environment_variable_is_a_setting() -> None:
    """Every DIGEST_* variable the stack sets is one the settings read."""
    names = set()
    for service in _digest_services().values():
        names |= {n for n in service["environment"] if n.startswith("DIGEST_")}
    example = (ROOT / ".env.example").read_text()
    names |= set(re.findall(r"^#?\s*(DIGEST_[A-Z_]+)=", example, re.MULTILINE))
    dockerfile = (ROOT / "Dockerfile").read_text()
    names |= set(re.findall(r"(DIGEST_[A-Z_]+)=", dockerfile))
    assert names, "no settings found"
    assert names <= SETTING_NAMES | OTHER_NAMES, names - SETTING_NAMES


def test_ports_and_urls_line_up() -> None:
    """The web port published is the one `digest web` listens on, the default SMTP URL names
    the Mailpit service's SMTP port, and the database and broker URLs name real services."""
    compose = _compose()
    services = compose["services"]
    web_args = services["web"]["command"]
    port = web_args[web_args.index("--port") + 1]
    assert f"{port}:{port}" in services["web"]["ports"]
    env = services["web"]["environment"]
    assert "smtp://mailpit:1025" in env["DIGEST_SMTP_URL"]
    assert "@postgres:5432/" in env["DIGEST_DATABASE_URL"]
    assert env["DIGEST_BROKER_URL"].startswith("redis://redis:6379")
    assert "8025:8025" in services["mailpit"]["ports"]
    for service in ("redis", "postgres", "mailpit"):
        assert "healthcheck" in services[service], service


def test_dockerfile_runs_unprivileged_without_build_tools() -> None:
    """The image has a build stage and a runtime stage that runs as a non-root user."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM ", dockerfile, re.MULTILINE)
    assert len(stages) == 2
    runtime = dockerfile.split("FROM ")[-1]
    assert re.search(r"^USER (?!root)\w+", runtime, re.MULTILINE)
    assert "pip install" not in runtime
