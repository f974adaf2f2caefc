"""Batches a first run made beyond those it keeps in memory, kept on disk until sent
(:mod:`.stream`): reading then never waits for the destination, and lets go of the profile
engine as soon as it is done, however slow the destination's rate limit.

The batches are pickled into one temporary file in the data dir, unlinked from the start (so
nothing is left behind when the run ends or the process dies), written by the thread that reads
and read back, in the order written, by the event loop. A batch is some 15 KB on disk: a million
members sent at Autopilot's 5 requests a second put about 150 MB there at most.
"""

from __future__ import annotations

import pickle
import tempfile
import threading
from pathlib import Path
from typing import IO

from segsync.domain.plan import UpsertItem

_LENGTH = 4  # bytes of each record's length


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

    def put(self, batch: list[UpsertItem]) -> None:
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
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
        batch: list[UpsertItem] = pickle.loads(data)  # noqa: S301 (our own file, just written)
        return batch

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._written = self._read = self.held = 0
