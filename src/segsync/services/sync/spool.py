"""Batches a first run made beyond those it keeps in memory, kept on disk until sent
(:mod:`.stream`): reading then never waits for the destination, and lets go of the profile
engine as soon as it is done, however slow the destination's rate limit.

The batches are written into one temporary file in the data dir, unlinked from the start (so
nothing is left behind when the run ends or the process dies), by the thread that reads, and
read back, in the order written, by the event loop. A batch is some 15 KB on disk: a million
members sent at Autopilot's 5 requests a second put about 150 MB there at most.

Each batch is written with :mod:`marshal` as a list of plain tuples, which takes some 40 % less
time than pickle to write and read back a 100-item batch (65 + 85 µs against 149 + 111 µs); marshal
refuses any value that is not exactly one of its built-in types (a date, a Decimal, a subclass
of text), and a batch holding one is pickled instead, so every value comes back as it went.
Each record starts with its length and which of the two wrote it.
"""

from __future__ import annotations

import marshal
import pickle
import tempfile
import threading
from pathlib import Path
from typing import IO

from segsync.domain.plan import UpsertItem

_LENGTH = 4  # bytes of each record's length
_MARSHAL, _PICKLE = b"m", b"p"  # what wrote the record (its byte after the length)


class Spool:
    """Batches written by one thread and read back by another, oldest first. The file is made
    with the first batch written; :meth:`close` deletes it."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._written = 0  # where the next batch is written
        self._read = 0  # where the oldest batch not read yet begins
        self.held = 0
        """Batches written and not read back yet."""

    def put(self, batch: list[UpsertItem] | bytes) -> None:
        """A batch, or the record :func:`encode` made of one (a reading process's:
        :mod:`.apart`)."""
        data = batch if isinstance(batch, bytes) else encode(batch)
        with self._lock:
            if self._file is None:
                # closed by close(), the run ends with it
                self._file = tempfile.TemporaryFile(prefix="segsync-batches-", dir=self._directory)  # noqa: SIM115
            self._file.seek(self._written)
            self._file.write(len(data).to_bytes(_LENGTH, "big") + data)
            self._written = self._file.tell()
            self.held += 1

    def get(self) -> list[UpsertItem]:
        """The oldest batch not read back yet (``LookupError`` when there is none)."""
        with self._lock:
            if self._file is None or self._read == self._written:
                raise LookupError("no batch is spooled")
            self._file.seek(self._read)
            size = int.from_bytes(self._file.read(_LENGTH), "big")
            data = self._file.read(size)
            self._read = self._file.tell()
            self.held -= 1
        return decode(data)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._written = self._read = self.held = 0


def encode(batch: list[UpsertItem]) -> bytes:
    """A batch as one record: marshal's, or pickle's where a value is not exactly a built-in
    type (see the module), after a byte that says which."""
    try:
        return _MARSHAL + marshal.dumps([tuple(item) for item in batch])
    except ValueError:  # a value marshal does not write exactly (see the module)
        return _PICKLE + pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes | memoryview) -> list[UpsertItem]:
    """The batch :func:`encode` made ``data`` of. Only ever records this run made (its own
    spool file, unlinked, or its own reading process's pipe): no one else can write them."""
    if data[:1] == _MARSHAL:
        return list(map(UpsertItem._make, marshal.loads(memoryview(data)[1:])))  # noqa: S302
    batch: list[UpsertItem] = pickle.loads(memoryview(data)[1:])  # noqa: S301
    return batch
