"""A real SMTP server that misbehaves on cue: it runs on asyncio in a thread of the test
process, speaks enough ESMTP for Digest's transport (EHLO with PIPELINING, MAIL, RCPT, DATA,
RSET, NOOP, QUIT), and can drop a connection in the middle of DATA, drop it after the final
dot without answering, or hang after the dot. It records every message it took (the final
dot received) and whether it answered, so a test can tell a duplicate Digest caused from one
the relay invited.

Hand-written rather than aiosmtpd, whose server reads DATA to its end before a handler sees
it: a drop in the middle of DATA cannot be made there.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field


class Fault(enum.StrEnum):
    #: Read a little of the message, then reset the connection: nothing was taken.
    MID_DATA = "mid-data"
    #: Read the whole message, then reset the connection without a reply: taken, unanswered.
    AFTER_DOT = "after-dot"
    #: Read the whole message, then say nothing until the client gives up: taken, unanswered.
    HANG = "hang"


@dataclass(frozen=True)
class Taken:
    """A message the relay received whole."""

    recipients: tuple[str, ...]
    data: bytes
    answered: bool
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Plan:
    """What one connection does: answer ``quota`` messages, then ``fault`` the next."""

    quota: int
    fault: Fault | None


class FlakyRelay:
    """Steady until ``flaky()``: then each new connection answers a few messages (the next
    number of ``quotas``, in turn) and faults the next one (the next of ``faults``, in
    turn), until ``recover()``."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = "127.0.0.1"
        self.taken: list[Taken] = []
        #: (recipients, fault) of every message the relay faulted.
        self.faults: list[tuple[tuple[str, ...], Fault]] = []
        self.connections = 0
        self._quotas: Iterator[int] | None = None
        self._kinds: Iterator[Fault] | None = None
        self._left: int | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    # -- the test's controls ----------------------------------------------------------------
    def flaky(
        self, faults: tuple[Fault, ...], quotas: tuple[int, ...] = (0,), times: int | None = None
    ) -> None:
        """Fault connections from now on; after ``times`` faulty connections (None: not until
        ``recover()``) the relay recovers by itself."""
        with self._lock:
            self._quotas = itertools.cycle(quotas)
            self._kinds = itertools.cycle(faults)
            self._left = times

    def recover(self) -> None:
        with self._lock:
            self._quotas = self._kinds = None

    def answered(self) -> Counter[str]:
        """Copies per recipient the relay took and answered 250."""
        return Counter(r for t in self.taken if t.answered for r in t.recipients)

    def unanswered(self) -> Counter[str]:
        """Copies per recipient the relay took without answering."""
        return Counter(r for t in self.taken if not t.answered for r in t.recipients)

    # -- running ----------------------------------------------------------------------------
    def __enter__(self) -> FlakyRelay:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        # Messages arrive whole before the dot is looked for: the buffer must hold one.
        self._server = await asyncio.start_server(
            self._session, self.host, self.port, limit=64 * 1024 * 1024
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _plan(self) -> _Plan:
        with self._lock:
            self.connections += 1
            if self._quotas is None or self._kinds is None or self._left == 0:
                return _Plan(0, None)
            if self._left is not None:
                self._left -= 1
            return _Plan(next(self._quotas), next(self._kinds))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        plan = self._plan()
        recipients: list[str] = []
        writer.write(b"220 flaky.test ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-flaky.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb in (b"HELO", b"NOOP"):
                    writer.write(b"250 OK\r\n")
                elif verb in (b"MAIL", b"RSET"):
                    recipients = []
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    address = line.partition(b"<")[2].partition(b">")[0]
                    recipients.append(address.decode("utf-8", "replace"))
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                    await writer.drain()
                    fault = plan.fault if plan.quota <= 0 else None
                    if not await self._data(reader, writer, tuple(recipients), fault):
                        return
                    plan.quota -= 1
                    recipients = []
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"500 not understood\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return

    async def _data(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        recipients: tuple[str, ...],
        fault: Fault | None,
    ) -> bool:
        """Take one message as ``fault`` says; whether the session goes on."""
        if fault == Fault.MID_DATA:
            await reader.read(512)
            self.faults.append((recipients, fault))
            writer.transport.abort()
            return False
        data = await reader.readuntil(b"\r\n.\r\n")
        self.taken.append(Taken(recipients, data, answered=fault is None))
        if fault is None:
            writer.write(b"250 OK queued\r\n")
            return True
        self.faults.append((recipients, fault))
        if fault == Fault.HANG:
            while await reader.read(65536):
                pass
        writer.transport.abort()
        return False
