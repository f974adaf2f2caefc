"""The profile engine: an Ibis backend holding the profile table and related tables.

On DuckDB (the embedded default) the engine opens the file with DuckDB's own driver and makes
Ibis's backend over that connection only when something first asks for it (:attr:`ProfileEngine.
backend`, :meth:`ProfileEngine.table`): importing Ibis and loading its DuckDB backend take some
0.25 s, which a run whose SQL is already compiled (:mod:`segsync.services.sync.compiled`) never
pays."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from segsync.domain.catalog import AttrType, TableInfo
from segsync.errors import FatalError, InputError, NotFound
from segsync.profiles import compilers, spark
from segsync.profiles.duckdb_file import LOCK_WAIT_SECONDS, connect_file, table_names, table_of
from segsync.profiles.placement import OwnTables, place_postgres, refuse_metadata_file

if TYPE_CHECKING:  # imported where they are used: a run on DuckDB never needs Arrow
    import duckdb
    import ibis
    import ibis.expr.datatypes as dt
    import pyarrow as pa

    from segsync.profiles.importer import ImportResult
    from segsync.profiles.readers import Progress

INTERNAL_PREFIX = "_segsync_"
_HIDDEN_PREFIXES = (INTERNAL_PREFIX, "ibis_")  # staging tables; Ibis's in-memory tables
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


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
        self,
        backend: Any,
        url: str,
        *,
        own: OwnTables | None = None,
        schema: str | None = None,
        duckdb_connection: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self._backend = backend  # None: DuckDB's, made over duckdb_connection when first asked
        self._duckdb = duckdb_connection
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
                connection = connect_file(url[len("duckdb://") :], lock_wait, sleep)
                return cls(None, url, own=own, duckdb_connection=connection)
            if scheme == spark.SCHEME:
                backend = spark.connect(url, data_dir)
            else:
                import ibis

                compilers.load_lazily()  # before the backend loads: one SQL compiler, not twenty
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
        """The Ibis backend (``ibis.backends.duckdb.Backend``, ``...postgres.Backend``, ...). On
        DuckDB, made over the engine's connection when first asked for (Ibis is imported then)."""
        if self._backend is None:
            compilers.load_lazily()
            from ibis.backends.duckdb import Backend

            self._backend = Backend.from_connection(self._duckdb)
        return self._backend

    @property
    def name(self) -> str:
        """The backend's name: ``duckdb``, ``postgres``, ..."""
        return "duckdb" if self._backend is None else str(self._backend.name)

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection | None:
        """DuckDB's own connection to the profile file (None on other engines): SQL run on it
        needs no Ibis."""
        if self._duckdb is None and self.name == "duckdb":
            self._duckdb = self._backend.con
        return self._duckdb

    def list_tables(self) -> list[str]:
        """User tables, sorted (staging tables and Ibis's in-memory tables are hidden). On
        Spark, Parquet directories new in the warehouse are registered first."""
        if self.name == spark.SCHEME:
            spark.register_directories(self._backend)
        return sorted(n for n in self._names() if not n.startswith(_HIDDEN_PREFIXES))

    def _names(self) -> list[str]:
        """Every table name the backend lists (on DuckDB read as plain rows, not through
        Arrow as Ibis reads them)."""
        if self.duckdb is not None:
            return table_names(self.duckdb)
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
        from ibis.common.exceptions import TableNotFound

        try:
            if self.name == spark.SCHEME:
                return spark.table(self._backend, name)
            if self.name == "duckdb":
                return table_of(self.backend, name)
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
        if self._backend is None:
            self._duckdb.close()  # type: ignore[union-attr]
            return
        disconnect = getattr(self._backend, "disconnect", None)
        if callable(disconnect):
            disconnect()
