"""The outbox transport: one ``.eml`` file per message, for the embedded default and previews."""

from __future__ import annotations

import os
import re
from pathlib import Path

from digest.transports.base import Envelope, Outcome, SendResult, TransportBase

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


class OutboxTransport(TransportBase):
    """Writes ``<outbox>/<label>/<recipient>.eml``; a second message to the same recipient
    under the same label gets ``-2``, ``-3``... so nothing is overwritten."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, envelope: Envelope, message: bytes) -> SendResult:
        folder = self.directory / _UNSAFE.sub("_", envelope.label)
        folder.mkdir(parents=True, exist_ok=True)
        stem = _UNSAFE.sub("_", envelope.recipient)[:200] or "recipient"
        path = folder / f"{stem}.eml"
        counter = 1
        while True:
            try:
                # O_EXCL: two workers never write the same file.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                counter += 1
                path = folder / f"{stem}-{counter}.eml"
        with os.fdopen(fd, "wb") as handle:
            handle.write(message)
        return SendResult(Outcome.SENT, 250, str(path))
