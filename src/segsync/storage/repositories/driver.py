"""Bulk SQL through the database driver: one statement, many parameter rows, none of the ORM's
per-row work. The run engine writes hundreds of thousands of rows per run this way (the sync
state, the change record). Statements use ``?`` placeholders (and ``$1``, ``$2``, … for the
values every row of a bulk write shares: :func:`execute_many`) and are valid on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


def driver_sql(session: Session, statement: str) -> str:
    """``statement`` with ``?`` placeholders in the driver's own parameter style."""
    if session.get_bind().dialect.paramstyle == "qmark":
        return statement
    return statement.replace("?", "%s")


_VALUES = re.compile(r"\bVALUES\s*(\([^()]*\))")
MAX_PARAMETERS = 999
"""Bound parameters per multi-row statement: the smallest limit of the databases we support
(SQLite before 3.32)."""


def execute_many(
    session: Session,
    statement: str,
    rows: list[tuple[Any, ...]],
    *,
    shared: Sequence[Any] = (),
) -> None:
    """Execute ``statement`` once per row of parameters (nothing when there are none).

    ``shared`` holds the values every row has in common (the export, the time of the write),
    written in the statement as ``$1``, ``$2``, … where each row's own values are ``?``; a row
    holds only its own. On SQLite a multi-row statement binds each shared value once, not once
    per row: binding runs with the GIL held, and the run engine's writes bound 29 values per
    item, 13 of them the same in every row (a first run of 100k contacts: 7 % less engine
    time, docs/design.md "The engine against its floor", its nineteenth round).

    On SQLite an ``INSERT … VALUES (…)`` goes as multi-row statements — ``VALUES (…), (…), …``,
    as many rows as fit in :data:`MAX_PARAMETERS` — instead of one execution per row: each
    execution lets go of the GIL and takes it back, so while the event loop is busy a row-by-row
    write waits for the GIL at every row (py-spy showed the run's database thread spending most
    of its time there). A statement must not name the same conflict key twice where it updates
    on conflict; the callers pass distinct rows.

    The statements come in a few sizes only (:func:`chunk_sizes`): the driver keeps each
    distinct statement it ran prepared (Python's SQLite module the last 128 per connection, one
    of 142 rows some 200 KB), and a remainder of every size made a run keep up to 128 of them
    (a 100k first run's peak RSS: 2 to 3 MB more).

    On PostgreSQL every statement goes row by row through the driver's ``executemany``, which
    psycopg pipelines (no round trip per row) with one short statement it parses once: a
    multi-row statement's text is parsed again by psycopg on every execution (it caches only
    statements of at most 50 parameters), which took a quarter of a 100k first run's database
    thread (the first run at 1,000 r/s with PostgreSQL metadata, in turns: 14.6 s → 11.5 s).
    There, and for a statement that is not an ``INSERT … VALUES``, the shared values are put
    into each row.
    """
    if not rows:
        return
    connection = session.connection()
    found = _VALUES.search(statement)
    marks = 0 if found is None else found.group(1).count("?")
    per_statement = 0 if found is None else (MAX_PARAMETERS - len(shared)) // max(marks, 1)
    if per_statement < 2 or connection.dialect.name == "postgresql":
        text, order = _one_row(statement, len(shared))
        if shared:
            pick = itemgetter(*order) if len(order) > 1 else lambda full: (full[order[0]],)
            extra = tuple(shared)
            rows = [pick(row + extra) for row in rows]
        connection.exec_driver_sql(driver_sql(session, text), rows)
        return
    start = 0
    for size in chunk_sizes(len(rows), per_statement):
        chunk = rows[start : start + size]
        start += size
        text = _multi_row(statement, len(shared), len(chunk))
        connection.exec_driver_sql(text, (*shared, *chain.from_iterable(chunk)))


_SHARED = re.compile(r"\$(\d+)")
_MARK = re.compile(r"\$(\d+)|\?")


def _checked(statement: str, shared: int) -> None:
    named = {int(n) for n in _SHARED.findall(statement)}
    if named != set(range(1, shared + 1)):
        raise ValueError(
            f"the statement names the shared values {sorted(named)}, "
            f"but {shared} were given: {statement[:80]}"
        )


@functools.lru_cache(maxsize=256)
def _one_row(statement: str, shared: int) -> tuple[str, tuple[int, ...]]:
    """``statement`` with ``?`` for every value, and where each value is taken from in a row
    followed by the shared values (the row's own in order; ``$k`` is the shared ``k``)."""
    _checked(statement, shared)
    row_width = statement.count("?")
    order: list[int] = []
    own = iter(range(row_width))

    def mark(match: re.Match[str]) -> str:
        name = match.group(1)
        order.append(next(own) if name is None else row_width + int(name) - 1)
        return "?"

    return _MARK.sub(mark, statement), tuple(order)


@functools.lru_cache(maxsize=256)
def _multi_row(statement: str, shared: int, size: int) -> str:
    """The SQLite statement writing ``size`` rows: ``statement``'s ``VALUES`` row once per
    row, each shared value ``?k`` (bound once, first) and every row's own values numbered after
    them. Kept for the next write (a few sizes only)."""
    _checked(statement, shared)
    found = _VALUES.search(statement)
    assert found is not None  # execute_many writes only an INSERT … VALUES this way
    begin, end = found.span(1)
    row_sql = statement[begin:end]
    number = shared

    def mark(match: re.Match[str]) -> str:
        nonlocal number
        if match.group(1) is not None:
            return f"?{match.group(1)}"
        number += 1
        return f"?{number}"

    rows = ", ".join(_MARK.sub(mark, row_sql) for _ in range(size))
    return _SHARED.sub(r"?\1", statement[:begin]) + rows + _SHARED.sub(r"?\1", statement[end:])


def chunk_sizes(rows: int, most: int) -> Iterator[int]:
    """Sizes of the statements that write ``rows`` rows, at most ``most`` each: as many of
    ``most`` as fit, then the rest in powers of two, the largest first (77 → 64, 8, 4, 1), so
    that every write uses one of a handful of statement sizes."""
    full, rest = divmod(rows, most)
    yield from repeat(most, full)
    for bit in reversed(range(rest.bit_length())):
        if rest >> bit & 1:
            yield 1 << bit


MAX_IN_LIST = 512
"""Values per ``IN (…)`` list (:func:`in_lists`)."""


def in_lists(
    values: Sequence[Any], most: int = MAX_IN_LIST
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``values`` for ``IN (…)`` lists of at most ``most`` each: per list, its placeholders
    (``?, ?, …``, for driver SQL) and its values (for driver SQL or an ORM ``in_``). A list's
    length is rounded up to a power of two (or ``most``), its last value repeated to fill it —
    ``IN`` takes a value once however often it is named — so that queries asked with any number
    of values use a handful of statement texts: the driver keeps every distinct statement it ran
    prepared, and a run's per-commit lookups with an IN list of every length kept up to 128 of
    them (a 100k first run's peak RSS: 5 MB more)."""
    for start in range(0, len(values), most):
        chunk = tuple(values[start : start + most])
        size = min(most, 1 << (len(chunk) - 1).bit_length())
        yield ", ".join("?" * size), chunk + (chunk[-1],) * (size - len(chunk))


def execute(
    session: Session, statement: str, *params: Any, stream: bool = False
) -> CursorResult[Any]:
    """Execute ``statement`` (``?`` placeholders) once with ``params``, in the session's
    transaction, through the driver; ``stream``: on PostgreSQL through a server-side cursor,
    so that rows come as they are fetched instead of all at once (SQLite's driver always
    streams)."""
    connection = session.connection()
    if stream:
        connection = connection.execution_options(stream_results=True)
    return connection.exec_driver_sql(driver_sql(session, statement), params)


def select_rows(
    session: Session, statement: str, *params: Any, stream: bool = False
) -> Iterator[tuple[Any, ...]]:
    """The rows of a query as the driver's own tuples, fetched 10,000 at a time (textual SQL
    has no result types to process, so SQLAlchemy's row objects would only cost time: a run
    reads its whole sync state this way); ``stream``: as for :func:`execute`. A server-side
    cursor's rows come through SQLAlchemy's result (as row objects), which fetched the first of
    them already to learn the columns: read from the driver's cursor, those would be lost."""
    server_side = stream and session.get_bind().dialect.supports_server_side_cursors
    result = execute(session, statement, *params, stream=server_side)
    try:
        if server_side:
            for part in result.partitions(10_000):
                yield from part
            return
        cursor = result.cursor
        while chunk := cursor.fetchmany(10_000):
            yield from chunk
    finally:
        result.close()


def bind_value(session: Session, column: ColumnElement[Any], value: Any) -> Any:
    """``value`` as the driver stores it in ``column`` (what the ORM would bind). A timestamp
    for SQLite becomes its text here, once, as the driver's own adapter would write it for every
    row of a bulk write (``datetime.isoformat(" ")``)."""
    dialect = session.get_bind().dialect
    processor = column.type.bind_processor(dialect)
    bound = processor(value) if processor is not None else value
    if dialect.name == "sqlite" and isinstance(bound, datetime):
        return bound.isoformat(" ")
    return bound
