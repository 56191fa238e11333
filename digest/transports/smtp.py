"""The SMTP transport: one connection reused for a whole batch, replies classified per recipient."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from digest.errors import ConfigError, TransportError
from digest.transports.base import Envelope, Outcome, SendResult, TransportBase, classify

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False  # smtps://
    starttls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """``smtp://user:pass@host:587?starttls=1`` or ``smtps://host:465``."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"not an smtp:// or smtps:// URL: {url}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit else 25)
            timeout = float(query.get("timeout", 30))
        except ValueError as exc:
            raise ConfigError(f"DIGEST_SMTP_URL: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=query.get("starttls", "").lower() in _TRUE,
            timeout=timeout,
        )


class SmtpTransport(TransportBase):
    """Connects on first use, then sends every message over the same connection."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            conn: smtplib.SMTP
            if cfg.implicit_tls:
                conn = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"SMTP {cfg.host}:{cfg.port} refused the login ({exc.smtp_code})", transient=False
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"cannot reach SMTP server {cfg.host}:{cfg.port}: {exc}") from exc
        return conn

    def connect(self) -> None:
        """Open the connection now (to report an unreachable server before any work)."""
        if self._conn is None:
            self._conn = self._connect()

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = self._conn.sendmail(envelope.sender, [envelope.recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(envelope.recipient, (550, b"refused"))
            return self._answer(code, reply)
        except smtplib.SMTPResponseException as exc:
            # 421 (closing), or any reply to MAIL FROM / DATA: the server speaks for the
            # whole connection when it is 421, for this message otherwise.
            if exc.smtp_code == 421:
                self._drop()
                raise TransportError(f"SMTP server closing: {_text(exc.smtp_error)}") from exc
            self._reset()
            return self._answer(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TransportError(f"SMTP connection lost: {exc}") from exc
        if refused:  # cannot happen with a single recipient, but never drop it silently
            code, reply = refused[envelope.recipient]
            return self._answer(code, reply)
        return SendResult(Outcome.SENT, 250)

    @staticmethod
    def _answer(code: int, reply: bytes | str) -> SendResult:
        return SendResult(classify(code), code, _text(reply))

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
