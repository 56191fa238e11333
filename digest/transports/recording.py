"""A transport that keeps what it is given, for tests; outcomes can be scripted per address."""

from __future__ import annotations

from collections.abc import Mapping

from digest.errors import TransportError
from digest.transports.base import Envelope, SendResult, TransportBase, classify


class RecordingTransport(TransportBase):
    def __init__(
        self, codes: Mapping[str, int] | None = None, fail_after: int | None = None
    ) -> None:
        #: recipient -> SMTP code to answer (default 250)
        self.codes = dict(codes or {})
        #: raise TransportError on the message after this many have been sent
        self.fail_after = fail_after
        self.sent: list[tuple[Envelope, bytes]] = []
        self.closed = False

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise TransportError("connection lost (scripted)")
        code = self.codes.get(envelope.recipient, 250)
        result = SendResult(classify(code), code)
        if code < 300:
            self.sent.append((envelope, message))
        return result

    def close(self) -> None:
        self.closed = True
