"""What a mail transport is: something that takes one message for one recipient."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


class Outcome(enum.StrEnum):
    SENT = "sent"  # 2xx: the server took responsibility
    DEFERRED = "deferred"  # 4xx: try again later
    BOUNCED = "bounced"  # 5xx: permanent; suppress the address
    #: 5xx about our message or our commands, not the address (a syntax error, a line or a
    #: message too long): a local error is never a bounce, so the address stays and the
    #: delivery can be retried once the message is fixed.
    FAILED = "failed"


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


# RFC 3463 enhanced status code at the start of the reply text: class.subject.detail.
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")
# 500-504: the server could not parse or did not expect our command.
_COMMAND_ERRORS = frozenset({500, 501, 502, 503, 504})


def classify(code: int, detail: str = "") -> Outcome:
    """The outcome an SMTP reply means for one recipient (RFC 5321, RFC 3463).

    ``detail`` is the reply text; its enhanced status code, when the server gives
    one, says whose fault a 5xx is. Addressing and mailbox codes (5.1.x, 5.2.x)
    and policy (5.7.x) are the address's: bounced. Message size (5.3.4), protocol
    (5.5.x) and content (5.6.x) are our message's: failed, never a bounce.
    Without one, 500-504 are command errors, ours (a server refusing an address's
    syntax says 5.1.x), and 552 (storage exceeded) is to be treated as temporary,
    as is 5.2.2 (mailbox full).
    """
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.DEFERRED
    found = _ENHANCED.match(detail)
    if found and found.group(1) == str(code)[0]:
        subject, status = int(found.group(2)), int(found.group(3))
        if (subject, status) == (2, 2):
            return Outcome.DEFERRED
        if subject in (5, 6) or (subject, status) == (3, 4):
            return Outcome.FAILED
        if subject in (1, 2, 7):
            return Outcome.BOUNCED
    if code == 552:
        return Outcome.DEFERRED
    if code in _COMMAND_ERRORS:
        return Outcome.FAILED
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
