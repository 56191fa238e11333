"""What a mail transport is: something that takes one message for one recipient."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


class Outcome(enum.StrEnum):
    SENT = "sent"  # 2xx: the server took responsibility
    DEFERRED = "deferred"  # 4xx: try again later
    BOUNCED = "bounced"  # 5xx: permanent; suppress the address


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    #: A folder-friendly name for the send this message belongs to ("daily-2026-11-24"),
    #: used by the outbox transport to group files.
    label: str = "messages"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    code: int | None = None
    detail: str = ""


def classify(code: int) -> Outcome:
    """The outcome an SMTP reply code means for one recipient (RFC 5321).

    552 (mailbox full, storage exceeded) on RCPT is to be treated as temporary.
    """
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500 or code == 552:
        return Outcome.DEFERRED
    return Outcome.BOUNCED


class Transport(Protocol):
    """Delivers messages; a context manager so its connection is always closed.

    ``send`` returns the recipient's outcome, or raises TransportError when the
    transport as a whole failed (connection lost, 421), in which case the
    message was not accepted.
    """

    def send(self, envelope: Envelope, message: bytes) -> SendResult: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class TransportBase:
    """Context-manager plumbing shared by the transports."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
