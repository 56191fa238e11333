"""What ``digest doctor`` checks: the configuration, and every service it names reached.

Each check answers one line: ok, warn (works, but not as production wants it)
or fail (will not work).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digest.config import (
    DEFAULT_CONFIG_FILE,
    SECRET_FILE,
    Settings,
    load_settings,
    weak_key_reasons,
    weak_password_reasons,
    weak_webhook_reasons,
)
from digest.errors import DigestError
from digest.service.identity import identity_warnings

if TYPE_CHECKING:
    from digest.transports import SmtpConfig

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "warn" or "fail"
    name: str
    detail: str


def _safe_url(url: str) -> str:
    """A URL for display, without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def run_checks(config_file: str | None = None, *, quick: bool = False) -> list[Check]:
    """Every check; ``quick`` only those that open no mail session (settings, database,
    broker): cheap enough for a container's health check every minute."""
    try:
        settings = load_settings(config_file, ensure_secret=False, require_site=True)
    except DigestError as exc:
        return [Check("fail", "settings", str(exc))]
    checks = [Check("ok", "settings", "read")]
    steps: tuple[Callable[[Settings], Iterator[Check]], ...] = (
        (_secret, _webhooks, _database, _broker)
        if quick
        else (
            _secret,
            _webhooks,
            _identity,
            _base_url,
            _database,
            _broker,
            _workers,
            _transport,
            _dkim,
        )
    )
    for check in steps:
        checks.extend(check(settings))
    if not quick:
        checks.extend(_private_files(settings, config_file))
    return checks


def _private_files(settings: Settings, config_file: str | None) -> Iterator[Check]:
    """The files that hold secrets (the settings file, the generated key, the DKIM keys): a
    warning for each that its group or everyone may read."""
    settings_file = config_file or os.environ.get("DIGEST_CONFIG") or DEFAULT_CONFIG_FILE
    candidates = [
        ("settings file", settings_file),
        ("secret key file", SECRET_FILE),
        ("DKIM key", settings.dkim_key_file),
        ("Ed25519 DKIM key", settings.dkim_ed25519_key_file),
    ]
    seen, open_to_others = 0, 0
    for what, name in candidates:
        if not name:
            continue
        try:
            mode = os.stat(name).st_mode & 0o777
        except OSError:
            continue  # absent: nothing to leak (a missing DKIM key fails its own check)
        seen += 1
        if mode & 0o077:
            readers = " and ".join(
                who for who, bits in (("its group", 0o070), ("everyone", 0o007)) if mode & bits
            )
            yield Check(
                "warn",
                "file modes",
                f"{what} {name} (mode {mode:04o}) can be read by {readers}: chmod 600 {name}",
            )
            open_to_others += 1
    if seen and not open_to_others:
        yield Check(
            "ok", "file modes", "the files holding secrets are readable by their owner only"
        )


def _identity(settings: Settings) -> Iterator[Check]:
    """The defaults a publisher would be embarrassed by, and misspelled DIGEST_* variables."""
    for line in identity_warnings(settings, secrets=False):
        yield Check("warn", "identity", line)


def _secret(settings: Settings) -> Iterator[Check]:
    if settings.secret_key:
        weak = weak_key_reasons(settings.secret_key)
        if weak:
            yield Check("fail", "secret key", "; ".join(weak))
        else:
            yield Check("ok", "secret key", "set")
    elif Path(SECRET_FILE).exists():
        # The file _local_secret() wrote: random, so it passes unless someone edited it.
        weak = weak_key_reasons(Path(SECRET_FILE).read_text(encoding="utf-8").strip())
        if weak:
            yield Check("fail", "secret key", f"./{SECRET_FILE}: " + "; ".join(weak))
        elif settings.broker_url:
            # Web and workers on one host, in this folder, share the file: that works. Only
            # a second host would sign with a key of its own.
            yield Check(
                "warn",
                "secret key",
                f"generated, kept in ./{SECRET_FILE}: right for workers on this host only; "
                "set DIGEST_SECRET_KEY to add another host",
            )
        else:
            yield Check("ok", "secret key", f"generated, kept in ./{SECRET_FILE} (one host only)")
    elif settings.broker_url:
        yield Check("warn", "secret key", f"not set: the first process generates ./{SECRET_FILE},"
                    " right for workers on this host only; set DIGEST_SECRET_KEY to share "
                    "the work between hosts")  # fmt: skip
    else:
        yield Check("warn", "secret key", "not set: a key is generated into ./.digest-secret")
    if settings.operator_password is not None:
        weak = weak_password_reasons(settings.operator_password)
        if weak:
            yield Check("fail", "operator password", "; ".join(weak))
        else:
            yield Check("ok", "operator password", "set")


def _webhooks(settings: Settings) -> Iterator[Check]:
    """Each relay webhook whose secret is set: fail if it is weak (``web`` will not start)."""
    weak = weak_webhook_reasons(settings)
    configured = {
        "postmark": settings.postmark_webhook_password,
        "mailgun": settings.mailgun_webhook_signing_key,
    }
    for relay, secret in configured.items():
        if relay in weak:
            yield Check("fail", f"{relay} webhook", weak[relay])
        elif secret:
            yield Check("ok", f"{relay} webhook", "secret set")


def _base_url(settings: Settings) -> Iterator[Check]:
    host = urlsplit(settings.base_url).hostname or ""
    if settings.base_url.startswith("https://"):
        yield Check("ok", "base url", settings.base_url)
    elif host in ("localhost", "127.0.0.1"):
        yield Check("warn", "base url", f"{settings.base_url}: links only work on this machine")
    else:
        yield Check("warn", "base url", f"{settings.base_url}: Gmail wants an https "
                    "List-Unsubscribe link")  # fmt: skip


def _database(settings: Settings) -> Iterator[Check]:
    from digest.store.db import Database

    db = Database(settings.database_url)
    try:
        current = db.is_current()
    except Exception as exc:  # any driver error means the same thing to an operator
        yield Check("fail", "database", f"{_safe_url(settings.database_url)}: {_first_line(exc)}")
        return
    finally:
        db.dispose()
    if current:
        yield Check("ok", "database", f"{_safe_url(settings.database_url)} (schema current)")
    else:
        yield Check("fail", "database", f"{_safe_url(settings.database_url)}: schema missing or "
                    "out of date: run `digest init`")  # fmt: skip


def _broker(settings: Settings) -> Iterator[Check]:
    if not settings.broker_url:
        yield Check("ok", "broker", "none: tasks run in-process")
        return
    from kombu import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises transport-specific errors
        yield Check("fail", "broker", f"{_safe_url(settings.broker_url)}: {_first_line(exc)}")
        return
    yield Check("ok", "broker", _safe_url(settings.broker_url))


def _workers(settings: Settings) -> Iterator[Check]:
    """On a broker, whether a worker has answered lately (its heartbeat in Redis): without
    one, sends are queued and nobody takes them. Not in ``quick``: a web container's health
    must not hang on the workers being up."""
    if not settings.broker_url:
        return
    from digest.service.workers import read_workers

    try:
        found = read_workers(settings)
    except DigestError:
        return  # Redis is not answering: the broker's line says so, once
    if found is None:
        yield Check("warn", "workers", "cannot tell: worker heartbeats need a Redis broker")
    else:
        yield Check("ok" if found.answering else "fail", "workers", found.words())


def _transport(settings: Settings) -> Iterator[Check]:
    if not settings.smtp_url:
        folder = Path(settings.outbox_dir)
        target = folder if folder.exists() else folder.parent
        if os.access(target.resolve(), os.W_OK):
            yield Check("ok", "transport", f"outbox folder {folder.resolve()}")
        else:
            yield Check("fail", "transport", f"outbox folder {folder.resolve()} is not writable")
        return
    from digest.transports import SmtpConfig

    try:
        config = SmtpConfig.from_url(settings.smtp_url)
    except DigestError as exc:
        yield Check("fail", "smtp", str(exc))
        return
    yield from _smtp_session(config, _safe_url(settings.smtp_url))


def _smtp_session(config: SmtpConfig, shown: str) -> Iterator[Check]:
    steps: list[str] = []
    try:
        conn: smtplib.SMTP
        if config.implicit_tls:
            conn = smtplib.SMTP_SSL(config.host, config.port, timeout=10,
                                    context=ssl.create_default_context())  # fmt: skip
            steps.append("TLS")
        else:
            conn = smtplib.SMTP(config.host, config.port, timeout=10)
        with conn:
            code, _ = conn.ehlo()
            steps.append(f"EHLO {code}")
            if config.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
                steps.append("STARTTLS")
            elif not config.implicit_tls and conn.has_extn("starttls"):
                steps.append("STARTTLS offered but not used (add ?starttls=1)")
            if config.username:
                conn.login(config.username, config.password or "")
                steps.append("AUTH ok")
    except smtplib.SMTPAuthenticationError as exc:
        yield Check("fail", "smtp", f"{shown}: login refused ({exc.smtp_code})")
        return
    except (OSError, smtplib.SMTPException) as exc:
        yield Check("fail", "smtp", f"{shown}: {_first_line(exc)}")
        return
    yield Check("ok", "smtp", f"{shown}: {', '.join(steps)}")


def _dkim(settings: Settings) -> Iterator[Check]:
    if not settings.dkim_domain:
        yield Check("warn", "dkim", "not configured: receivers may not offer one-click unsubscribe")
        return
    from digest.mail.dkim import make_signer

    try:
        signer = make_signer(settings)
    except DigestError as exc:
        yield Check("fail", "dkim", str(exc))
        return
    records = [f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}"]
    if settings.dkim_ed25519_selector:
        records.append(f"{settings.dkim_ed25519_selector}._domainkey.{settings.dkim_domain}")
    algorithms = ", ".join(signer.algorithms) if signer else ""
    yield Check("ok", "dkim", f"{' and '.join(records)} ({algorithms})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
