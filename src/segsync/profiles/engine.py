"""The profile engine: an Ibis backend holding the profile table and related tables."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
from ibis.common.exceptions import TableNotFound

from segsync.domain.catalog import AttrType, TableInfo
from segsync.errors import FatalError, InputError, NotFound
from segsync.profiles import compilers, spark
from segsync.profiles.placement import OwnTables, place_postgres, refuse_metadata_file
from segsync.profiles.sql import quote_identifier

if TYPE_CHECKING:  # imported where they are used: a run on DuckDB never needs Arrow
    import pyarrow as pa

    from segsync.profiles.importer import ImportResult
    from segsync.profiles.readers import Progress

INTERNAL_PREFIX = "_segsync_"
_HIDDEN_PREFIXES = (INTERNAL_PREFIX, "ibis_")  # staging tables; Ibis's in-memory tables
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
LOCK_WAIT_SECONDS = 30.0
"""How long :meth:`ProfileEngine.connect` waits for a DuckDB file another process holds."""
_LOCK_MESSAGES = ("could not set lock", "conflicting lock")

compilers.load_lazily()  # before any backend loads: one SQL compiler, not twenty


def attr_type(dtype: dt.DataType) -> AttrType | None:
    """The attribute type a user sees for an engine column type (``None``: not usable)."""
    if dtype.is_boolean():
        return AttrType.BOOLEAN
    if dtype.is_numeric():
        return AttrType.NUMBER
    if dtype.is_date() or dtype.is_timestamp():
        return AttrType.DATE
    if dtype.is_string() or dtype.is_uuid():
        return AttrType.TEXT
    return None


def check_table_name(name: str) -> str:
    """Refuse table names that are not plain identifiers (they reach SQL as identifiers)."""
    if not _TABLE_NAME.fullmatch(name) or name.startswith(INTERNAL_PREFIX):
        raise InputError(
            f"table name {name!r} is not valid: use letters, digits and _, starting with a "
            f"letter or _, at most 63 characters (and not starting with {INTERNAL_PREFIX!r})"
        )
    return name


EXTRAS = {
    "pyspark": ("pyspark", spark.EXTRA),
    "bigquery": ("google.cloud.bigquery", "bigquery"),
    "snowflake": ("snowflake.connector", "snowflake"),
    "trino": ("trino", "trino"),
}
"""URL scheme → (the module its Ibis backend needs, the segsync extra that installs it)."""


def _check_extra(url: str, scheme: str) -> None:
    """``InputError`` naming the extra to install when the URL's backend is missing."""
    if scheme not in EXTRAS:
        return
    module, extra = EXTRAS[scheme]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (google.cloud)
        found = False
    if not found:
        raise InputError(spark.missing_extra_message(masked_url(url), extra))


def _normalise_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme in {"postgresql", "postgresql+psycopg"}:
        return "postgres" + url[len(scheme) :]
    return url


_SECRET_OPTION = re.compile(
    r"([?&][^=&]*(?:secret|password|passwd|token|credential|private|key)[^=&]*=)[^&]*",
    re.IGNORECASE,
)


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``postgres://bob:***@db/x``), and the
    value of every query option whose name says it is a secret (``?spark.hadoop.fs.s3a.
    secret.key=***``, ``&private_key=***``)."""
    return _SECRET_OPTION.sub(r"\1***", re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url))


class ProfileEngine:
    """Where profiles live and segment queries run: one Ibis backend.

    ``duckdb://PATH`` (the default, a file in the data dir) or any URL ``ibis.connect`` takes,
    e.g. ``postgres://user@host:5432/db``. Segment compilation works on :meth:`table`.
    ``own`` names segsync's own tables: no profile table is written under one of their names
    (:mod:`segsync.profiles.placement`). ``schema`` is the PostgreSQL schema the profile
    tables live in when it is not the connection's default one.
    """

    def __init__(
        self, backend: Any, url: str, *, own: OwnTables | None = None, schema: str | None = None
    ) -> None:
        self._backend = backend
        self.url = url
        self.own = own or OwnTables()
        self.schema = schema

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ``***`` (and the schema of the profile tables
        when it is not the default one), fit for messages and logs."""
        shown = masked_url(self.url)
        return f"{shown} (schema {self.schema})" if self.schema else shown

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        lock_wait: float = LOCK_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        own: OwnTables | None = None,
        schema: str | None = None,
        data_dir: Path | None = None,
    ) -> ProfileEngine:
        """Connect to the engine at ``url``; a DuckDB file's directory is created.

        A DuckDB file admits one read-write process at a time; segsync processes hold it only
        briefly, so while another holds it this waits and retries (growing pauses, up to
        ``lock_wait`` seconds) before giving up with a ``FatalError`` that says so.

        ``own`` (segsync's own tables) keeps profile tables apart from them: a URL opening the
        metadata's SQLite file is refused, and on PostgreSQL the profile tables get a schema of
        their own when the database holds the metadata (``schema``, when given, is used in any
        case; other engines ignore it). See :mod:`segsync.profiles.placement`.

        ``data_dir`` is where ``pyspark://local`` keeps its tables (``DATA_DIR/spark-warehouse``,
        :mod:`segsync.profiles.spark`). A URL whose backend needs an optional extra that is not
        installed (``segsync[spark]``, ``[bigquery]``, ...) is refused, naming the extra."""
        url = _normalise_url(url)
        scheme = urlsplit(url).scheme
        own = own or OwnTables()
        refuse_metadata_file(url, own, masked_url(url))
        _check_extra(url, scheme)
        try:
            if scheme == "duckdb":
                backend = _connect_duckdb(url[len("duckdb://") :], lock_wait, sleep)
            elif scheme == spark.SCHEME:
                backend = spark.connect(url, data_dir)
            else:
                backend = ibis.connect(url)
        except (ImportError, ValueError) as err:
            raise InputError(
                f"profile engine URL {masked_url(url)!r} is not usable: {err}"
            ) from None
        except (FatalError, InputError):
            raise
        except Exception as err:
            raise FatalError(
                f"could not connect to the profile engine at {masked_url(url)!r}: {err}"
            ) from err
        if backend.name != "postgres":
            return cls(backend, url, own=own)
        try:
            placed = place_postgres(backend, own, schema)
        except BaseException:
            backend.disconnect()
            raise
        return cls(backend, url, own=own, schema=placed)

    @property
    def backend(self) -> Any:
        """The Ibis backend (``ibis.backends.duckdb.Backend``, ``...postgres.Backend``, ...)."""
        return self._backend

    @property
    def name(self) -> str:
        """The backend's name: ``duckdb``, ``postgres``, ..."""
        return str(self._backend.name)

    def list_tables(self) -> list[str]:
        """User tables, sorted (staging tables and Ibis's in-memory tables are hidden). On
        Spark, Parquet directories new in the warehouse are registered first."""
        if self.name == spark.SCHEME:
            spark.register_directories(self._backend)
        return sorted(n for n in self._names() if not n.startswith(_HIDDEN_PREFIXES))

    def _names(self) -> list[str]:
        """Every table name the backend lists (on DuckDB read as plain rows, not through
        Arrow as Ibis reads them)."""
        if self.name == "duckdb":
            return _duckdb_tables(self._backend)
        return list(self._backend.list_tables())

    def check_writable(self, name: str) -> str:
        """Refuse a name a profile table may not have: not a plain identifier, a staging name,
        or the name of one of segsync's own tables (``InputError`` naming it and why)."""
        check_table_name(name)
        self.own.refuse(name)
        return name

    def has_table(self, name: str) -> bool:
        return name in set(self._names())

    def table(self, name: str) -> ibis.Table:
        """The Ibis table expression of ``name``; ``NotFound`` if it does not exist. One query
        (its columns), not a listing of every table first."""
        try:
            if self.name == spark.SCHEME:
                return spark.table(self._backend, name)
            if self.name == "duckdb":
                return _duckdb_table(self._backend, name)
            return self._backend.table(name)
        except TableNotFound:
            pass
        # Spark: another process may have written the table since this one connected.
        if self.name == spark.SCHEME and name.lower() in spark.register_directories(self._backend):
            return self._backend.table(name)
        raise NotFound(f"no table {name!r} in the profile engine; import it first")

    def table_info(self, name: str, *, with_count: bool = False) -> TableInfo:
        """Columns of ``name`` as attribute types (unsupported types such as lists are left
        out); the row count too when ``with_count``."""
        table = self.table(name)  # one read of the columns, used for the count too
        columns = {
            col: kind
            for col, dtype in table.schema().items()
            if (kind := attr_type(dtype)) is not None
        }
        count = int(table.count().execute()) if with_count else None
        return TableInfo(name=name, columns=columns, row_count=count)

    def row_count(self, name: str) -> int:
        return int(self.table(name).count().execute())

    def import_file(
        self,
        path: str | Path,
        table: str,
        *,
        key: str | None = None,
        replace: bool = False,
        progress: Progress | None = None,
        check: Callable[[TableInfo], None] | None = None,
    ) -> ImportResult:
        """Load a CSV/TSV, Parquet or JSON Lines file (optionally ``.gz``) into ``table``.

        The data lands in a staging table, is checked (rows present; ``key`` present, never
        empty, unique; then ``check`` on the new columns), and only then replaces ``table`` in
        one transaction: a failed import leaves the previous table as it was. ``progress`` is
        called with ``(bytes_done, bytes_total)``.
        """
        self.check_writable(table)
        from segsync.profiles import importer

        return importer.import_file(
            self, Path(path), table, key=key, replace=replace, progress=progress, check=check
        )

    def import_arrow(
        self,
        data: pa.Table,
        table: str,
        *,
        key: str | None = None,
        replace: bool = False,
        check: Callable[[TableInfo], None] | None = None,
    ) -> ImportResult:
        """Load an in-memory Arrow table into ``table``, with the same checks and atomicity as
        :meth:`import_file`."""
        self.check_writable(table)
        from segsync.profiles import importer

        return importer.import_arrow(self, data, table, key=key, replace=replace, check=check)

    def check_key(self, name: str, key: str) -> None:
        """Check ``key`` of the existing table ``name`` with the rules imports apply (exists,
        never empty, unique); ``InputError`` with the count and examples otherwise."""
        from segsync.profiles import importer

        importer.check_key(self, name, key, label=f"table {name!r}")

    def drop_table(self, name: str) -> None:
        self.check_writable(name)
        from segsync.profiles import importer

        importer.drop(self, name)

    def close(self) -> None:
        """Disconnect. Spark's context stays up for the process's next engine (starting one
        takes seconds); only this engine's session is let go."""
        if self.name == spark.SCHEME:
            return
        disconnect = getattr(self._backend, "disconnect", None)
        if callable(disconnect):
            disconnect()


def _duckdb_tables(backend: Any) -> list[str]:
    """The tables and views of the DuckDB file's current schema and the temporary ones, as
    Ibis's ``list_tables`` gives them, read as plain rows (Ibis reads them through Arrow)."""
    rows = backend.con.execute(
        "SELECT DISTINCT table_name FROM information_schema.tables "
        "WHERE table_catalog IN (current_database(), 'temp') AND table_schema = current_schema()"
    ).fetchall()
    return [name for (name,) in rows]


def _duckdb_table(backend: Any, name: str) -> ibis.Table:
    """Ibis's table expression of ``name`` in a DuckDB file, its columns read as plain rows
    (Ibis's own ``table`` reads them through Arrow, importing pyarrow and numpy into every
    process that reads a table: some 50 MB and 0.1 s). The same types as Ibis's own reading:
    each column's DuckDB type through the backend's type mapper."""
    import duckdb

    try:
        described = backend.con.execute(f"DESCRIBE {quote_identifier(name)}").fetchall()
    except duckdb.CatalogException:
        raise TableNotFound(name) from None
    mapper = backend.compiler.type_mapper
    schema = ibis.schema(
        {
            column: mapper.from_string(kind, nullable=null == "YES")
            for column, kind, null, *_ in described
        }
    )
    if schema.geospatial:  # Ibis loads DuckDB's spatial extension for these
        return backend.table(name)
    namespace = ops.Namespace(catalog=None, database=None)
    return ops.DatabaseTable(name, schema=schema, source=backend, namespace=namespace).to_expr()


def _connect_duckdb(path: str, lock_wait: float, sleep: Callable[[float], None]) -> Any:
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    waited, pause = 0.0, 0.02
    while True:
        try:
            return ibis.duckdb.connect(path or ":memory:")
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
