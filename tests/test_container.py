"""The image's layout without a Docker engine: Digest run as an unprivileged user, its code
read-only, only the data folder writable, as the Dockerfile sets it up; and the compose
file's demo, secret, health check and pinned images."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from digest.cli import cli
from tests.conftest import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
#: The uid the Dockerfile gives its user.
UID = 10001


def _dockerfile_runtime() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8").split("FROM ")[-1]


def test_dockerfile_gives_its_user_a_data_volume_as_working_folder() -> None:
    """The runtime stage's user owns /data (its working folder and a volume), and the
    outbox is inside it: everything Digest writes has a writable home."""
    runtime = _dockerfile_runtime()
    assert re.search(rf"useradd .*--uid {UID} digest", runtime)
    assert re.search(r"chown -R digest(:digest)? /data\b", runtime)
    assert re.search(r"^WORKDIR /data$", runtime, re.MULTILINE)
    assert re.search(r'^VOLUME \["?/data"?\]$', runtime, re.MULTILINE)
    assert "DIGEST_OUTBOX_DIR=/data/outbox" in runtime


@dataclass
class Image:
    """A tree laid out as the image is: code owned by root and read-only, data owned by the
    unprivileged user."""

    code: Path
    data: Path

    def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`digest ARGS` as uid 10001, with the image's environment and no DIGEST_SECRET_KEY."""
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.data),
            "PYTHONPATH": str(self.code),
            "PYTHONDONTWRITEBYTECODE": "1",
            "DIGEST_TEMPLATES_DIR": str(self.code / "templates"),
            "DIGEST_OUTBOX_DIR": str(self.data / "outbox"),
            **(env or {}),
        }
        # setpriv rather than subprocess's user=: it also drops every capability, as an
        # image's USER does, and reaches this machine's interpreter.
        drop = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
        return subprocess.run(
            [*drop, sys.executable, "-m", "digest.cli", *args],
            cwd=cwd or self.data,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
        )


def _read_only(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def image() -> Iterator[Image]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as another user needs root and setpriv")
    # Not under tmp_path: pytest makes that private to root, and the user must reach it.
    top = Path(tempfile.mkdtemp(prefix="digest-image-", dir="/tmp"))
    top.chmod(0o755)
    code, data = top / "app", top / "data"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "digest", code / "digest", ignore=ignore)
    shutil.copytree(ROOT / "templates", code / "templates", ignore=ignore)
    _read_only(code)
    (data / "outbox").mkdir(parents=True)
    for path in (data, data / "outbox"):
        os.chown(path, UID, UID)
    try:
        yield Image(code, data)
    finally:
        shutil.rmtree(top)


def _clean(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return output


def test_demo_preview_and_doctor_run_unprivileged_and_write_only_to_the_data_folder(
    image: Image,
) -> None:
    """As the image's user, without DIGEST_SECRET_KEY: `digest demo`, `preview`, `status` and
    `doctor --quick` succeed with no traceback, and the database, the generated secret, the
    sample site, the previews and the emails all land in the data folder."""
    demo = image.run("demo")
    assert demo.returncode == 0, _clean(demo)
    _clean(demo)
    data = image.data
    assert (data / "digest.db").is_file() and (data / ".digest-secret").is_file()
    assert len(list((data / "sample-site").glob("*.xml"))) == 6
    assert (data / "preview-daily.html").is_file()
    assert len(list((data / "outbox").rglob("*.eml"))) >= 10
    for args in (("preview", "--list", "daily"), ("status",), ("doctor", "--quick")):
        result = image.run(*args)
        assert result.returncode == 0, _clean(result)
        _clean(result)
    assert not list(image.code.rglob("*.db")) and not list(image.code.rglob(".digest-secret"))


def test_a_read_only_working_folder_is_one_clear_line_not_a_traceback(image: Image) -> None:
    """Run from the read-only code folder, a command without DIGEST_SECRET_KEY says it cannot
    write the secret file and to set the key; `demo` with a key and a database elsewhere says
    which file it could not write. Neither prints a traceback."""
    database = {"DIGEST_DATABASE_URL": f"sqlite:///{image.data / 'digest.db'}"}
    status = image.run("status", cwd=image.code, env=database)
    assert status.returncode == 1
    assert "DIGEST_SECRET_KEY is not set" in _clean(status)
    env = {
        "DIGEST_SECRET_KEY": "k3Jd9s-Qp2vX8mLr0tYw7zNb4cHf6gAe1uIo5sPd",
        "DIGEST_DATABASE_URL": f"sqlite:///{image.data / 'digest.db'}",
    }
    demo = image.run("demo", cwd=image.code, env=env)
    assert demo.returncode == 1
    output = _clean(demo)
    assert "cannot write" in output and "sample-site" in output and "permission denied" in output


def test_demo_delivers_to_the_demo_smtp_server_not_the_outbox(
    smtp_server: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DIGEST_DEMO_SMTP_URL (compose: Mailpit) the demo's digests reach that server and
    none is written to the outbox; DIGEST_SMTP_URL (the real relay) is never used by it."""
    monkeypatch.chdir(tmp_path)
    env = {
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "DIGEST_SECRET_KEY": "k3Jd9s-Qp2vX8mLr0tYw7zNb4cHf6gAe1uIo5sPd",
        "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DIGEST_SMTP_URL": "smtp://127.0.0.1:9",
        "DIGEST_DEMO_SMTP_URL": smtp_server.url,
    }
    result = CliRunner().invoke(cli, ["demo"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) >= 10
    assert not list((tmp_path / "outbox").rglob("*.eml"))
    assert f"delivered to {smtp_server.url}" in result.output


def test_compose_requires_the_secret_pins_images_and_checks_workers_cheaply() -> None:
    """The compose file refuses to start without DIGEST_SECRET_KEY, pins every image it pulls
    to a version, mounts the data volume at /data, points the demo at Mailpit, and the
    worker's health check opens no SMTP session."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    worker = services["worker"]
    assert worker["environment"]["DIGEST_SECRET_KEY"].startswith("${DIGEST_SECRET_KEY:?")
    assert worker["environment"]["DIGEST_DEMO_SMTP_URL"] == "smtp://mailpit:1025"
    assert "data:/data" in worker["volumes"]
    assert worker["healthcheck"]["test"] == ["CMD", "digest", "doctor", "--quick"]
    for name in ("redis", "postgres", "mailpit"):
        tag = services[name]["image"].rpartition(":")[2]
        assert re.match(r"^v?\d+\.\d+(\.\d+)?(-alpine)?$", tag), services[name]["image"]
