"""The outbox transport: one ``.eml`` file per message, for the embedded default and previews."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from email.utils import getaddresses
from pathlib import Path

from digest.audience import lookup_form
from digest.transports.base import Envelope, Outcome, SendResult, TransportBase

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")
#: Bytes of a file read to find its header block: headers are small, bodies are not read.
_HEADER_BYTES = 64 * 1024
_COPY_SUFFIX = re.compile(r"-[0-9]+$")


def _header_recipients(path: Path) -> set[str]:
    """The addresses in a file's To and Cc headers, in the stored form; the body is not read."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0].decode("utf-8", "replace")
    values: list[list[str]] = []
    wanted = False
    for line in block.splitlines():
        if line[:1] in (" ", "\t"):
            if wanted:
                values[-1].append(line.strip())  # a folded continuation of To or Cc
            continue
        name, colon, value = line.partition(":")
        wanted = bool(colon) and name.strip().lower() in ("to", "cc")
        if wanted:
            values.append([value.strip()])
    found = set()
    for _, addr in getaddresses([" ".join(parts) for parts in values]):
        normal = lookup_form(addr)
        if normal:
            found.add(normal)
    return found


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

    def recipient_files(self, address: str) -> list[Path]:
        """The ``.eml`` files addressed to ``address`` (any way it is written): those named
        after it and those whose To or Cc names it. Only header blocks are read."""
        wanted = lookup_form(address)
        if wanted is None or not self.directory.is_dir():
            return []
        stem = _UNSAFE.sub("_", wanted)[:200]
        return sorted(
            path
            for path in self._files()
            if _COPY_SUFFIX.sub("", path.stem) == stem or wanted in _header_recipients(path)
        )

    def _files(self) -> Iterator[Path]:
        # Not following links: a planted link must not send the search, or a deletion, out of
        # the outbox.
        for folder, _, names in os.walk(self.directory):
            for name in names:
                path = Path(folder) / name
                if name.endswith(".eml") and not path.is_symlink() and path.is_file():
                    yield path
