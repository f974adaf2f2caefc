"""Bulk loads into PostgreSQL: Arrow batches through ``COPY ... FROM STDIN``.

Each batch is written as CSV by Arrow (in C++) and streamed to the server in one ``COPY``, so
a load costs the server's parsing, not a Python loop per row or an ``INSERT`` per batch. In
PostgreSQL's CSV format an unquoted empty field is NULL and a quoted one (``""``) the empty
string; Arrow writes nulls unquoted and quotes every string, so the two stay apart.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.csv as pa_csv

from segsync.profiles.sql import quote_identifier as _quote

_COPYABLE = (
    pa.types.is_boolean,
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_date,
    pa.types.is_timestamp,
)
_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


def copyable(schema: pa.Schema) -> bool:
    """Whether every column has a type COPY's CSV format carries without loss (no lists,
    structs or binary: those go through Ibis's inserts)."""
    return all(any(test(f.type) for test in _COPYABLE) for f in schema)


def copy_tables(backend: Any, tables: Iterable[pa.Table], staging: str) -> bool:
    """Create ``staging`` (columns typed from the first table by Ibis) and COPY every table
    into it, in one transaction. Whether there was a table at all. Returns ``False`` without
    creating anything when there was none."""
    con = backend.con
    copy_sql = ""
    created = False
    with con.cursor() as cursor, con.transaction():
        for data in tables:
            if not created:
                backend.create_table(staging, schema=ibis.Schema.from_pyarrow(data.schema))
                names = ", ".join(_quote(f.name) for f in data.schema)
                copy_sql = f"COPY {_quote(staging)} ({names}) FROM STDIN (FORMAT csv)"
                created = True
            if not data.num_rows:
                continue
            buffer = io.BytesIO()
            pa_csv.write_csv(data, buffer, _OPTIONS)
            with cursor.copy(copy_sql) as copy:
                copy.write(buffer.getbuffer())
    return created
