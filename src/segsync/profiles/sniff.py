"""What a file to import really holds, checked before any engine reads it (docs/profiles.md,
"Importing files").

* :func:`check_content` — the first bytes match the name: gzip for ``.gz``, ``PAR1`` for
  Parquet, UTF-8 text for CSV, TSV and JSON lines (a JSON-lines file starts with ``{``);
* :func:`check_csv` — the whole CSV or TSV reads cleanly: no NUL byte, quotes closed and
  followed by a delimiter, no column name twice in the header, no field over
  :data:`MAX_FIELD_CHARS` characters.

Each refusal is an ``InputError`` naming the file, the line and what to do; values from the
file are echoed cut to 200 characters. Nothing has been stored when it is raised.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO, cast

from segsync.domain.untrusted import clip
from segsync.errors import InputError
from segsync.profiles.readers import SourceFile, sniff_delimiter

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_FIELD_CHARS = 1 << 20
"""The longest field a CSV may hold (1,048,576 characters)."""
_HEAD_BYTES = 64 * 1024
_READ_ERRORS = (OSError, EOFError, zlib.error)


def _kind_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip-compressed data"
    if head.startswith(PARQUET_MAGIC):
        return "a Parquet file"
    if head.startswith((b"PK\x03\x04", b"%PDF", b"\x89PNG", b"\xff\xd8\xff")):
        return "a binary document (zip, PDF or image)"
    return None


@contextmanager
def _binary(source: SourceFile) -> Iterator[BinaryIO]:
    """The file's bytes, decompressed when it is gzip."""
    if source.gzipped:
        with gzip.open(source.path, "rb") as unpacked:
            yield cast(BinaryIO, unpacked)
    else:
        with source.path.open("rb") as plain:
            yield plain


def check_content(source: SourceFile) -> None:
    """Refuse a file whose bytes do not match its name (see the module docs)."""
    name = source.label
    with source.path.open("rb") as handle:
        raw = handle.read(_HEAD_BYTES)
    if source.gzipped and not raw.startswith(GZIP_MAGIC):
        found = _kind_of(raw) or "not gzip-compressed"
        raise InputError(
            f"{name}: the name ends in .gz but the file is {found}; rename it without .gz "
            "or compress it with gzip"
        )
    if source.format == "parquet":
        if not raw.startswith(PARQUET_MAGIC):
            found = _kind_of(raw) or "not a Parquet file"
            raise InputError(f"{name}: the name ends in .parquet but the file is {found}")
        return
    binary = _kind_of(raw)
    if not source.gzipped and binary is not None:
        raise InputError(
            f"{name}: the file is {binary}, not {source.format.upper()} text; "
            "give it the matching extension (.gz, .parquet)"
        )
    try:
        with _binary(source) as handle:
            head = handle.read(_HEAD_BYTES)
    except _READ_ERRORS as err:
        raise InputError(f"{name}: the gzip data cannot be read ({clip(err)})") from None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as err:
        line = head[: err.start].count(b"\n") + 1
        raise InputError(
            f"{name}: line {line} is not UTF-8 text (byte {err.start + 1}); save the file as UTF-8"
        ) from None
    if source.format == "jsonl":
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if first and first != b"{":
            raise InputError(
                f"{name}: a JSON-lines file holds one JSON object per line, starting with '{{'; "
                f"this one starts with {clip(first.decode('utf-8', 'replace'))!r}"
            )


def _nul_line(source: SourceFile) -> int | None:
    """The line of the first NUL byte, or None (a fast byte scan)."""
    lines = 1
    with _binary(source) as handle:
        while chunk := handle.read(1 << 20):
            at = chunk.find(b"\x00")
            if at >= 0:
                return lines + chunk[:at].count(b"\n")
            lines += chunk.count(b"\n")
    return None


def check_csv(source: SourceFile) -> None:
    """Refuse a CSV or TSV that does not read cleanly (see the module docs)."""
    name = source.label
    try:
        nul = _nul_line(source)
        if nul is not None:
            raise InputError(
                f"{name}: line {nul} holds a NUL byte (\\0), which text never has; remove it "
                "(or export the file again as plain CSV)"
            )
        with _binary(source) as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
            _scan(name, text, sniff_delimiter(source))
    except _READ_ERRORS as err:
        raise InputError(f"{name}: the file cannot be read ({clip(err)})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{name}: the file is not UTF-8 text ({clip(err)})") from None


def _scan(name: str, text: IO[str], delimiter: str) -> None:
    # The limit is process-wide; it is only ever set to this one value (no restore, so two
    # imports at once never see each other's setting).
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is not None:
            _check_header(name, header)
        for _ in reader:
            pass
    except csv.Error as err:
        reason = str(err)
        if "field larger" in reason:
            reason = f"a field is longer than {MAX_FIELD_CHARS:,} characters"
        raise InputError(
            f"{name}: line {reader.line_num} cannot be read as CSV: {clip(reason)}; check "
            'that quotes are closed and a quoted field is followed by the delimiter ("" '
            "inside quotes stands for one quote)"
        ) from None


def _check_header(name: str, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        folded = column.strip().casefold()
        if folded in seen:
            raise InputError(
                f"{name}: the header names column {clip(column.strip())!r} twice (columns "
                f"{seen[folded]} and {position}; names are compared ignoring case); rename one"
            )
        seen[folded] = position
