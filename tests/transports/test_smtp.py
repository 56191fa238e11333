"""The SMTP transport against a real SMTP server (aiosmtpd): replies, dots, connection reuse."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as AioEnvelope

from digest.errors import ConfigError, TransportError
from digest.transports import Envelope, Outcome, SmtpConfig, SmtpTransport, classify
from tests.conftest import SmtpSink
from tests.flaky_relay import Fault, FlakyRelay

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


class _ScriptedData:
    """Accepts every recipient, then answers DATA with the next scripted reply."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies

    async def handle_DATA(self, server: SMTP, session: Session, envelope: AioEnvelope) -> str:
        return self.replies.pop(0) if self.replies else "250 OK"


@contextmanager
def _server(handler: object) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def test_a_line_too_long_is_our_failure_not_a_bounce(smtp_server: SmtpSink) -> None:
    """aiosmtpd's own "500 Line too long" for a line over 998 octets fails the delivery
    without marking the address bounced, and the connection carries on."""
    too_long = b"From: a@example.com\r\nSubject: t\r\n\r\n" + b"x" * 1200 + b"\r\n"
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(Envelope("a@example.com", "ann@example.com"), too_long)
        after = transport.send(Envelope("a@example.com", "bob@example.com"), MESSAGE)
    assert (result.outcome, result.code) == (Outcome.FAILED, 500)
    assert after.outcome == Outcome.SENT


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("552 5.3.4 Message size exceeds fixed limit", Outcome.FAILED),
        ("554 5.6.0 Message contains invalid header", Outcome.FAILED),
        ("554 5.3.4 Message too big for system", Outcome.FAILED),
        ("550 5.6.11 Bare LF in message", Outcome.FAILED),
        ("500 5.5.2 Syntax error", Outcome.FAILED),
        ("552 5.2.2 Mailbox full", Outcome.DEFERRED),
        ("550 5.1.1 No such user", Outcome.BOUNCED),
        ("554 5.7.1 Message refused by policy", Outcome.BOUNCED),
    ],
)
def test_replies_to_the_message_are_classified_by_whose_fault(reply: str, outcome: Outcome) -> None:
    """After DATA, a 5xx whose enhanced code blames the message (size 5.3.4, protocol 5.5.x,
    content 5.6.x) is FAILED; a mailbox or policy refusal still bounces."""
    with (
        _server(_ScriptedData([reply])) as url,
        SmtpTransport(SmtpConfig.from_url(url)) as transport,
    ):
        result = transport.send(Envelope("a@example.com", "ann@example.com"), MESSAGE)
    assert result.outcome == outcome
    assert result.code == int(reply[:3]) and reply[4:] in result.detail


def test_command_errors_at_rcpt_are_failures_and_bad_addresses_bounce(
    smtp_server: SmtpSink,
) -> None:
    """501 and 503 to RCPT without an address status are our command's fault (FAILED); a
    501 or 553 with 5.1.x says the address is bad (BOUNCED)."""
    replies = {
        "syntax@example.com": "501 Syntax error in parameters",
        "order@example.com": "503 Bad sequence of commands",
        "badsyntax@example.com": "501 5.1.3 Bad recipient address syntax",
        "nope@example.com": "553 5.1.3 Mailbox name not allowed",
    }

    class Rcpt:
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: AioEnvelope, address: str, _: object
        ) -> str:
            return replies[address]

    with (
        _server(Rcpt()) as url,
        SmtpTransport(SmtpConfig.from_url(url)) as transport,
    ):
        outcomes = {a: transport.send(Envelope("a@example.com", a), MESSAGE).outcome
                    for a in replies}  # fmt: skip
    assert outcomes == {
        "syntax@example.com": Outcome.FAILED,
        "order@example.com": Outcome.FAILED,
        "badsyntax@example.com": Outcome.BOUNCED,
        "nope@example.com": Outcome.BOUNCED,
    }


def test_classify_without_a_server() -> None:
    """classify keeps its old answers for bare codes: 2xx sent, 4xx and 552 deferred, 550
    bounced; 500-504 failed; an enhanced code of the wrong class is ignored."""
    assert classify(250) == Outcome.SENT
    assert classify(451) == Outcome.DEFERRED
    assert classify(552) == Outcome.DEFERRED
    assert classify(550) == Outcome.BOUNCED
    assert classify(554) == Outcome.BOUNCED
    assert [classify(c) for c in (500, 501, 502, 503, 504)] == [Outcome.FAILED] * 5
    assert classify(550, "4.3.4 odd") == Outcome.BOUNCED
    assert classify(552, "5.3.4 too big") == Outcome.FAILED


# -- a relay that drops connections (tests/flaky_relay.py) -----------------------------------


def test_drop_after_the_dot_is_an_unanswered_transport_error() -> None:
    """A relay that takes the whole message and resets the connection without a reply: a
    TransportError marked unanswered (the relay may have it), and the next message on a
    fresh connection goes through."""
    with FlakyRelay() as relay:
        relay.flaky((Fault.AFTER_DOT,))
        transport = SmtpTransport(SmtpConfig.from_url(relay.url))
        with pytest.raises(TransportError, match="did not answer") as lost:
            transport.send(Envelope("a@example.com", "ann@example.com"), MESSAGE)
        relay.recover()
        again = transport.send(Envelope("a@example.com", "ann@example.com"), MESSAGE)
        transport.close()
    assert lost.value.unanswered and lost.value.transient
    assert again.outcome == Outcome.SENT
    assert relay.unanswered() == {"ann@example.com": 1} and relay.answered() == {
        "ann@example.com": 1
    }


def test_drop_in_the_middle_of_a_long_message_is_not_unanswered() -> None:
    """A reset while the message is still being written: the relay cannot have it, so the
    error is not marked unanswered (the row goes back without counting an attempt)."""
    # Far more than the socket buffers hold, so the write is still going when the reset comes.
    long = MESSAGE.replace(b"middle", b"x" * 900 + (b"\r\n" + b"y" * 900) * 16_000)
    with FlakyRelay() as relay:
        relay.flaky((Fault.MID_DATA,))
        with (
            SmtpTransport(SmtpConfig.from_url(relay.url)) as transport,
            pytest.raises(TransportError) as lost,
        ):
            transport.send(Envelope("a@example.com", "ann@example.com"), long)
    assert not lost.value.unanswered
    assert relay.taken == [] and relay.faults == [(("ann@example.com",), Fault.MID_DATA)]


@pytest.mark.heavy  # waits out a one-second timeout
def test_a_relay_silent_after_the_dot_holds_the_sender_only_for_the_timeout() -> None:
    """A relay that takes the message and never answers frees the sender after the URL's
    ?timeout= (not RFC 5321's ten minutes), with an unanswered TransportError."""
    with FlakyRelay() as relay:
        relay.flaky((Fault.HANG,))
        started = time.monotonic()
        with (
            SmtpTransport(SmtpConfig.from_url(f"{relay.url}?timeout=1")) as transport,
            pytest.raises(TransportError) as lost,
        ):
            transport.send(Envelope("a@example.com", "ann@example.com"), MESSAGE)
        waited = time.monotonic() - started
    assert lost.value.unanswered and "timed out" in str(lost.value)
    assert 0.9 < waited < 5, waited
    assert relay.unanswered() == {"ann@example.com": 1}
