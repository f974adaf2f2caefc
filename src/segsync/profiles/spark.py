"""Apache Spark as the profile engine, through Ibis's PySpark backend (docs/warehouses.md).

``pyspark://local`` runs Spark inside this process (local mode, every core);
``pyspark://HOST:PORT`` uses a standalone cluster's master (``spark://HOST:PORT``), and
``?master=...`` any master Spark takes (``yarn``, ``local[4]``, ...). Options of the URL's query:
``spark.*`` keys go to the session's configuration, ``database`` names the Spark database the
profile tables live in, ``exchange`` the directory segsync swaps Parquet files through.

One process has one SparkContext; each :func:`connect` gets a session of its own on it (its own
current database, temporary views and SQL settings), and closing the engine leaves the context
running for the next one.

**Where tables live.** With Spark's own in-memory catalog (no Hive metastore configured), a
catalog lasts as long as the process, so segsync keeps its profile tables as Parquet
directories in a warehouse directory (``pyspark://local/PATH``, by default
``DATA_DIR/spark-warehouse``) and, on connecting, registers every directory there as a table
of the database: a table imported by one segsync process is there for the next, and a Parquet
directory copied in is a table ``profiles register`` can read in place. With a Hive metastore
(``spark.sql.catalogImplementation=hive``) the metastore keeps the tables.

**Bulk paths.** Imports write Arrow batches into one Parquet file in the exchange directory,
which Spark then reads into the staging table; members come out the same way backwards: Spark
writes the result as Parquet and segsync reads it back batch by batch, so the driver's memory
stays flat. On a cluster the exchange directory must be visible to the driver and to every
executor (a shared mount).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from segsync.errors import FatalError, InputError

if TYPE_CHECKING:  # imported where used: a process without Spark need not load Arrow
    import pyarrow as pa
    import pyarrow.parquet as pq

SCHEME = "pyspark"
EXTRA = "spark"
DEFAULT_DATABASE = "segsync"
WAREHOUSE_DIR = "spark-warehouse"
"""The warehouse directory's name in the data dir, for ``pyspark://local``."""
_OPTIONS = ("master", "database", "exchange")
_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
"""Spark's logging as segsync starts it: errors only (the JVM's notices would bury ours)."""
LOCAL_PARTITIONS_PER_CORE = 2
"""In local mode, shuffles use this many partitions per core unless the URL says otherwise."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_EXCHANGE_PREFIX = "_segsync_exchange_"
DEFAULTS = {
    "spark.app.name": "segsync",
    "spark.ui.enabled": "false",  # no web UI (and no port) for a batch tool
    "spark.ui.showConsoleProgress": "false",  # no progress bars over segsync's output
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Read back by pyarrow: microseconds, not the legacy INT96 encoding.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
"""Settings of the SparkContext segsync starts; any of them may be set in the URL instead."""


@dataclass(frozen=True)
class SparkPlace:
    """Where a ``pyspark://`` URL points: the master, the session's settings, the database,
    the local warehouse directory (``None`` when a metastore keeps the tables) and the
    exchange directory."""

    master: str
    conf: dict[str, str]
    database: str | None
    warehouse: Path | None
    exchange: Path | None
    local: bool = True


_places: weakref.WeakKeyDictionary[Any, SparkPlace] = weakref.WeakKeyDictionary()


def available() -> bool:
    """Whether PySpark is installed (the ``spark`` extra)."""
    return importlib.util.find_spec("pyspark") is not None


def _cores() -> int:
    return os.cpu_count() or 1


def parse_url(url: str, data_dir: Path | None) -> SparkPlace:
    """Read a ``pyspark://`` URL; ``InputError`` naming what is wrong."""
    parts = urlsplit(url)
    conf: dict[str, str] = {}
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.startswith("spark."):
            conf[name] = value
        elif name in _OPTIONS:
            options[name] = value
        else:
            raise InputError(
                f"profile engine URL option {name!r} is unknown: use spark.* settings or "
                f"{', '.join(_OPTIONS)} (docs/warehouses.md)"
            )
    host = parts.hostname or ""
    if "master" in options:
        master = options["master"]
    elif host in {"", "local"}:
        master = "local[*]"
    else:
        master = f"spark://{host}:{parts.port or 7077}"
    local = master.startswith("local")
    database = options.get("database")
    if database is not None and not _NAME.fullmatch(database):
        raise InputError(
            f"profile engine URL option database={database!r} is not valid: use letters, "
            "digits and _, starting with a letter or _"
        )
    warehouse: Path | None = None
    if parts.path not in {"", "/"}:
        warehouse = Path(parts.path).expanduser()
    elif "spark.sql.warehouse.dir" in conf:
        warehouse = Path(conf["spark.sql.warehouse.dir"].removeprefix("file:"))
    elif local:
        if data_dir is None:
            raise InputError(
                f"profile engine URL {url!r} names no warehouse directory: use "
                "pyspark://local/PATH (the directory holding the profile tables)"
            )
        warehouse = data_dir / WAREHOUSE_DIR
    exchange = Path(options["exchange"]).expanduser() if "exchange" in options else None
    if exchange is None and warehouse is not None:
        exchange = warehouse / "_segsync_exchange"
    if warehouse is not None:
        conf.setdefault("spark.sql.warehouse.dir", str(warehouse.resolve()))
    java = conf.get(_JAVA_OPTIONS, "")
    if "log4j" not in java:  # errors only, unless the URL configures logging itself
        conf[_JAVA_OPTIONS] = f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} {java}".strip()
    if local:  # one machine: Spark's 200 shuffle partitions are mostly overhead
        conf.setdefault("spark.sql.shuffle.partitions", str(LOCAL_PARTITIONS_PER_CORE * _cores()))
    return SparkPlace(master, conf, database, warehouse, exchange, local)


def connect(url: str, data_dir: Path | None) -> Any:
    """An Ibis PySpark backend on a session of its own, in the database of the URL."""
    place = parse_url(url, data_dir)
    if not available():
        raise InputError(missing_extra_message(url, EXTRA))
    import ibis
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(place.master)
    for name, value in {**DEFAULTS, **place.conf}.items():
        builder = builder.config(name, value)
    try:
        base = builder.getOrCreate()
        base.sparkContext.setLogLevel("ERROR")
    except Exception as err:
        raise FatalError(_start_failure(err)) from err
    session = base.newSession()
    for name, value in place.conf.items():  # the context's own settings were set above
        if session.conf.isModifiable(name):
            session.conf.set(name, value)
    backend = ibis.pyspark.connect(session)
    in_memory = session.conf.get("spark.sql.catalogImplementation") == "in-memory"
    home = place if in_memory else SparkPlace(**{**place.__dict__, "warehouse": None})
    _use_database(session, home)
    _places[backend] = home
    register_directories(backend)
    return backend


def missing_extra_message(url: str, extra: str) -> str:
    return (
        f"the profile engine URL {url!r} needs segsync's optional extra {extra!r}: install it "
        f"with pip install 'segsync[{extra}]' (docs/warehouses.md)"
    )


def _start_failure(err: Exception) -> str:
    text = str(err).strip().rstrip(".")
    if "JAVA_GATEWAY_EXITED" in text or "JAVA_HOME" in text or "java" in text.lower():
        return (
            f"Spark could not start: {text.strip().splitlines()[0]}. Spark needs Java 17 "
            "(Debian: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)"
        )
    return f"Spark could not start: {text.strip().splitlines()[0] if text.strip() else err!r}"


def _use_database(session: Any, place: SparkPlace) -> None:
    name = place.database
    if place.warehouse is not None:
        name = name or DEFAULT_DATABASE
        place.warehouse.mkdir(parents=True, exist_ok=True)
        location = place.warehouse.resolve()
        if not session.catalog.databaseExists(name):
            session.sql(f"CREATE DATABASE IF NOT EXISTS `{name}` LOCATION {_literal(location)}")
        else:
            found = _database_location(session, name)
            if found is not None and Path(found) != location:
                raise InputError(
                    f"the Spark database {name!r} of this process lives in {found}, not in "
                    f"{location}; give the URL another database=NAME"
                )
    if name is not None:
        session.catalog.setCurrentDatabase(name)


def _database_location(session: Any, name: str) -> str | None:
    for row in session.sql(f"DESCRIBE DATABASE `{name}`").collect():
        if str(row[0]).lower() == "location":
            return str(row[1]).removeprefix("file:")
    return None


def _literal(path: Path) -> str:
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


def place_of(backend: Any) -> SparkPlace:
    return _places[backend]


def register_directories(backend: Any) -> list[str]:
    """Register every Parquet directory of the warehouse that is not yet a table of the
    database (tables written by an earlier process, or copied in). Returns their names, in
    lower case as Spark keeps them (none when a metastore keeps the tables)."""
    place = _places[backend]
    if place.warehouse is None:
        return []
    session = backend._session
    known = {str(name).lower() for name in backend.list_tables()}
    added = []
    for entry in sorted(place.warehouse.iterdir()):
        name = entry.name
        if not entry.is_dir() or not _NAME.fullmatch(name) or name.lower() in known:
            continue
        if name.startswith(_EXCHANGE_PREFIX) or not any(entry.rglob("*.parquet")):
            continue
        session.sql(f"CREATE TABLE `{name}` USING parquet LOCATION {_literal(entry.resolve())}")
        added.append(name.lower())
    return added


def table(backend: Any, name: str) -> Any:
    """The Ibis table ``name``, its files listed anew in a local warehouse: another process
    may have replaced them since this one last read the table (Spark caches the listing)."""
    if _places[backend].warehouse is not None and backend._session.catalog.tableExists(name):
        backend._session.catalog.refreshTable(name)
    return backend.table(name)


def drop_table(backend: Any, name: str) -> None:
    """Drop ``name`` and, in a local warehouse, its directory (a table registered from a
    directory is an external table, whose files Spark would leave)."""
    backend.drop_table(name, force=True)
    place = _places.get(backend)
    if place is not None and place.warehouse is not None:
        shutil.rmtree(place.warehouse / name.lower(), ignore_errors=True)


def swap(backend: Any, staging: str, table: str) -> None:
    """Replace ``table`` by ``staging`` (a table this process wrote: renaming it moves its
    directory). Spark has no transactional DDL: the table is missing for a moment."""
    drop_table(backend, table)
    backend.rename_table(staging, table)


def _exchange_dir(backend: Any) -> Path:
    place = _places[backend]
    root = place.exchange or Path(tempfile.gettempdir())
    path = root / f"{_EXCHANGE_PREFIX}{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    return path


def stage_batches(backend: Any, batches: Iterable[pa.Table], staging: str) -> bool:
    """Create ``staging`` from Arrow tables through one Parquet file that Spark reads; whether
    there was a batch at all. Later batches are cast to the first one's schema."""
    import pyarrow.parquet as pq

    folder = _exchange_dir(backend)
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    try:
        for data in batches:
            if writer is None:
                schema = data.schema
                writer = pq.ParquetWriter(folder / "part-0.parquet", schema)
            writer.write_table(data.cast(schema))
        if writer is None:
            return False
        writer.close()
        frame = backend._session.read.parquet(str(folder.resolve()))
        frame.write.saveAsTable(staging, format="parquet", mode="error")
        return True
    finally:
        if writer is not None:
            writer.close()
        shutil.rmtree(folder, ignore_errors=True)


def reads_driver_files(engine: Any) -> bool:
    """Whether ``engine`` is Spark in local mode, whose executors read this host's files."""
    return bool(engine.name == SCHEME and _places[engine.backend].local)


def stage_parquet(
    backend: Any, path: Path, staging: str, progress: Callable[[int, int], None] | None
) -> None:
    """Create ``staging`` from a Parquet file that Spark reads itself (local mode)."""
    frame = backend._session.read.parquet(str(path.resolve()))
    frame.write.saveAsTable(staging, format="parquet", mode="error")
    if progress is not None:
        size = path.stat().st_size
        progress(size, size)


def arrow_batches(backend: Any, expr: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``expr`` in order as Arrow record batches of ``batch_size`` rows (the last
    one smaller), with flat memory: Spark writes the result as Parquet files into the exchange
    directory and they are read back a batch at a time (Ibis's own PySpark reader collects the
    whole result on the driver first)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = expr.schema().to_pyarrow()
    backend._run_pre_execute_hooks(expr)
    frame = backend._session.sql(backend.compile(expr))
    folder = _exchange_dir(backend)
    try:
        out = folder / "result"
        frame.write.parquet(str(out.resolve()))
        pending: list[pa.RecordBatch] = []
        held = 0
        for part in sorted(out.glob("part-*.parquet")):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_size):
                pending.append(_conform(batch, schema))
                held += batch.num_rows
                while held >= batch_size:
                    rows = pa.Table.from_batches(pending, schema)
                    yield _one_batch(rows.slice(0, batch_size), schema)
                    pending = rows.slice(batch_size).to_batches()
                    held -= batch_size
        if held:
            yield _one_batch(pa.Table.from_batches(pending, schema), schema)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the types Ibis gives the expression (Parquet may store others)."""
    import pyarrow as pa

    columns = [batch.column(i).cast(field.type) for i, field in enumerate(schema)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _one_batch(rows: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    batches = rows.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)
