"""The profile engine's DuckDB file through DuckDB's own driver: opened (waiting while another
process holds it), its tables listed and described as plain rows — what
:class:`~segsync.profiles.engine.ProfileEngine` does on DuckDB without loading Ibis, or without
reading through Arrow as Ibis would."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segsync.errors import FatalError
from segsync.profiles.sql import quote_identifier

if TYPE_CHECKING:
    import duckdb
    import ibis

LOCK_WAIT_SECONDS = 30.0
"""How long :meth:`ProfileEngine.connect` waits for a DuckDB file another process holds."""
_LOCK_MESSAGES = ("could not set lock", "conflicting lock")

DUCKDB_SESSION = ("SET TimeZone = 'UTC'", "SET python_enable_replacements = false")
"""What Ibis's DuckDB backend sets on every connection it makes (``_post_connect``), set on the
engine's own connection too: its SQL means the same whether Ibis was loaded or not."""


_VISIBLE = "table_catalog IN (current_database(), 'temp') AND table_schema = current_schema()"
"""The tables Ibis's ``list_tables`` gives: the file's current schema's and the temporary ones."""


def table_names(connection: Any) -> list[str]:
    """The tables and views of the DuckDB file's current schema and the temporary ones, as
    Ibis's ``list_tables`` gives them, read as plain rows (Ibis reads them through Arrow)."""
    query = f"SELECT DISTINCT table_name FROM information_schema.tables WHERE {_VISIBLE}"  # noqa: S608
    return [name for (name,) in connection.execute(query).fetchall()]


def columns(connection: Any) -> list[tuple[str, str, str, str]]:
    """Every column of those tables: ``(table, column, DuckDB type, "YES" if it may be NULL)``,
    by table and position."""
    query = (
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "  # noqa: S608
        f"WHERE {_VISIBLE} ORDER BY table_name, ordinal_position"
    )
    return connection.execute(query).fetchall()  # type: ignore[no-any-return]


def table_of(backend: Any, name: str) -> ibis.Table:
    """Ibis's table expression of ``name`` in a DuckDB file, its columns read as plain rows
    (Ibis's own ``table`` reads them through Arrow, importing pyarrow and numpy into every
    process that reads a table: some 50 MB and 0.1 s). The same types as Ibis's own reading:
    each column's DuckDB type through the backend's type mapper."""
    import duckdb
    import ibis.expr.operations as ops
    from ibis.common.exceptions import TableNotFound

    try:
        described = backend.con.execute(f"DESCRIBE {quote_identifier(name)}").fetchall()
    except duckdb.CatalogException:
        raise TableNotFound(name) from None
    shape = tuple((column, kind, null == "YES") for column, kind, null, *_ in described)
    schema = _schema(backend.compiler.type_mapper, shape)
    if schema.geospatial:  # Ibis loads DuckDB's spatial extension for these
        return backend.table(name)
    namespace = ops.Namespace(catalog=None, database=None)
    return ops.DatabaseTable(name, schema=schema, source=backend, namespace=namespace).to_expr()


@functools.lru_cache(maxsize=256)
def _schema(mapper: Any, shape: tuple[tuple[str, str, bool], ...]) -> ibis.Schema:
    """Ibis's schema of the columns ``shape`` (name, DuckDB type, nullable) through the
    backend's type ``mapper``. Kept: the same columns always map alike, and parsing each type
    (sqlglot) was half the cost of a table's expression, paid twice by every run and count."""
    import ibis

    return ibis.schema(
        {column: mapper.from_string(kind, nullable=nullable) for column, kind, nullable in shape}
    )


def connect_file(
    path: str, lock_wait: float, sleep: Callable[[float], None]
) -> duckdb.DuckDBPyConnection:
    """DuckDB's own connection to the file at ``path`` (``~`` expanded, its directory made;
    empty or ``:memory:``: in memory), set as Ibis sets its own (:data:`DUCKDB_SESSION`)."""
    import duckdb

    database = ":memory:"
    if path and path != ":memory:":
        file = Path(path).expanduser().absolute()
        file.parent.mkdir(parents=True, exist_ok=True)
        database = str(file)
    waited, pause = 0.0, 0.02
    while True:
        try:
            connection = duckdb.connect(database)
        except Exception as err:
            if not any(m in str(err).lower() for m in _LOCK_MESSAGES) or waited >= lock_wait:
                if waited:
                    raise FatalError(
                        f"the profile DuckDB file {path} is held by another process (waited "
                        f"{waited:.0f} s): {err}. DuckDB admits one process at a time; for "
                        "several hosts or heavy use point SEGSYNC_PROFILES_URL at Postgres or "
                        "a warehouse"
                    ) from err
                raise
            pause = min(pause * 2, 0.5)
            sleep(pause)
            waited += pause
            continue
        for statement in DUCKDB_SESSION:
            connection.execute(statement)
        return connection
