"""Imports into the profile engine: stage, check, then swap in one transaction."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import pyarrow as pa
from ibis.backends import BaseBackend

from segsync.domain.catalog import AttrType, TableInfo
from segsync.domain.untrusted import clip
from segsync.errors import Conflict, InputError
from segsync.profiles import spark
from segsync.profiles.readers import (
    Progress,
    SourceFile,
    arrow_batches,
    line_label,
    open_source,
    sniff_delimiter,
)
from segsync.profiles.sniff import check_content, check_csv
from segsync.profiles.sql import quote_identifier as _quote
from segsync.profiles.staging import EXAMPLES, stage_batches

if TYPE_CHECKING:
    from segsync.profiles.engine import ProfileEngine

_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ImportResult:
    """What an import loaded."""

    table: str
    rows: int
    columns: dict[str, AttrType]
    key: str | None
    format: str
    source: str | None = None


def staging_name(table: str) -> str:
    return f"_segsync_staging_{table}"


def _duckdb_message(err: Exception) -> str:
    # DuckDB appends the failing SQL and advice about its own reader options; users need only
    # the reason (which names the line and column).
    text = str(err)
    for marker in ("\n\n", "\nPossible", "\nThe search space", "\nColumn "):
        text = text.split(marker, 1)[0]
    text = " ".join(line.strip() for line in text.strip().splitlines())
    text = clip(text)
    if "sniffing" in text:
        text += " (check that every line has as many fields as the header and quotes are closed)"
    return text


def import_file(
    engine: ProfileEngine,
    path: Path,
    table: str,
    *,
    key: str | None,
    replace: bool,
    progress: Progress | None,
    check: Callable[[TableInfo], None] | None,
) -> ImportResult:
    source = open_source(path)
    check_content(source)
    if source.format in {"csv", "tsv"}:
        check_csv(source)
    _check_target(engine, table, replace)
    staging = staging_name(table)
    drop(engine, staging)
    try:
        examples: list[int] = []
        if engine.name == "duckdb":
            _stage_duckdb_file(engine, source, staging, progress)
        elif source.format == "parquet" and spark.reads_driver_files(engine):
            spark.stage_parquet(engine.backend, source.path, staging, progress)
        else:
            try:
                examples = stage_batches(
                    engine, arrow_batches(source, progress), staging, key, source.label
                )
            except (pa.ArrowException, OSError) as err:
                raise InputError(f"{source.label}: {clip(err)}") from None
        return _finish(
            engine,
            staging,
            table,
            key=key,
            label=source.label,
            fmt=source.format,
            source=str(path),
            empty_key_rows=examples,
            check=check,
        )
    finally:
        with contextlib.suppress(Exception):
            drop(engine, staging)


def import_arrow(
    engine: ProfileEngine,
    data: pa.Table,
    table: str,
    *,
    key: str | None,
    replace: bool,
    check: Callable[[TableInfo], None] | None,
) -> ImportResult:
    _check_target(engine, table, replace)
    staging = staging_name(table)
    drop(engine, staging)
    try:
        examples: list[int] = []
        if engine.name == "duckdb":
            duck = engine.backend.con
            view = f"{staging}_arrow"
            duck.register(view, data)
            try:
                duck.execute(f"CREATE TABLE {_quote(staging)} AS SELECT * FROM {_quote(view)}")  # noqa: S608
            finally:
                duck.unregister(view)
        else:
            examples = stage_batches(
                engine, data.to_batches(max_chunksize=50_000), staging, key, f"data for {table}"
            )
        return _finish(
            engine,
            staging,
            table,
            key=key,
            label=f"data for {table}",
            fmt="arrow",
            source=None,
            empty_key_rows=examples,
            check=check,
        )
    finally:
        with contextlib.suppress(Exception):
            drop(engine, staging)


def drop(engine: ProfileEngine, name: str) -> None:
    """Drop table ``name`` if it exists (on Spark with its warehouse directory)."""
    if engine.name == spark.SCHEME:
        spark.drop_table(engine.backend, name)
    else:
        engine.backend.drop_table(name, force=True)


def _check_target(engine: ProfileEngine, table: str, replace: bool) -> None:
    engine.own.refuse(table)  # also checked by the engine: never drop one of segsync's tables
    if not replace and engine.has_table(table):
        raise Conflict(
            f"table {table!r} already exists in the profile engine; "
            "add --replace to replace its data"
        )


def _stage_duckdb_file(
    engine: ProfileEngine, source: SourceFile, staging: str, progress: Progress | None
) -> None:
    """Load with DuckDB's own parallel readers. CSV types are detected from a sample first;
    when a later value does not fit, the whole file is scanned to detect them."""
    if source.format in {"csv", "tsv"}:
        # The delimiter comes from the header line: DuckDB's sniffer can mistake a file with
        # one ragged row for a one-column file.
        delim = {"\t": "\\t"}.get(sniff_delimiter(source), sniff_delimiter(source))
        options = f"header=true, delim='{delim}'"
        try:
            _run_duckdb(engine, source, staging, f"read_csv(?, {options})", progress)
        except duckdb.ConversionException:
            engine.backend.drop_table(staging, force=True)
            reader = f"read_csv(?, {options}, sample_size=-1)"
            _run_duckdb(engine, source, staging, reader, progress)
    elif source.format == "parquet":
        _run_duckdb(engine, source, staging, "read_parquet(?)", progress)
    else:
        reader = "read_json(?, format='newline_delimited')"
        _run_duckdb(engine, source, staging, reader, progress)


def _run_duckdb(
    engine: ProfileEngine,
    source: SourceFile,
    staging: str,
    reader: str,
    progress: Progress | None,
) -> None:
    """Run the load on a cursor in a thread, so the caller's thread can poll its progress."""
    sql = f"CREATE TABLE {_quote(staging)} AS SELECT * FROM {reader}"  # noqa: S608
    cursor = engine.backend.con.cursor()
    failure: list[BaseException] = []
    done = threading.Event()

    def load() -> None:
        try:
            cursor.execute(sql, [str(source.path)])
        except BaseException as err:
            failure.append(err)
        finally:
            done.set()

    total = source.size
    try:
        if progress is not None:
            cursor.execute("SET enable_progress_bar = true")
            cursor.execute("SET enable_progress_bar_print = false")
        worker = threading.Thread(target=load, name="segsync-import", daemon=True)
        worker.start()
        while not done.wait(_POLL_SECONDS):
            percent = cursor.query_progress()
            if progress is not None and percent >= 0:
                progress(int(total * min(percent, 100.0) / 100), total)
        worker.join()
    finally:
        cursor.close()
    if failure:
        err = failure[0]
        if isinstance(err, duckdb.ConversionException) and "sample_size=-1" not in reader:
            raise err
        if isinstance(err, duckdb.Error):
            raise InputError(f"{source.label}: {_duckdb_message(err)}") from None
        raise err
    if progress is not None:
        progress(total, total)


def _finish(
    engine: ProfileEngine,
    staging: str,
    table: str,
    *,
    key: str | None,
    label: str,
    fmt: str,
    source: str | None,
    empty_key_rows: list[int],
    check: Callable[[TableInfo], None] | None,
) -> ImportResult:
    staged = engine.backend.table(staging)
    rows = int(staged.count().execute())
    if rows == 0:
        raise InputError(f"{label}: no rows to import (only a header, or no data)")
    if key is not None:
        _check_key(engine, staged, staging, key, label, fmt, empty_key_rows)
    info = engine.table_info(staging)
    if check is not None:
        check(TableInfo(name=table, columns=info.columns, row_count=rows))
    _swap(engine, staging, table)
    return ImportResult(
        table=table, rows=rows, columns=info.columns, key=key, format=fmt, source=source
    )


def check_key(engine: ProfileEngine, table: str, key: str, *, label: str) -> None:
    """Check ``key`` of an existing ``table`` as imports check theirs: the column exists, no
    value is empty (blank text counts), none repeats. ``InputError`` gives the count and up to
    five examples, prefixed with ``label``."""
    _check_key(engine, engine.backend.table(table), table, key, label, "table", [])


def _check_key(
    engine: ProfileEngine,
    staged: Any,
    staging: str,
    key: str,
    label: str,
    fmt: str,
    empty_key_rows: list[int],
) -> None:
    columns = list(staged.columns)
    if key not in columns:
        raise InputError(
            f"column {clip(key)!r} not found in {label}; columns are: {clip(', '.join(columns))}"
        )
    column = staged[key]
    empty = column.isnull() | (column.cast("string").strip() == "")
    # One scan for both checks; the grouping that finds the repeated values runs only if any.
    stats = staged.aggregate(
        rows=staged.count(), empty=staged.count(where=empty), distinct=column.nunique()
    ).to_pyarrow()
    rows, empty_count, distinct = (int(stats[name][0].as_py() or 0) for name in stats.column_names)
    if empty_count:
        if engine.name == "duckdb":
            # A view (a table read in place may be one) has no rowid: then no row numbers.
            with contextlib.suppress(duckdb.Error):
                found = engine.backend.con.execute(
                    f"SELECT rowid FROM {_quote(staging)} WHERE {_quote(key)} IS NULL "  # noqa: S608
                    f"OR trim(CAST({_quote(key)} AS VARCHAR)) = '' ORDER BY rowid "
                    f"LIMIT {EXAMPLES}"
                ).fetchall()
                empty_key_rows = [int(row[0]) for row in found]
        where = ", ".join(line_label(fmt)(i) for i in empty_key_rows)
        raise InputError(
            f"{label}: {empty_count} row(s) have an empty key {key!r}"
            + (f" ({where})" if where else "")
            + "; every row needs a key"
        )
    if distinct == rows:
        return
    counts = staged.group_by(key).aggregate(n=staged.count())
    duplicated = counts.filter(counts.n > 1)
    duplicate_count = int(duplicated.count().execute())
    if duplicate_count:
        top = duplicated.order_by([ibis.desc("n"), key]).limit(EXAMPLES).to_pyarrow()
        examples = ", ".join(
            f"{clip(repr(value), 60)} ×{n}"
            for value, n in zip(
                top.column(key).to_pylist(), top.column("n").to_pylist(), strict=True
            )
        )
        raise InputError(
            f"{label}: {duplicate_count} value(s) of key {key!r} appear more than once "
            f"(e.g. {examples}); keys must be unique"
        )


def _swap(engine: ProfileEngine, staging: str, table: str) -> None:
    """Replace ``table`` by ``staging`` in one transaction where the backend allows it."""
    engine.own.refuse(table)
    drop = f"DROP TABLE IF EXISTS {_quote(table)}"
    rename = f"ALTER TABLE {_quote(staging)} RENAME TO {_quote(table)}"
    backend = engine.backend
    if engine.name in {"duckdb", "sqlite"}:  # SQLite: Ibis cannot rename, but SQL can
        con = backend.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(drop)
            con.execute(rename)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    elif engine.name == "postgres":
        with backend.begin() as cursor:
            cursor.execute(drop)
            cursor.execute(rename)
    elif engine.name == spark.SCHEME:
        spark.swap(backend, staging, table)
    elif type(backend).rename_table is BaseBackend.rename_table:
        raise InputError(
            f"the profile engine ({engine.name}) cannot rename tables, so segsync cannot "
            f"replace {table!r} safely; load it with the engine's own tools and register it"
        )
    else:  # no transactional DDL through Ibis: a short window without the table
        backend.drop_table(table, force=True)
        backend.rename_table(staging, table)
