"""Every segment's member rows in one DuckDB query, sorted by email key: what the walk of
settled contacts (:mod:`.settled`) and a first run sent while it is read (:mod:`.stream`) both
read, each member row as :func:`.read.scan_members` reads it after its email key and segment
key. DuckDB sorts within :data:`SORT_MEMORY` (:func:`sort_memory`) and spills the rest to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from segsync.profiles.sql import quote_identifier, quote_literal
from segsync.services.sync.read import MemberReading, SegmentSource

WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What Python's ``str.strip()`` takes off (a test holds it so): DuckDB's ``trim`` is told."""
SORT_MEMORY = "80MB"
"""What DuckDB may hold while it sorts the members by email (it spills the rest to a temporary
file beside the profile file): a million members' rows are some 300 MB. Where it runs out even
so (its error says so), the run reads and plans everything instead. Measured on a million
members (docs/design.md, tenth round): one thread ran out at 48 MB, two at 80 MB."""
SORT_THREADS = 1
"""Threads that sort: each holds its own part of the sort, so two needed 100 MB and peaked the
run at 326-330 MB where one keeps to 80 MB and 274 MB, for 1.3 s more of a million."""
FIRST_CHUNK, CHUNK = 1_000, 10_000
"""Rows :func:`sorted_rows` fetches from DuckDB at a time: few first, so the first batch
leaves soon, then more."""
ASCII_ONLY = quote_literal(r"^[\x00-\x7f]*$")
"""A regular expression (RE2, as DuckDB's) of text that is all ASCII, as a SQL literal."""
KEY, SEGMENT = "__segsync_email_key", "__segsync_segment"
"""The names of the two columns before each member row."""


def email_key(column: str) -> str:
    """SQL of the profile engine (DuckDB) for the email the members are ordered and chosen by:
    the column's text trimmed and lower-cased, as :func:`normalise_email` begins.

    DuckDB's ``trim`` with characters to take off costs some 2 µs a row (0.19 s of 100k
    emails, a third of the walk's query), so it is asked only of the text that begins or ends
    with one of them (a regular expression tells, at a fifth of that); the rest is only
    lower-cased, which is the same."""
    name = quote_identifier(column)
    edge = "[" + WHITESPACE + "]"
    padded = f"regexp_matches({name}, {quote_literal(f'^{edge}|{edge}$')})"
    trimmed = f"lower(trim({name}, {quote_literal(WHITESPACE)}))"
    return f"CASE WHEN {padded} THEN {trimmed} ELSE lower({name}) END"


def members_by_email(
    reading: MemberReading,
    segments: Sequence[SegmentSource],
    email: str,
    *,
    hashed: bool,
    extra: Callable[[str, str], str] | None = None,
) -> str | None:
    """Every segment's member rows — their email key (:data:`KEY`), their segment key
    (:data:`SEGMENT`), ``extra(alias, key)`` when given (one more column's SQL over the member
    row ``alias`` and the email key's SQL ``key``), then the row as :meth:`MemberReading.query`
    gives it (``hashed``: with the payload hashes) — by email key, no email last; None where
    the profile engine cannot give them so."""
    key, parts = email_key(email), []
    for at, source in enumerate(segments):
        rows = reading.query(reading.members(source), hashed=hashed)
        if rows is None:
            return None
        alias = f"m{at}"
        columns = [f"{key} AS {KEY}", f"{quote_literal(source.key)} AS {SEGMENT}"]
        if extra is not None:
            columns.append(extra(alias, key))
        parts.append(f"SELECT {', '.join(columns)}, {alias}.* FROM ({rows}) AS {alias}")  # noqa: S608
    return " UNION ALL ".join(parts) + f" ORDER BY {KEY} NULLS LAST"


def sorted_rows(cursor: Any, sql: str) -> tuple[tuple[str, ...], Iterator[list[tuple[Any, ...]]]]:
    """Run ``sql`` (:func:`members_by_email`'s) on ``cursor`` — DuckDB sorts here, before the
    first row — and give the names of its columns and its rows in chunks of at most 10,000.
    The first chunk is of 1,000: a first run sends its first batch once those are made into
    Python rows, not 10,000 (some 15 ms sooner)."""
    cursor.execute(sql)
    names = tuple(d[0] for d in cursor.description)
    return names, _chunks(cursor)


def _chunks(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    size = FIRST_CHUNK
    while rows := cursor.fetchmany(size):
        yield rows
        size = CHUNK


@contextmanager
def sort_memory(connection: Any) -> Iterator[Any]:
    """A cursor of the profile engine's DuckDB connection whose sort keeps within
    :data:`SORT_MEMORY` and :data:`SORT_THREADS` (the rest spills to disk), the engine's own
    settings restored after."""
    settings = ("memory_limit", "preserve_insertion_order", "threads")
    asked = ", ".join(f"current_setting('{name}')" for name in settings)
    before = connection.execute(f"SELECT {asked}").fetchone()
    connection.execute(f"SET memory_limit = '{SORT_MEMORY}'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"SET threads = {min(int(before[2]), SORT_THREADS)}")
    cursor = connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
        for name, value in zip(settings, before, strict=True):
            connection.execute(f"RESET {name}")  # exact when it was the default (the usual)
            if connection.execute(f"SELECT current_setting('{name}')").fetchone() != (value,):
                connection.execute(f"SET {name} = '{value}'")
