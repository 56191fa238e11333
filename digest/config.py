"""Settings: built-in defaults, then an optional TOML site file, then ``DIGEST_*`` environment.

The environment names are the interface operators script against, so they
are listed once, in ``Settings``' field docs, and read by one loop.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = "digest.toml"
SECRET_FILE = ".digest-secret"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class Settings:
    """Every setting Digest reads. Environment name: ``DIGEST_`` + the upper-cased field name."""

    #: SQLAlchemy URL. Default: a SQLite file in the working directory.
    database_url: str = "sqlite:///digest.db"
    #: Celery broker (``redis://host:6379/0``). Unset: tasks run in-process.
    broker_url: str | None = None
    #: The Celery queue Digest's tasks go to (several deployments may share one Redis).
    queue: str = "digest"
    #: ``smtp://user:pass@host:587?starttls=1`` or ``smtps://...``. Unset: the outbox folder.
    smtp_url: str | None = None
    #: Where the outbox transport writes one ``.eml`` per message.
    outbox_dir: str = "outbox"
    #: Public base URL of the web app, used for every link in an email.
    base_url: str = "http://localhost:8000"
    #: Signs every personal link. Unset: generated once and kept in ``.digest-secret``.
    secret_key: str | None = None
    #: The publisher, shown in the header and footer of every digest.
    site_name: str = "Digest"
    site_url: str = "http://localhost:8000"
    postal_address: str = "Postal address not configured"
    #: Envelope and From address used when a list has none of its own.
    from_address: str = "digest@localhost"
    #: Where a mailto: List-Unsubscribe goes; default ``unsubscribe@`` the From domain.
    unsubscribe_mailto: str | None = None
    #: Folder of email and page templates.
    templates_dir: str = str(PROJECT_ROOT / "templates")
    #: Recipients claimed by one batch (one SMTP connection).
    batch_size: int = 200
    #: Seconds a claimed batch is leased before another worker may take it over. A working
    #: batch renews it every third of this (see ``batch_stuck_seconds``), so this is how long
    #: a dead worker's rows wait before another worker sends them.
    lease_seconds: int = 45
    #: An edition with due rows, no live lease and no claim for this many seconds is stalled
    #: (its tasks were lost, or rows were given back): the sweep queues batches for it.
    stall_seconds: float = 30.0
    #: Attempts at a deferred (4xx) recipient before it is marked failed.
    max_attempts: int = 5
    #: Seconds before the first retry of a deferred recipient; doubles with each attempt.
    retry_base_seconds: float = 300.0
    #: DKIM: the signing domain (d=), selector (s=) and a PEM private key file. All three set:
    #: every message is signed.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: str | None = None
    #: Messages per second across all workers (kept in Redis on a broker); 0: no limit.
    rate_limit: float = 0.0
    #: Messages per second to any one recipient domain across all workers; 0: no limit.
    rate_limit_per_domain: float = 0.0
    #: Transport failures (connection lost, 421) in a row that pause an edition, with the reason.
    pause_after_errors: int = 5
    #: Recipients refused (4xx/5xx) in a row that pause an edition: that many refusals in a row
    #: usually means the server refuses the sender, not the addresses.
    pause_after_refusals: int = 50
    #: "text" for people, "json" for one JSON object per line (log shippers).
    log_format: str = "text"
    #: Seconds an HTTP fetch of a feed may take, and the largest body accepted.
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    #: Password of the operator dashboard (``/dashboard/``). Unset: the dashboard login is off.
    operator_password: str | None = None

    # -- bounces and inbound mail (issue 14) --------------------------------------------------
    #: Domain whose mail comes to `digest inbound`. Set: each message's envelope sender is
    #: ``bounces+TOKEN@`` this domain, TOKEN naming its delivery, so a bounce says who bounced.
    bounce_domain: str | None = None
    #: Soft bounces (mailbox full, 4.x.x) in this many editions running suppress an address.
    soft_bounce_limit: int = 3
    #: Largest message `digest inbound` accepts, in bytes (a report quoting a whole digest fits).
    inbound_max_bytes: int = 2 * 1024 * 1024

    # -- the send loop, recovery and scale (issue 13) --------------------------------------------
    #: Seconds a batch may spend on one message (SMTP timeout plus rate-limit wait) before it is
    #: presumed hung: its lease is no longer renewed, so another worker takes its rows over.
    batch_stuck_seconds: float = 600.0
    #: Outcomes committed together: a worker killed between commits has up to this many
    #: messages sent again (their rows are still leased to it and come back with the lease).
    #: 1: a commit per message, so only the message in flight can be sent twice.
    commit_every: int = 1
    #: Seconds an outcome may wait for its group's commit (a slow send commits each message).
    commit_interval: float = 0.25
    #: PostgreSQL: "off" commits outcomes without waiting for the WAL flush (per transaction,
    #: safe behind PgBouncer). A killed worker loses nothing by it; a crash of the database
    #: server itself may forget the last fraction of a second of outcomes (sent again).
    synchronous_commit: str = "off"
    #: Redis Sentinel: the monitored master's name, needed with a broker URL of the form
    #: ``sentinel://host1:26379;sentinel://host2:26379``.
    broker_master_name: str | None = None

    @property
    def secret(self) -> str:
        if not self.secret_key:
            raise ConfigError("DIGEST_SECRET_KEY is not set")
        return self.secret_key

    @property
    def uses_broker(self) -> bool:
        return bool(self.broker_url)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: object, type_name: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say which setting is wrong."""
    if type_name in ("int", "float"):
        try:
            return int(raw) if type_name == "int" else float(raw)  # type: ignore[arg-type,call-overload]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}: expected a number, got {raw!r}") from exc
    if not isinstance(raw, str | int | float):
        raise ConfigError(f"setting {name}: expected a string, got {raw!r}")
    text = str(raw).strip()
    # An empty value means "unset" for optional settings, e.g. DIGEST_SMTP_URL= in a .env file.
    if not text and "None" in type_name:
        return None
    return text


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    *,
    ensure_secret: bool = True,
) -> Settings:
    """Defaults, then the TOML file (DIGEST_CONFIG or ./digest.toml), then the environment."""
    env = dict(os.environ if environ is None else environ)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}

    path = Path(config_file or env.get("DIGEST_CONFIG") or DEFAULT_CONFIG_FILE)
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
        table = data.get("digest", data)
        for key, raw in table.items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, str(fields[key].type))
    elif config_file:
        raise ConfigError(f"settings file not found: {path}")

    for name, f in fields.items():
        env_name = f"DIGEST_{name.upper()}"
        if env_name in env:
            values[name] = _coerce(env_name, env[env_name], str(f.type))

    settings = Settings(**values)
    _validate(settings)
    if ensure_secret and not settings.secret_key:
        settings = settings.replace(secret_key=_local_secret())
    return settings


def _validate(settings: Settings) -> None:
    for name in ("base_url", "site_url"):
        parts = urlsplit(getattr(settings, name))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"DIGEST_{name.upper()} must be an absolute http(s) URL")
    if settings.smtp_url and urlsplit(settings.smtp_url).scheme not in ("smtp", "smtps"):
        raise ConfigError("DIGEST_SMTP_URL must start with smtp:// or smtps://")
    dkim = (settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    if any(dkim) and not all(dkim):
        raise ConfigError(
            "DKIM needs all three of DIGEST_DKIM_DOMAIN, DIGEST_DKIM_SELECTOR, DIGEST_DKIM_KEY_FILE"
        )
    if settings.log_format not in ("text", "json"):
        raise ConfigError("DIGEST_LOG_FORMAT must be text or json")
    if settings.batch_size < 1:
        raise ConfigError("DIGEST_BATCH_SIZE must be at least 1")
    if settings.bounce_domain and not _DOMAIN.match(settings.bounce_domain):
        raise ConfigError("DIGEST_BOUNCE_DOMAIN must be a bare domain name, e.g. bounces.example")
    if settings.commit_every < 1:
        raise ConfigError("DIGEST_COMMIT_EVERY must be at least 1")
    if settings.lease_seconds < 3:
        raise ConfigError("DIGEST_LEASE_SECONDS must be at least 3")
    if settings.synchronous_commit not in ("on", "off"):
        raise ConfigError("DIGEST_SYNCHRONOUS_COMMIT must be on or off")
    if (settings.broker_url or "").startswith("sentinel://") and not settings.broker_master_name:
        raise ConfigError("a sentinel:// DIGEST_BROKER_URL needs DIGEST_BROKER_MASTER_NAME")
    if settings.soft_bounce_limit < 1:
        raise ConfigError("DIGEST_SOFT_BOUNCE_LIMIT must be at least 1")


def _local_secret() -> str:
    """A key for a single machine, kept beside the database so links stay valid across runs.

    Several machines must share one key, so production sets DIGEST_SECRET_KEY.
    """
    path = Path(SECRET_FILE)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


__all__ = ["Settings", "load_settings"]
