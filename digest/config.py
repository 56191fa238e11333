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
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$")


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
    #: Transport failures (connection lost, 421) in a row that pause an edition, with the reason,
    #: once the run has also lasted ``pause_after_error_seconds``.
    pause_after_errors: int = 5
    #: Seconds a run of transport failures must last before it pauses an edition: a relay's
    #: short outage is waited out (batches retry within seconds), a longer one is the
    #: operator's to look at. 0: the count alone pauses.
    pause_after_error_seconds: float = 300.0
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
    # -- Gathering (ingest) --
    #: Feeds fetched at once by one ingest run, over all hosts (threads waiting on sockets).
    fetch_workers: int = 32
    #: Feeds fetched at once from any one host (a publisher's section feeds share one).
    fetch_per_host: int = 4
    #: Items kept from one feed, the newest by date; a feed listing more has the rest ignored.
    ingest_max_items: int = 1000

    # -- bounces and inbound mail (issue 14) --------------------------------------------------
    #: Domain whose mail comes to `digest inbound`. Set: each message's envelope sender is
    #: ``bounces+TOKEN@`` this domain, TOKEN naming its delivery, so a bounce says who bounced.
    bounce_domain: str | None = None
    #: Soft bounces (mailbox full, 4.x.x) in this many editions running suppress an address.
    soft_bounce_limit: int = 3
    #: Largest message `digest inbound` accepts, in bytes (a report quoting a whole digest fits).
    inbound_max_bytes: int = 2 * 1024 * 1024

    # -- public form and dashboard login limits (abuse) --------------------------------------
    #: Hours in which one address gets at most one sign-up email; a repeat sends nothing new.
    confirm_mail_hours: float = 3.0
    #: Sign-up form posts accepted from one client IP per hour.
    signups_per_ip_per_hour: int = 20
    #: Dashboard login attempts allowed from one client IP within ``login_lockout_seconds``;
    #: past it the login refuses every password from that IP until the window ends.
    login_attempts_per_ip: int = 5
    #: Dashboard login attempts allowed from all IPs together within ``login_lockout_seconds``
    #: (a guesser with many addresses); a correct password gives its attempt back.
    login_attempts_overall: int = 50
    #: Seconds of the login attempt window (and so of a lockout).
    login_lockout_seconds: int = 900
    #: Reverse proxies in front of `digest web` whose X-Forwarded-For / -Proto to believe
    #: (werkzeug's ProxyFix): 0 believes none. With a proxy and 0, every client has the
    #: proxy's address, so one guesser's lockout locks everyone out.
    trusted_proxies: int = 0

    # -- DKIM Ed25519 (RFC 8463), a second signature beside the RSA one
    #: Selector (s=) of the Ed25519 signature; its TXT record is ``v=DKIM1; k=ed25519; p=...``.
    dkim_ed25519_selector: str | None = None
    #: The Ed25519 private key: a PEM (PKCS#8) file, or the raw 32-byte key in base64.
    dkim_ed25519_key_file: str | None = None

    # -- relay webhooks (issue 14) -----------------------------------------------------------
    #: Amazon SES through SNS: the topic ARNs (comma-separated) whose notifications
    #: ``/hooks/ses`` accepts. Unset: that endpoint answers 404.
    ses_topic_arns: str | None = None
    #: 1: visit an SNS SubscriptionConfirmation's SubscribeURL at once. 0: only log it, for the
    #: operator to open (a subscription is then a deliberate act, not anyone's POST).
    ses_auto_confirm: int = 0
    #: Postmark: the HTTP Basic user and password put in the webhook URL
    #: (``https://USER:PASSWORD@host/hooks/postmark``). Unset password: that endpoint answers 404.
    #: The password must be as strong as the secret key (see ``weak_webhook_reasons``).
    postmark_webhook_user: str = "postmark"
    postmark_webhook_password: str | None = None
    #: SendGrid Signed Event Webhook: its verification key (base64 DER, as SendGrid shows it).
    #: Unset: ``/hooks/sendgrid`` answers 404.
    sendgrid_webhook_public_key: str | None = None
    #: Mailgun: the HTTP webhook signing key. Unset: ``/hooks/mailgun`` answers 404.
    mailgun_webhook_signing_key: str | None = None
    #: Oldest signed timestamp (seconds) a SendGrid or Mailgun call may carry; older is a replay.
    webhook_max_age_seconds: int = 300
    #: Failed authentications (401, 403) on the Postmark or Mailgun hook allowed from one client
    #: IP within ``webhook_lockout_seconds``; past it, that hook answers 429 to the IP without
    #: checking any credential until the window ends.
    webhook_failures_per_ip: int = 10
    #: The same from all IPs together (a guesser with many addresses), per hook.
    webhook_failures_overall: int = 100
    #: Seconds of the failed-authentication window (and so of a lockout).
    webhook_lockout_seconds: int = 900
    #: Bearer token ``/metrics`` requires (``Authorization: Bearer TOKEN``). Unset: ``/metrics``
    #: answers only a client on the loopback interface whose request came through no proxy.
    metrics_token: str | None = None

    # -- operator's first week: the demo (issue 12) --------------------------------------------
    #: SMTP server `digest demo` delivers the sample digests to, e.g. a Mailpit whose inbox shows
    #: them (``smtp://mailpit:1025``). Unset: the outbox folder. Never DIGEST_SMTP_URL, so the
    #: demo cannot mail the sample subscribers through a real relay.
    demo_smtp_url: str | None = None

    # -- clicks and statistics (issue 14): both off by default ------------------------------
    #: Article links in the digest go through ``BASE/c/TOKEN``, which counts the click and
    #: redirects to the article. Off: the links are the articles' own, byte for byte.
    track_clicks: bool = False
    #: A 1x1 image per message (``BASE/o/TOKEN``) counts opens; shown as unreliable, since
    #: Apple Mail Privacy Protection and many scanners fetch every image.
    track_opens: bool = False
    #: Clicks this many seconds after the message was accepted are a scanner's, not a reader's.
    click_scanner_delay_seconds: float = 5.0
    #: This many distinct links of one message fetched within ``click_burst_seconds`` of each
    #: other are a scanner's (fewer if the edition has fewer, never fewer than 2).
    click_burst_links: int = 3
    #: The window of a scanner's burst of fetches, in seconds.
    click_burst_seconds: float = 5.0
    #: Days clicks and opens are kept (13 months: a year's figures beside last year's); the
    #: sweep deletes older ones. 0 keeps them for good.
    click_retention_days: int = 395

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

    # -- is anyone working? (issue 18) ---------------------------------------------------------
    #: Seconds between a worker's heartbeats in Redis; a worker silent for three of them is
    #: taken for gone by `digest send`, `digest doctor` and ``/metrics``.
    worker_heartbeat_seconds: float = 10.0
    #: Seconds due rows of a sending edition may go unclaimed on a broker before `digest
    #: status`, the dashboard and the API say it is waiting for a worker.
    waiting_after_seconds: float = 120.0

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


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _coerce(name: str, raw: object, type_name: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say which setting is wrong."""
    if type_name in ("int", "float"):
        try:
            return int(raw) if type_name == "int" else float(raw)  # type: ignore[arg-type,call-overload]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}: expected a number, got {raw!r:.40}") from exc
    if type_name == "bool":
        flag = str(raw).strip().lower()
        if isinstance(raw, bool) or flag in _TRUE | _FALSE:
            return raw if isinstance(raw, bool) else flag in _TRUE
        raise ConfigError(f"setting {name}: expected 1/0, true/false, yes/no, got {raw!r}")
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
    require_site: bool = False,
) -> Settings:
    """Defaults, then the TOML file (DIGEST_CONFIG or ./digest.toml), then the environment.

    ``require_site``: refuse (ConfigError, naming `digest setup` and `digest demo`) when
    nothing here configures a site (no settings file, no DIGEST_DATABASE_URL, no default
    database file yet), rather than create an empty database and a new secret in whatever
    folder the command was run from."""
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
    elif require_site and "DIGEST_DATABASE_URL" not in env and not _default_database_here():
        raise ConfigError(NO_SITE)

    for name, f in fields.items():
        env_name = f"DIGEST_{name.upper()}"
        if env_name in env:
            values[name] = _coerce(env_name, env[env_name], str(f.type))

    settings = Settings(**values)
    _validate(settings)
    if ensure_secret and not settings.secret_key:
        settings = settings.replace(secret_key=_local_secret())
    return settings


#: The range each number setting must fall in, inclusive. Beyond these a value is a typo or a
#: unit mix-up (milliseconds for seconds): refused at start, naming the variable, rather than
#: found later as a send that never sleeps, never times out or overflows a database column.
_DAY = 24 * 3600
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (1, 100_000),
    "lease_seconds": (3, 7 * _DAY),
    "stall_seconds": (0, 7 * _DAY),
    "max_attempts": (1, 1000),
    "retry_base_seconds": (0, 7 * _DAY),
    "rate_limit": (0, 1_000_000),
    "rate_limit_per_domain": (0, 1_000_000),
    "pause_after_errors": (1, 1_000_000),
    "pause_after_refusals": (1, 1_000_000),
    "pause_after_error_seconds": (0, 7 * _DAY),
    "worker_heartbeat_seconds": (0.5, 3600),
    "waiting_after_seconds": (0, 7 * _DAY),
    "fetch_timeout": (0.001, 3600),
    "fetch_max_bytes": (1, 2**31 - 1),
    "soft_bounce_limit": (1, 1000),
    "inbound_max_bytes": (1, 2**31 - 1),
    "confirm_mail_hours": (0, 24 * 366),
    "signups_per_ip_per_hour": (1, 1_000_000),
    "login_attempts_per_ip": (1, 1_000_000),
    "login_attempts_overall": (1, 1_000_000),
    "login_lockout_seconds": (1, 366 * _DAY),
    "trusted_proxies": (0, 10),
    "fetch_workers": (1, 256),
    "fetch_per_host": (1, 64),
    "ingest_max_items": (1, 1_000_000),
    "ses_auto_confirm": (0, 1),
    "webhook_max_age_seconds": (1, 7 * _DAY),
    "webhook_failures_per_ip": (1, 1_000_000),
    "webhook_failures_overall": (1, 1_000_000),
    "webhook_lockout_seconds": (1, 366 * _DAY),
    "click_scanner_delay_seconds": (0, 3600),
    "click_burst_links": (1, 1000),
    "click_burst_seconds": (0, 3600),
    "click_retention_days": (0, 36_500),
    "batch_stuck_seconds": (1, 7 * _DAY),
    "commit_every": (1, 100_000),
    "commit_interval": (0, 3600),
}


#: Brokers Digest's queue works with (Celery's Redis and RabbitMQ transports).
BROKER_SCHEMES = ("redis", "rediss", "sentinel", "amqp", "amqps")


def _scheme(url: str, *, host: bool = False) -> str:
    """The URL's scheme in lower case; "" if it has none, cannot be parsed (``http://[::1``),
    or ``host`` is asked for and missing."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return ""
    if host and not hostname:
        return ""
    return parts.scheme.lower()


def _check_numbers(settings: Settings) -> None:
    for name, (low, high) in NUMBER_RANGES.items():
        value = getattr(settings, name)
        # NaN compares false with everything, so "not low <= value <= high" catches it too.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            shown = f"{low:g} to {high:g}" if isinstance(low, float) else f"{low} to {high:,}"
            raise ConfigError(f"DIGEST_{name.upper()} must be {shown}, not {value!r:.40}")


#: Settings that may run over lines (a TOML multi-line string): shown in a page's body only.
_MULTILINE = frozenset({"postal_address"})


def _check_text(settings: Settings) -> None:
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if not isinstance(value, str):
            continue
        if f.name in _MULTILINE:
            value = value.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        # A control character in a setting would end up in a header, a path or a URL.
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ConfigError(f"DIGEST_{f.name.upper()} contains a control character")
        # Bytes of the environment that are not UTF-8 arrive as lone surrogates.
        if any("\ud800" <= c <= "\udfff" for c in value):
            raise ConfigError(f"DIGEST_{f.name.upper()} is not valid UTF-8")


def _validate(settings: Settings) -> None:
    _check_text(settings)
    _check_numbers(settings)
    for name in ("base_url", "site_url"):
        if _scheme(getattr(settings, name), host=True) not in ("http", "https"):
            raise ConfigError(f"DIGEST_{name.upper()} must be an absolute http(s) URL")
    for name in ("smtp_url", "demo_smtp_url"):
        url = getattr(settings, name)
        if url and _scheme(url, host=True) not in ("smtp", "smtps"):
            raise ConfigError(
                f"DIGEST_{name.upper()} must start with smtp:// or smtps:// and name a host"
            )
    if settings.broker_url and _scheme(settings.broker_url) not in BROKER_SCHEMES:
        raise ConfigError(
            f"DIGEST_BROKER_URL must start with {' or '.join(s + '://' for s in BROKER_SCHEMES)}"
        )
    if "://" not in settings.database_url or not _scheme(settings.database_url):
        raise ConfigError(
            "DIGEST_DATABASE_URL must be a SQLAlchemy URL, e.g. sqlite:///digest.db or "
            "postgresql+psycopg://user@host/db"
        )
    dkim = (settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    if any(dkim) and not all(dkim):
        raise ConfigError(
            "DKIM needs all three of DIGEST_DKIM_DOMAIN, DIGEST_DKIM_SELECTOR, DIGEST_DKIM_KEY_FILE"
        )
    ed25519 = (settings.dkim_ed25519_selector, settings.dkim_ed25519_key_file)
    if any(ed25519) and not all(ed25519):
        raise ConfigError(
            "DKIM Ed25519 needs both DIGEST_DKIM_ED25519_SELECTOR and DIGEST_DKIM_ED25519_KEY_FILE"
        )
    if any(ed25519) and not all(dkim):
        raise ConfigError(
            "DKIM Ed25519 is a second signature beside the RSA one: set DIGEST_DKIM_DOMAIN, "
            "DIGEST_DKIM_SELECTOR and DIGEST_DKIM_KEY_FILE too"
        )
    if settings.log_format not in ("text", "json"):
        raise ConfigError("DIGEST_LOG_FORMAT must be text or json")
    if settings.bounce_domain and not _DOMAIN.match(settings.bounce_domain):
        raise ConfigError("DIGEST_BOUNCE_DOMAIN must be a bare domain name, e.g. bounces.example")
    if settings.synchronous_commit not in ("on", "off"):
        raise ConfigError("DIGEST_SYNCHRONOUS_COMMIT must be on or off")
    if (settings.broker_url or "").startswith("sentinel://") and not settings.broker_master_name:
        raise ConfigError("a sentinel:// DIGEST_BROKER_URL needs DIGEST_BROKER_MASTER_NAME")
    if settings.metrics_token is not None and (
        len(settings.metrics_token) < MIN_SECRET_KEY_LENGTH or _repetitive(settings.metrics_token)
    ):
        raise ConfigError(
            f"DIGEST_METRICS_TOKEN must be at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    _validate_webhooks(settings)


def _validate_webhooks(settings: Settings) -> None:
    # Checked at start-up: a bad key found at the first webhook call would lose that report.
    for arn in (settings.ses_topic_arns or "").split(","):
        if arn.strip() and not _TOPIC_ARN.match(arn.strip()):
            raise ConfigError(f"DIGEST_SES_TOPIC_ARNS: {arn.strip()!r} is not an SNS topic ARN")
    if settings.sendgrid_webhook_public_key:
        _check_ecdsa_key(settings.sendgrid_webhook_public_key)


def _check_ecdsa_key(text: str) -> None:
    # Imported here: only a deployment that sets the key pays for loading cryptography.
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY must be the base64 key SendGrid shows"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    # SendGrid signs with P-256 only: a key on another curve is not SendGrid's.
    if not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 (prime256v1) key")


#: The placeholders shipped in ``.env.example``: a deployment that copied them as they are.
PLACEHOLDER_SECRETS = frozenset({"change-me-to-a-long-random-string", "change-me-too"})
#: Passwords that guessers try first; compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password123", "passw0rd", "123456789012", "1234567890",
        "qwertyuiop", "qwerty123456", "letmein", "letmein123", "welcome", "welcome123",
        "admin", "admin123", "administrator", "changeme", "change-me", "changemenow",
        "iloveyou", "trustno1", "secret", "supersecret", "digest", "digestdigest",
        "newsletter", "newsletter123", "operator", "operator123", "correcthorsebatterystaple",
    }
)  # fmt: skip
MIN_SECRET_KEY_LENGTH = 32
MIN_OPERATOR_PASSWORD_LENGTH = 12


def _repetitive(value: str) -> bool:
    """Whether ``value`` is one short run repeated ("aaaa...", "abcabc..."), or uses so few
    distinct characters that its length adds little."""
    if len(set(value)) <= max(4, len(value) // 8):
        return True
    for size in range(1, len(value) // 2 + 1):
        if len(value) % size == 0 and value[:size] * (len(value) // size) == value:
            return True
    return False


def weak_key_reasons(key: str, setting: str = "DIGEST_SECRET_KEY") -> list[str]:
    """Why ``key`` is unfit to sign links and sessions, or as another secret only machines
    read (empty: it is fine); ``setting`` names it in the reason."""
    if key in PLACEHOLDER_SECRETS:
        return [f"{setting} is the placeholder from .env.example"]
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return [
            f"{setting} is {len(key)} characters; use at least {MIN_SECRET_KEY_LENGTH} "
            "random ones (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        ]
    if _repetitive(key):
        return [f"{setting} repeats a few characters: use random ones"]
    return []


def weak_password_reasons(password: str) -> list[str]:
    """Why ``password`` is unfit for the operator dashboard (empty: it is fine)."""
    if password in PLACEHOLDER_SECRETS:
        return ["DIGEST_OPERATOR_PASSWORD is the placeholder from .env.example"]
    if len(password) < MIN_OPERATOR_PASSWORD_LENGTH:
        return [
            f"DIGEST_OPERATOR_PASSWORD is shorter than {MIN_OPERATOR_PASSWORD_LENGTH} characters"
        ]
    # Spaces and case do not make a famous phrase less famous.
    if "".join(password.lower().split()) in COMMON_PASSWORDS:
        return ["DIGEST_OPERATOR_PASSWORD is a commonly guessed password"]
    if _repetitive(password):
        return ["DIGEST_OPERATOR_PASSWORD repeats a few characters"]
    return []


#: A Mailgun HTTP webhook signing key as Mailgun issues them: ``key-`` and 32 letters and
#: digits (older accounts, where it is also the API key), or 32 or more hex digits, some in
#: dash-separated groups.
_MAILGUN_KEY = re.compile(r"(?:key-)?[0-9A-Za-z]{32}|[0-9a-fA-F]{32,}(?:-[0-9a-fA-F]{8,})*")


def weak_webhook_reasons(settings: Settings) -> dict[str, str]:
    """Why a relay webhook's secret is unfit, by relay (``postmark``, ``mailgun``); empty
    when every configured one is fine. Never includes the values.

    The Postmark password is ours to choose and is all that proves a call (HTTP Basic): it
    must pass the secret key's rule (32 characters or more, not a placeholder, not a few
    characters repeated), and may not be the secret key or the operator password, which would
    then be handed to Postmark in the webhook URL. The Mailgun signing key is Mailgun's to
    issue: anything not shaped like one (a one-letter key, a password) was typed by hand and
    lets anyone who guesses it sign a complaint. The SendGrid key is public; it only has to be
    a P-256 key, which is checked when the settings load.
    """
    reasons: dict[str, str] = {}
    password = settings.postmark_webhook_password
    if password:
        weak = weak_key_reasons(password, "DIGEST_POSTMARK_WEBHOOK_PASSWORD")
        if weak:
            reasons["postmark"] = weak[0]
        elif password in (settings.secret_key, settings.operator_password):
            reasons["postmark"] = (
                "DIGEST_POSTMARK_WEBHOOK_PASSWORD is another Digest secret: Postmark would "
                "hold it; use one of its own"
            )
    key = settings.mailgun_webhook_signing_key
    if key:
        if not _MAILGUN_KEY.fullmatch(key):
            reasons["mailgun"] = (
                "DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY is not a Mailgun signing key (key-... or 32+ "
                "hex digits): copy the HTTP webhook signing key from Mailgun's Webhooks page"
            )
        elif _repetitive(key.removeprefix("key-")):
            reasons["mailgun"] = "DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY repeats a few characters"
    return reasons


def weak_secret_reasons(settings: Settings) -> list[str]:
    """Why the secret key, operator password or a webhook secret is unfit for a public server;
    empty if all are fine. Never includes the values. An unset key or password is not weak: a
    key is then generated, and the dashboard login (or that webhook) is off."""
    reasons: list[str] = []
    if settings.secret_key is not None:
        reasons += weak_key_reasons(settings.secret_key)
    if settings.operator_password is not None:
        reasons += weak_password_reasons(settings.operator_password)
    reasons += weak_webhook_reasons(settings).values()
    return reasons


def require_strong_secrets(settings: Settings) -> None:
    """Refuse to serve with a weak secret key, operator password or webhook secret (``web`` and
    ``worker`` call this before starting)."""
    reasons = weak_secret_reasons(settings)
    if reasons:
        raise ConfigError("refusing to start: " + "; ".join(reasons))


#: What a command run where no site is configured says.
NO_SITE = (
    "no Digest site here: no digest.toml, DIGEST_CONFIG or DIGEST_DATABASE_URL (and no "
    "digest.db). `digest setup` writes the settings for your site, `digest demo` runs the "
    "bundled sample site; or run from the site's folder, or pass --config FILE"
)


def _default_database_here() -> bool:
    """Whether the default database (a SQLite file in this folder) is already there: a site
    made by `digest demo` or `digest init` without a settings file."""
    default = Settings.__dataclass_fields__["database_url"].default
    assert isinstance(default, str)
    return Path(default.removeprefix("sqlite:///")).exists()


def _local_secret() -> str:
    """A key for a single machine, kept beside the database so links stay valid across runs.

    Several machines must share one key, so production sets DIGEST_SECRET_KEY.
    """
    path = Path(SECRET_FILE)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except PermissionError as exc:
        # A container's code folder, or any folder this user may not write to.
        raise ConfigError(
            f"DIGEST_SECRET_KEY is not set and {path.resolve()} cannot be written: set "
            "DIGEST_SECRET_KEY, or run from a folder you can write to (the data folder)"
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


__all__ = [
    "Settings",
    "load_settings",
    "require_strong_secrets",
    "weak_key_reasons",
    "weak_password_reasons",
    "weak_secret_reasons",
    "weak_webhook_reasons",
]
