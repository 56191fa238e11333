"""`digest inbound --imap`: a hosted bounce mailbox read over IMAP, against a real Dovecot.

Dovecot comes from Debian (`apt-get install dovecot-imapd`); without it, or without root
(its mail processes run as nobody), these tests are skipped.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.cli.context import App
from digest.cli.inbound import inbound
from digest.config import Settings
from digest.feedback.inbound import ImapConfig, Verdict, poll_imap
from digest.mail.verp import return_path
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Suppression
from tests.feedback.conftest import arf, delivery_of, dsn
from tests.feedback.hostile import MAX_BYTES, address_list, mailto_subject
from tests.feedback.test_inbound import _sent_site
from tests.properties import snapshot

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture
def imap_url() -> Iterator[str]:
    """A Dovecot IMAP server on a free loopback port with one empty mailbox."""
    if not os.path.exists(DOVECOT) or os.geteuid() != 0:
        message = "Dovecot (dovecot-imapd) is not installed, or not running as root"
        if os.environ.get("DIGEST_REQUIRE_DOVECOT"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    root.chmod(0o755)
    for folder in ("mail", "home"):
        (root / folder).mkdir()
        (root / folder).chmod(0o777)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (root / "dovecot.conf").write_text(_CONFIG.format(root=root, port=port))
    server = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("Dovecot did not start: " + _log(root))
                time.sleep(0.1)
        yield f"imap://{USER}:{PASSWORD}@127.0.0.1:{port}/INBOX"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _log(root: Path) -> str:
    path = root / "dovecot.log"
    return path.read_text() if path.exists() else "(no log)"


def _append(url: str, *messages: bytes) -> None:
    config = ImapConfig.from_url(url)
    conn = imaplib.IMAP4(config.host, config.port)
    conn.login(config.username, config.password)
    for message in messages:
        conn.append(config.mailbox, None, None, message)
    conn.logout()


def _left(url: str) -> int:
    config = ImapConfig.from_url(url)
    conn = imaplib.IMAP4(config.host, config.port)
    conn.login(config.username, config.password)
    conn.select(config.mailbox)
    _, found = conn.search(None, "ALL")
    conn.logout()
    return len(found[0].split()) if found and found[0] else 0


def test_polling_a_mailbox_applies_reports_once(
    db: Database, bounce_settings: Settings, imap_url: str
) -> None:
    """A DSN (VERP address in Delivered-To) and an ARF report (VERP address in To) are
    applied, mail for nobody of ours is dropped, the mailbox is emptied, and a second poll
    finds nothing to do."""
    editions = _sent_site(db, bounce_settings, readers=3, days=1)
    d0 = delivery_of(db, editions[0], "reader0@example.com")
    d1 = delivery_of(db, editions[0], "reader1@example.com")
    verp0, verp1 = return_path(bounce_settings, d0), return_path(bounce_settings, d1)
    _append(
        imap_url,
        f"Delivered-To: {verp0}\r\n".encode() + dsn(verp0, "reader0@example.com"),
        arf(verp1, "reader1@example.com", f"digest.e{editions[0]}.d{d1}@x"),
        b"Delivered-To: someone@else.example\r\nSubject: hello\r\n\r\nhi\r\n",
    )
    config = ImapConfig.from_url(imap_url)
    counts = poll_imap(db, bounce_settings, config)
    assert (counts[Verdict.APPLIED], counts[Verdict.IGNORED]) == (2, 1)
    assert _left(imap_url) == 0
    with db.session() as session:
        reasons = dict(session.execute(select(Suppression.email, Suppression.reason)).all())
    assert reasons["reader0@example.com"].startswith("bounced")
    assert reasons["reader1@example.com"].startswith("complaint")
    assert "reader2@example.com" not in reasons
    assert not any(poll_imap(db, bounce_settings, config).values())


def test_inbound_command_polls_once(db: Database, bounce_settings: Settings, imap_url: str) -> None:
    """`digest inbound --imap URL --once` reads the mailbox once and prints what it did."""
    editions = _sent_site(db, bounce_settings, readers=1, days=1)
    verp = return_path(bounce_settings, delivery_of(db, editions[0], "reader0@example.com"))
    _append(imap_url, f"Delivered-To: {verp}\r\n".encode() + dsn(verp, "reader0@example.com"))
    result = CliRunner().invoke(
        inbound,
        ["--imap", imap_url, "--once"],
        obj=App(None, core=Digest(bounce_settings, db=db)),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "applied=1" in result.output
    assert _left(imap_url) == 0


def test_hostile_and_oversized_mail_in_the_mailbox_is_refused_unread(
    db: Database, bounce_settings: Settings, imap_url: str
) -> None:
    """A message over DIGEST_INBOUND_MAX_BYTES (fetched only up to the limit), 2 MB of To
    addresses, and a 60 KB folded Subject are each refused and deleted, changing nothing;
    a genuine bounce in the same poll still applies."""
    editions = _sent_site(db, bounce_settings, readers=2, days=1)
    verp = return_path(bounce_settings, delivery_of(db, editions[0], "reader0@example.com"))
    settings = bounce_settings.replace(inbound_max_bytes=MAX_BYTES)
    oversized = f"Delivered-To: {verp}\r\n".encode() + dsn(verp, "reader1@example.com")
    oversized += (b"x" * 76 + b"\r\n") * (MAX_BYTES // 78 + 100)
    before = snapshot(db)
    _append(imap_url, oversized, address_list(MAX_BYTES), mailto_subject(MAX_BYTES, 60_000))
    counts = poll_imap(db, settings, ImapConfig.from_url(imap_url))
    assert counts[Verdict.REFUSED] == 3 and not counts[Verdict.APPLIED]
    assert _left(imap_url) == 0
    assert snapshot(db) == before

    _append(imap_url, f"Delivered-To: {verp}\r\n".encode() + dsn(verp, "reader0@example.com"))
    assert poll_imap(db, settings, ImapConfig.from_url(imap_url))[Verdict.APPLIED] == 1
