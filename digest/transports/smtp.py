"""The SMTP transport: one connection reused for a whole batch, replies classified per recipient."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from digest.errors import ConfigError, TransportError
from digest.transports.base import Envelope, Outcome, SendResult, TransportBase, classify

_TRUE = {"1", "true", "yes", "on"}
# Addresses were validated on the way in; this keeps a bad one from becoming SMTP syntax.
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False  # smtps://
    starttls: bool = False
    #: Seconds any one read or write on the connection may take (``?timeout=``), the reply to
    #: the final dot included: RFC 5321 allows a server 10 minutes there, but a relay that
    #: has not answered in 30 s is stuck, and waiting longer only holds a worker.
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
        """Send one message to one recipient and classify the server's answer.

        Written on smtplib's command layer rather than ``sendmail``: the message
        already has CRLF line ends, so dot-stuffing is one ``bytes.replace``
        instead of two regular expressions over 50 KB, and with PIPELINING the
        envelope costs one round trip instead of three. A refusal of the sender
        (MAIL FROM) is the transport's problem, never the recipient's.
        """
        for address in (envelope.sender, envelope.recipient):
            if _UNSAFE_ADDRESS.search(address):
                return SendResult(Outcome.BOUNCED, 553, "address not usable in SMTP")
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        # Once the final dot is out, a lost connection (or a reply that never comes within the
        # socket timeout) leaves it unknown whether the server took the message.
        message_sent = False
        try:
            mail, rcpt, data = self._envelope(conn, envelope)
            if mail[0] != 250:
                self._reset_after(data)
                raise TransportError(
                    f"SMTP server refused the sender {envelope.sender}: {mail[0]} {_text(mail[1])}",
                    transient=400 <= mail[0] < 500,
                )
            if rcpt[0] not in (250, 251):
                self._reset_after(data)
                return self._answer(*rcpt)
            if data[0] != 354:
                self._reset_after(data)
                return self._answer(*data)
            conn.send(_dot_stuffed(message) + b".\r\n")
            message_sent = True
            final = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            if message_sent:
                raise TransportError(
                    "SMTP server did not answer after the message was sent (it may have taken "
                    f"it): {exc}",
                    unanswered=True,
                ) from exc
            lost = "lost" if isinstance(exc, smtplib.SMTPServerDisconnected) else "failed"
            raise TransportError(f"SMTP connection {lost}: {exc}") from exc
        if final[0] == 421:
            self._drop()
            raise TransportError(f"SMTP server closing: {_text(final[1])}")
        return self._answer(*final)

    def _envelope(
        self, conn: smtplib.SMTP, envelope: Envelope
    ) -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        """MAIL, RCPT and DATA, pipelined when the server allows (RFC 2920)."""
        commands = [
            f"MAIL FROM:<{envelope.sender}>",
            f"RCPT TO:<{envelope.recipient}>",
            "DATA",
        ]
        if conn.has_extn("pipelining"):
            conn.send("".join(f"{c}\r\n" for c in commands))
            replies = [conn.getreply() for _ in commands]
        else:
            replies = []
            for command in commands:
                conn.putcmd(command)
                replies.append(conn.getreply())
                if replies[-1][0] >= 400:
                    break
            replies += [(503, b"not sent")] * (len(commands) - len(replies))
        for code, reply in replies:
            if code == 421:
                self._drop()
                raise TransportError(f"SMTP server closing: {_text(reply)}")
        return replies[0], replies[1], replies[2]

    def _reset_after(self, data_reply: tuple[int, bytes]) -> None:
        """Abandon the current transaction, ending a DATA the server opened anyway."""
        if self._conn is None:
            return
        if data_reply[0] == 354:
            self._conn.send(b".\r\n")
            self._conn.getreply()
        self._reset()

    @staticmethod
    def _answer(code: int, reply: bytes | str) -> SendResult:
        text = _text(reply)
        return SendResult(classify(code, text), code, text)

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


def _dot_stuffed(message: bytes) -> bytes:
    """The message as DATA wants it: lines starting with "." doubled, ending in CRLF."""
    data = message.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
