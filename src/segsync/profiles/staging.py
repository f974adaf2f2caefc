"""Staging tables from Arrow batches, by each engine's bulk path: COPY on PostgreSQL
(:mod:`segsync.profiles.pgcopy`), Parquet on Spark (:mod:`segsync.profiles.spark`), Ibis's
inserts elsewhere. (DuckDB reads files itself: :mod:`segsync.profiles.importer`.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from segsync.errors import InputError
from segsync.profiles import pgcopy, spark

if TYPE_CHECKING:
    from segsync.profiles.engine import ProfileEngine

EXAMPLES = 5
"""How many rows with an empty key an error names."""


def stage_batches(
    engine: ProfileEngine,
    batches: Iterable[pa.RecordBatch],
    staging: str,
    key: str | None,
    label: str,
) -> list[int]:
    """Create ``staging`` from Arrow batches by the engine's bulk path: COPY on PostgreSQL,
    Parquet on Spark, Ibis's inserts elsewhere. Returns the indexes of the first rows whose
    key is empty, to name them in an error."""
    empty: list[int] = []

    def tables() -> Iterator[pa.Table]:
        offset = 0
        for batch in batches:
            data = _without_null_types(pa.Table.from_batches([batch]))
            if key is not None and key in data.column_names and len(empty) < EXAMPLES:
                empty.extend(offset + i for i in _empty_indexes(data.column(key)))
            offset += batch.num_rows
            yield data

    stream = tables()
    if engine.name == spark.SCHEME:
        created = spark.stage_batches(engine.backend, stream, staging)
    else:
        first = next(stream, None)
        stream = itertools.chain([first] if first is not None else [], stream)
        if engine.name == "postgres" and first is not None and pgcopy.copyable(first.schema):
            created = pgcopy.copy_tables(engine.backend, stream, staging)
        else:
            created = _insert_tables(engine.backend, stream, staging)
    if not created:
        raise InputError(f"{label}: no rows to import (only a header, or no data)")
    return empty[:EXAMPLES]


def _insert_tables(backend: BaseBackend, tables: Iterable[pa.Table], staging: str) -> bool:
    created = False
    for data in tables:
        if not created:
            backend.create_table(staging, obj=data)
            created = True
        elif data.num_rows:
            backend.insert(staging, obj=data)
    return created


def _without_null_types(data: pa.Table) -> pa.Table:
    # A column with only nulls has Arrow type null, which SQL engines cannot create.
    for index, field in enumerate(data.schema):
        if pa.types.is_null(field.type):
            data = data.set_column(index, field.name, data.column(index).cast(pa.string()))
    return data


def _empty_indexes(column: pa.ChunkedArray) -> list[int]:
    """The first rows whose value is null or blank text (computed by Arrow, not row by row)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        empty = pc.equal(pc.utf8_trim_whitespace(column), "")
    else:
        empty = pc.equal(pc.utf8_trim_whitespace(pc.cast(column, pa.string())), "")
    found = pc.indices_nonzero(pc.fill_null(empty, True))
    return [int(i) for i in found[:EXAMPLES].to_pylist()]
