"""What every simulator's state shares: seeded ids and the state file (JSON written atomically,
read back with a clear error)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar


def save_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_json(path: Path, apply: Any) -> None:
    """Read ``path`` and hand the document to ``apply``; ``ValueError`` naming the file when it
    cannot be read or does not fit."""
    try:
        apply(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"cannot read the simulator state file {path}: {err}") from err


class SeededState(ABC):
    """What every simulator's account state shares: ids from ``uuid5(salt, counter)`` —
    reproducible when the salt is seeded, never handed out twice since the counter survives
    :meth:`clear` — and a state file tagged with its ``state_format`` and ``state_version``."""

    state_format: ClassVar[str]
    state_version: ClassVar[int]

    def __init__(self, salt: uuid.UUID, wall_clock: Callable[[], float]) -> None:
        self.salt = salt
        self._wall_clock = wall_clock
        self.id_counter = 0
        self.clear()

    @abstractmethod
    def clear(self) -> None:
        """Forget everything but the salt and the id counter."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The state as a document: :meth:`header` and the account's data."""

    @abstractmethod
    def load_json(self, data: dict[str, Any]) -> None:
        """Replace the state with a document's (start with :meth:`read_header`)."""

    def _next_uuid(self, kind: str) -> uuid.UUID:
        self.id_counter += 1
        return uuid.uuid5(self.salt, f"{kind}:{self.id_counter}")

    def header(self) -> dict[str, Any]:
        return {
            "format": self.state_format,
            "version": self.state_version,
            "salt": str(self.salt),
            "id_counter": self.id_counter,
        }

    def read_header(self, data: dict[str, Any]) -> None:
        """Check a document's format and version, forget the state, take its salt and counter."""
        if data.get("format") != self.state_format or data.get("version") != self.state_version:
            raise ValueError(f"not a {self.state_format} version {self.state_version} document")
        self.clear()
        self.salt = uuid.UUID(data["salt"])
        self.id_counter = int(data["id_counter"])

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically."""
        save_json(path, self.to_json())

    def load(self, path: Path) -> None:
        load_json(path, self.load_json)
