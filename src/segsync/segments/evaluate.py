"""Evaluate compiled segments on the profile engine: count, preview, member stream, suggestions.

``members`` below is what :func:`segsync.segments.compiler.compile_segment` returns: a
one-column Ibis table of distinct profile keys. The profile table's key must be unique (the
importer guarantees it), so joining members back to it yields one row per member.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from segsync.domain.catalog import AttrType
from segsync.domain.names import did_you_mean
from segsync.errors import InputError
from segsync.profiles import spark
from segsync.profiles.sql import quote_identifier
from segsync.segments.compiler import profile_rows
from segsync.segments.rows import RowBatch

if TYPE_CHECKING:  # pyarrow is imported where it is used: a run on DuckDB never needs it
    import pyarrow as pa

PREVIEW_LIMIT = 100
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p25", 0.25),
    ("p50", 0.5),
    ("p75", 0.75),
    ("p90", 0.9),
)


def count(members: ir.Table) -> int:
    """How many members the segment has, read as an Arrow scalar (no DataFrame)."""
    return int(count_query(members).to_pyarrow().as_py())


def count_query(members: ir.Table) -> ir.IntegerScalar:
    """What :func:`count` runs: ``count(*)`` of the filtered profile rows for compiled members
    (one profile row per member), else of ``members``."""
    rows = profile_rows(members)
    return (members if rows is None else rows).count()


def _check_attributes(profile: ir.Table, attributes: Sequence[str]) -> None:
    columns = list(profile.columns)
    for name in attributes:
        if name not in columns:
            raise InputError(f"unknown profile attribute '{name}'{did_you_mean(name, columns)}")


def members_with_attributes(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    attributes: Sequence[str] | None = None,
    *,
    ordered: bool = True,
) -> ir.Table:
    """Members with their profile attributes: ``key`` then ``attributes`` (default: every
    profile attribute), ordered by ``key`` unless not ``ordered``. Compiled members are read
    with their own filter (one scan of the profile table); other member tables are joined back
    to it.

    Unordered, the engine streams the rows as it finds them (DuckDB: in the table's order);
    ordered, it holds every row before the first comes out (on DuckDB about 80 bytes a member
    row of a run's read: 100 MB at 1,000,000 profiles)."""
    chosen = list(profile.columns) if attributes is None else list(attributes)
    _check_attributes(profile, chosen)
    columns = [key, *(name for name in dict.fromkeys(chosen) if name != key)]
    rows = profile_rows(members, profile)
    if rows is None:  # members from elsewhere: join them back
        rows = profile.semi_join(members, key)
    chosen_rows = rows.select(*columns)
    return chosen_rows.order_by(key) if ordered else chosen_rows


def preview(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    limit: int = PREVIEW_LIMIT,
    attributes: Sequence[str] | None = None,
) -> pa.Table:
    """The first ``limit`` members by profile id, with their attributes (default: all)."""
    if limit < 0:
        raise InputError(f"the preview limit must be 0 or more, got {limit}")
    table = members_with_attributes(members, profile, key, attributes).limit(limit)
    result: pa.Table = table.to_pyarrow()
    return result


def stream_members(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    attributes: Sequence[str],
    batch_size: int = 10_000,
    computed: Sequence[tuple[str, str]] = (),
) -> Iterator[pa.RecordBatch]:
    """Every member with ``key`` and ``attributes``, ordered by key, as Arrow record batches of
    at most ``batch_size`` rows. Memory stays flat: the engine streams the result.

    ``computed``: more columns, ``(name, SQL expression over those columns)`` in the engine's
    own dialect, computed by the engine as it reads (the caller knows the engine)."""
    table = _member_table(members, profile, key, attributes, batch_size)
    yield from _arrow_parts(table, batch_size, computed)


def _member_table(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    attributes: Sequence[str],
    batch_size: int,
    ordered: bool = True,
) -> ir.Table:
    """:func:`members_with_attributes`, once the batch size is checked."""
    if batch_size <= 0:
        raise InputError(f"the batch size must be positive, got {batch_size}")
    return members_with_attributes(members, profile, key, attributes, ordered=ordered)


def _arrow_parts(
    table: ir.Table, batch_size: int, computed: Sequence[tuple[str, str]]
) -> Iterator[pa.RecordBatch]:
    """The rows of ``table`` and the ``computed`` columns as Arrow batches of at most
    ``batch_size`` rows."""
    if computed:
        table = table.alias("_members").sql(_with_computed("_members", computed))
    for batch in _batches(table, batch_size):
        # Some engines hand back larger chunks than asked for; split them.
        for offset in range(0, max(batch.num_rows, 1), batch_size):
            part = batch.slice(offset, batch_size)
            if part.num_rows:
                yield part


def plain_types(schema: ibis.Schema) -> bool:
    """Whether DuckDB's driver gives every column of ``schema`` as the same Python values as
    Arrow's ``to_pylist``: text (JSON too), whole numbers, booleans, floats, decimals, dates,
    times, bytes and timestamps without a time zone to the microsecond. Not so for others
    (checked by tests/segments/test_evaluate.py): a time zone needs pytz in the driver,
    nanoseconds come as pandas timestamps from Arrow, HUGEINT as an int from the driver and a
    Decimal from Arrow, UUIDs as ``uuid.UUID`` from the driver and text from Arrow, intervals
    differ too."""
    for dtype in schema.types:
        if dtype.is_timestamp():
            if dtype.timezone is not None or (dtype.scale is not None and dtype.scale > 6):
                return False
        elif dtype.is_decimal():
            if (dtype.precision, dtype.scale) == (38, 0):  # how Ibis reads HUGEINT
                return False
        elif not (
            dtype.is_string()
            or dtype.is_json()
            or dtype.is_integer()
            or dtype.is_boolean()
            or dtype.is_floating()
            or dtype.is_date()
            or dtype.is_time()
            or dtype.is_binary()
        ):
            return False
    return True


def member_rows(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    attributes: Sequence[str],
    batch_size: int = 10_000,
    computed: Sequence[tuple[str, str]] = (),
    *,
    ordered: bool = True,
) -> Iterator[RowBatch]:
    """:func:`stream_members` as :class:`RowBatch` es. On DuckDB, when every column's type
    comes out of its driver as it comes out of Arrow (:func:`plain_types`), the query runs on
    the driver's own cursor and its rows come as tuples, without Arrow: pyarrow and the numpy it
    loads are some 50 MB and 0.1 s of every run process that needs them. Elsewhere the Arrow
    batches are turned into rows.

    ``computed``: as for :func:`stream_members`; ``ordered``: by key (else as the engine finds
    them, streamed: :func:`members_with_attributes`)."""
    table = _member_table(members, profile, key, attributes, batch_size, ordered)
    sql = _driver_sql(table, computed)
    if sql is None:
        for batch in _arrow_parts(table, batch_size, computed):
            yield RowBatch.from_arrow(batch)
        return
    cursor = table._find_backend().con.cursor()
    try:
        cursor.execute(sql)
        names = tuple(d[0] for d in cursor.description)
        while rows := cursor.fetchmany(batch_size):
            yield RowBatch(names, rows)
    finally:
        cursor.close()


def member_query(
    members: ir.Table,
    profile: ir.Table,
    key: str,
    attributes: Sequence[str],
    computed: Sequence[tuple[str, str]] = (),
) -> str | None:
    """The query :func:`member_rows` runs on DuckDB's own cursor for these members, unordered,
    or None where it reads through Arrow (not DuckDB, or not :func:`plain_types`)."""
    return _driver_sql(_member_table(members, profile, key, attributes, 1, False), computed)


def _driver_sql(table: ir.Table, computed: Sequence[tuple[str, str]]) -> str | None:
    """The SQL of ``table`` for DuckDB's own cursor, or None where it must go through Ibis: not
    DuckDB, a column whose type the driver gives otherwise (:func:`plain_types`), or an
    in-memory table among its sources, which exists only on the connection Ibis registers it on
    (and not in the process that runs a kept query)."""
    backend = table._find_backend()
    if backend.name != "duckdb" or not plain_types(table.schema()):
        return None
    if table.op().find(ops.InMemoryTable):
        return None
    sql = str(backend.compile(table))
    return _with_computed(f"({sql}) AS _members", computed) if computed else sql


def _with_computed(source: str, computed: Sequence[tuple[str, str]]) -> str:
    """Every column of ``source`` and the ``computed`` ones. A projection of the ordered rows
    keeps their order in DuckDB, streaming (another ORDER BY here would hold every row before
    the first came out)."""
    extra = ", ".join(f"{expression} AS {quote_identifier(name)}" for name, expression in computed)
    return f"SELECT *, {extra} FROM {source}"  # noqa: S608


def _batches(table: ir.Table, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``table`` as Arrow batches, streamed by the engine (on Spark through
    Parquet files: Ibis's own reader would collect the whole result first)."""
    backend = table._find_backend()
    if backend.name == spark.SCHEME:
        yield from spark.arrow_batches(backend, table, batch_size)
        return
    reader = table.to_pyarrow_batches(chunk_size=batch_size)
    try:
        yield from reader
    finally:
        reader.close()


def member_ids(members: ir.Table, batch_size: int = 100_000) -> Iterator[pa.Array]:
    """The member profile ids as Arrow string arrays (for snapshots), in no particular order."""
    key = members.columns[0]
    ids = members.select(members[key].cast("string").name(key))
    for batch in _batches(ids, batch_size):
        yield batch.column(0)


@dataclass(frozen=True)
class ValueCount:
    value: Any
    count: int


@dataclass(frozen=True)
class Suggestion:
    """What one attribute holds, for quick segments (S6).

    Text and boolean attributes get ``top_values`` (at most 10, most frequent first); number and
    date attributes get ``percentiles`` (``min``, ``p25``, ``p50``, ``p75``, ``p90``, ``max``).
    ``empty_count`` counts the rows ``is_empty`` matches (NULL, or blank text).
    """

    attribute: str
    type: AttrType
    total: int
    empty_count: int
    distinct_count: int
    top_values: list[ValueCount] = field(default_factory=list)
    percentiles: dict[str, Any] = field(default_factory=dict)


def suggest(table: ir.Table, attribute: str, attr_type: AttrType, top: int = 10) -> Suggestion:
    """Summarise ``attribute`` of ``table``: top values or percentiles, and empties."""
    _check_attributes(table, [attribute])
    col = table[attribute]
    empty = col.isnull()
    if attr_type is AttrType.TEXT:
        empty = empty | (col.strip() == "")
    stats = table.aggregate(
        total=table.count(),
        empty=empty.sum(),
        distinct=col.nunique(),
    ).to_pyarrow()
    total = int(stats["total"][0].as_py())
    empties = int(stats["empty"][0].as_py() or 0)
    distinct = int(stats["distinct"][0].as_py())
    if attr_type not in (AttrType.TEXT, AttrType.BOOLEAN):
        percentiles = _percentiles(table, col, attr_type)
        return Suggestion(attribute, attr_type, total, empties, distinct, percentiles=percentiles)
    present = table.filter(~empty.fill_null(True))
    counts = (
        present.group_by(attribute)
        .aggregate(_count=present.count())
        .order_by([ibis.desc("_count"), attribute])
        .limit(top)
        .to_pyarrow()
    )
    top_values = [
        ValueCount(value, int(n))
        for value, n in zip(
            counts[attribute].to_pylist(), counts["_count"].to_pylist(), strict=True
        )
    ]
    return Suggestion(attribute, attr_type, total, empties, distinct, top_values=top_values)


def _percentiles(table: ir.Table, col: ir.Column, attr_type: AttrType) -> dict[str, Any]:
    is_date = attr_type is AttrType.DATE
    is_calendar_date = is_date and col.type().is_date()
    numeric = col.cast("timestamp").epoch_seconds() if is_date else col.cast("float64")
    metrics: dict[str, ir.Value] = {"min": col.min(), "max": col.max()}
    metrics.update({name: numeric.quantile(q) for name, q in PERCENTILES})
    row = table.aggregate(**metrics).to_pyarrow().to_pylist()[0]
    result: dict[str, Any] = {"min": row["min"]}
    for name, _ in PERCENTILES:
        value = row[name]
        if value is not None and is_date:
            moment = datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None)
            value = moment.date() if is_calendar_date else moment
        elif value is not None:
            value = float(value)
        result[name] = value
    result["max"] = row["max"]
    if is_calendar_date:
        result = {k: v.date() if isinstance(v, datetime) else v for k, v in result.items()}
    assert all(v is None or isinstance(v, int | float | date) for v in result.values())
    return result
