"""The SMTP transport against a real SMTP server (aiosmtpd): replies, dots, connection reuse."""

from __future__ import annotations

import socket

import pytest

from digest.errors import ConfigError, TransportError
from digest.transports import Envelope, Outcome, SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\n\r\n"
    b".starts with a dot\r\nmiddle\r\n.\r\n..two dots\r\nend\r\n"
)


def test_message_arrives_byte_for_byte_over_one_connection(smtp_server: SmtpSink) -> None:
    """Lines starting with dots survive dot-stuffing, and many messages share one connection."""
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        for i in range(3):
            result = transport.send(Envelope("a@example.com", f"r{i}@example.com"), MESSAGE)
            assert result.outcome == Outcome.SENT
        connection = transport._conn
    assert connection is not None
    assert [r.recipients for r in smtp_server.received] == [[f"r{i}@example.com"] for i in range(3)]
    assert all(r.data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
               for r in smtp_server.received)  # fmt: skip


def test_recipient_refusals_are_classified_and_connection_goes_on(smtp_server: SmtpSink) -> None:
    """550 bounces, 451 and 552 defer, and the next recipient on the same connection is sent."""
    smtp_server.codes.update({"gone@example.com": [550], "busy@example.com": [451],
                              "full@example.com": [552]})  # fmt: skip
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        outcomes = [
            transport.send(Envelope("a@example.com", rcpt), MESSAGE).outcome
            for rcpt in (
                "gone@example.com",
                "busy@example.com",
                "full@example.com",
                "ok@example.com",
            )
        ]
    assert outcomes == [Outcome.BOUNCED, Outcome.DEFERRED, Outcome.DEFERRED, Outcome.SENT]
    assert [r.recipients for r in smtp_server.received] == [["ok@example.com"]]


def test_closing_server_is_a_transport_error(smtp_server: SmtpSink) -> None:
    """A 421 reply means the whole connection is gone: TransportError, not a bounce."""
    smtp_server.codes["late@example.com"] = [421]
    with (
        SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport,
        pytest.raises(TransportError, match="closing"),
    ):
        transport.send(Envelope("a@example.com", "late@example.com"), MESSAGE)


def test_unreachable_server_is_a_transport_error() -> None:
    """Nothing listening on the port: a TransportError saying it cannot reach the server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SmtpTransport(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}"))
    with pytest.raises(TransportError, match="cannot reach"):
        transport.send(Envelope("a@example.com", "b@example.com"), MESSAGE)


def test_address_with_smtp_syntax_is_refused_locally(smtp_server: SmtpSink) -> None:
    """An address holding '>' or a line break never reaches the wire as a command."""
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(Envelope("a@example.com", "x@example.com>\r\nRSET"), MESSAGE)
    assert result.outcome == Outcome.BOUNCED and not smtp_server.received


def test_smtp_url_parsing() -> None:
    """User, password, port, STARTTLS and implicit TLS come from the URL; bad URLs are refused."""
    config = SmtpConfig.from_url("smtp://user%40x:p%3Ass@mail.example:587?starttls=1")
    assert (config.username, config.password, config.port, config.starttls) == (
        "user@x",
        "p:ss",
        587,
        True,
    )
    assert SmtpConfig.from_url("smtps://mail.example").port == 465
    with pytest.raises(ConfigError):
        SmtpConfig.from_url("http://mail.example")
