"""Source files: format detection, fingerprints, and streaming Arrow readers."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from segsync.errors import InputError

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)``; for files both count bytes."""

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_DELIMITERS = (",", ";", "\t", "|")
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class SourceFile:
    """A file to import: its format and whether it is gzip-compressed."""

    path: Path
    format: str
    gzipped: bool

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class Fingerprint:
    """What identifies one version of a file (for change detection)."""

    size: int
    mtime: datetime
    sha256: str


def open_source(path: Path) -> SourceFile:
    """Check ``path`` is a readable, non-empty file of a known format."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    fmt = FORMATS.get(ext)
    if fmt is None or (gzipped and fmt == "parquet"):
        raise InputError(
            f"{path.name}: unknown file type {ext or '(no extension)'}{'.gz' if gzipped else ''}; "
            "use .csv, .tsv, .parquet, .jsonl or .ndjson (text formats may end in .gz)"
        )
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            first = handle.read(1)
    except OSError as err:
        raise InputError(f"{path}: cannot read the file ({err.strerror})") from None
    if not first:
        raise InputError(f"{path.name}: the file is empty (no rows)")
    return SourceFile(path=path, format=fmt, gzipped=gzipped)


def fingerprint(path: Path) -> Fingerprint:
    """Size, modification time (UTC) and SHA-256 of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    stat = path.stat()
    return Fingerprint(
        size=stat.st_size,
        mtime=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
        sha256=digest.hexdigest(),
    )


def sniff_delimiter(source: SourceFile) -> str:
    """The delimiter of a CSV: the candidate seen most often in its header line."""
    if source.format == "tsv":
        return "\t"
    opener: Any = gzip.open if source.gzipped else open
    with opener(source.path, "rb") as handle:
        head = handle.read(64 * 1024)
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _CountingReader(io.RawIOBase):
    """A read-only file that reports how many bytes were read."""

    def __init__(self, handle: io.BufferedReader, total: int, progress: Progress | None) -> None:
        self._handle = handle
        self._total = total
        self._progress = progress
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._handle.readinto(buffer)
        self._done += count
        if self._progress is not None:
            self._progress(self._done, self._total)
        return count

    def close(self) -> None:
        self._handle.close()
        super().close()


def arrow_batches(source: SourceFile, progress: Progress | None) -> Iterator[pa.RecordBatch]:
    """Stream ``source`` as Arrow record batches (for engines without native file readers)."""
    total = source.size
    if source.format == "parquet":
        parquet = pq.ParquetFile(source.path)
        rows = max(parquet.metadata.num_rows, 1)
        done = 0
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            done += batch.num_rows
            if progress is not None:
                progress(min(total, done * total // rows), total)
            yield batch
        return
    raw = _CountingReader(source.path.open("rb"), total, progress)
    with pa.PythonFile(raw, mode="r") as stream:
        data: Any = pa.CompressedInputStream(stream, "gzip") if source.gzipped else stream
        if source.format == "jsonl":
            reader = pa_json.open_json(data)
        else:
            reader = pa_csv.open_csv(
                data,
                read_options=pa_csv.ReadOptions(block_size=1 << 22),
                parse_options=pa_csv.ParseOptions(delimiter=sniff_delimiter(source)),
            )
        yield from reader


def line_label(fmt: str) -> Callable[[int], str]:
    """How to name the ``index``-th data row (0-based) of a file of format ``fmt``."""
    if fmt in {"csv", "tsv"}:
        return lambda index: f"line {index + 2}"  # line 1 is the header
    if fmt == "jsonl":
        return lambda index: f"line {index + 1}"
    return lambda index: f"row {index + 1}"
