"""A run's member SQL, kept from the run before when nothing it is made of has changed.

Before it reads a member, a run on DuckDB (the embedded default) compiles its segments into one
SQL query: the settled walk's (:mod:`.settled`) or a first run's stream's (:mod:`.stream`).
Compiling needs Ibis, whose import and DuckDB backend take some 0.25 s of every run process,
and the compiling itself about 0.1 s more — a sixth of a 1 % change's run. The query is the
same on every run until something it is made of changes, so each export keeps its last query
in the data dir (``DATA_DIR/cache/run-sql/EXPORT_ID.json``) with a stamp of all of that
(:func:`stamp`):

- the segments' keys and definitions, and the field mapping (its targets and payload columns);
- the profile catalog as the metadata DB declares it (tables, keys, relationships) and every
  column of the profile engine with its DuckDB type and whether it may be NULL: an import
  that adds, drops or retypes a column is a new stamp; one that only changes rows is not;
- segsync's own code, each ``.py`` file by size and modification time (as Python's own
  bytecode cache checks its sources), and the SQL libraries — Ibis, sqlglot, DuckDB — each by
  its package's first file, which an upgrade writes anew;
- the moment relative rules are anchored on, where a definition has one (``within_last``):
  such a query changes with the clock, so it is compiled on every run, as before.

A run whose stamp matches takes the query as it is and never imports Ibis; any other compiles
it and keeps it for the next. Saving an export (created, duplicated, its segments, mapping or
connection edited) compiles both queries (:func:`prepare`), so that even its first run starts
without Ibis; and a first run that had to compile its stream's query compiles the walk's once
its members are read, while it sends its last batches (:class:`.stream.FirstRun`). Only DuckDB's
queries are kept (other engines load Ibis to connect anyway).

The file holds SQL the run executes: it is as private as the data dir, which holds the metadata
DB and the profile file themselves. A file that cannot be read or written is compiled around,
never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, Literal

import segsync
from segsync.domain.mapping import FieldMapping
from segsync.profiles.duckdb_file import columns
from segsync.services.context import ServiceContext
from segsync.services.sync.read import SegmentSource
from segsync.storage.repositories.profiles import DataSourceRepository, RelationshipRepository

log = logging.getLogger(__name__)

LIBRARIES = ("ibis", "sqlglot", "duckdb")
"""The libraries whose code decides the SQL beside segsync's own: Ibis compiles through sqlglot,
and DuckDB's version decides what Ibis's DuckDB backend writes."""
RELATIVE = "within_last"
"""What a definition holding a relative rule (``within_last``, ``not_within_last``) contains:
its query is anchored on the run's moment. A definition that merely mentions it elsewhere (a
value) is compiled every run too: that costs time, never a wrong query."""


def _files(root: Path) -> list[tuple[str, int, int]]:
    """Each ``.py`` file under ``root`` by its path, modification time and size."""
    found = []
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(f for f in folders if f != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                status = os.stat(path)
                found.append((path, status.st_mtime_ns, status.st_size))
    return found


PACKAGE = Path(segsync.__file__).parent
"""segsync's own code: every ``.py`` file under it is part of the stamp."""


def code_stamp(package: Path = PACKAGE) -> list[Any]:
    """segsync's own code (``package``) by file, and each of :data:`LIBRARIES` by its package's
    first file (an upgrade writes it anew): some 300 ``stat`` calls, a few milliseconds."""
    stamp: list[Any] = [segsync.__version__, _files(package)]
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or not os.path.exists(origin):
            stamp.append([name, None])
            continue
        status = os.stat(origin)
        stamp.append([name, origin, status.st_mtime_ns, status.st_size])
    return stamp


@dataclass(frozen=True)
class Catalog:
    """What a stamp reads from the metadata DB: the profile catalog as it declares it, and the
    moment relative rules are anchored on (None where no definition has one). Read by itself so
    that a process which never opens the metadata DB (a first run's reading process,
    :mod:`.apart`) can be handed it."""

    sources: list[tuple[Any, ...]]
    relationships: list[tuple[Any, ...]]
    now: str | None

    @classmethod
    def read(cls, ctx: ServiceContext, segments: Sequence[SegmentSource]) -> Catalog:
        with ctx.db.session() as session:
            sources = [
                (s.table_name, s.key_column, s.is_profile)
                for s in DataSourceRepository(session).list()
            ]
            relationships = [astuple(r) for r in RelationshipRepository(session).list()]
        relative = any(RELATIVE in s.definition for s in segments)
        return cls(sources, relationships, ctx.now().isoformat() if relative else None)


def stamp(
    reader: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    catalog: Catalog | None = None,
) -> str | None:
    """The digest of everything a run's member SQL is made of (see the module), read without
    Ibis (the metadata DB's part given as ``catalog``, or read now); None where the profile
    engine is not DuckDB."""
    connection = reader.profiles.duckdb
    if connection is None:
        return None
    if catalog is None:
        catalog = Catalog.read(reader, segments)
    made_of = {
        "segments": [(s.key, s.definition) for s in segments],
        "mapping": [repr(mapping), mapping.payload_columns()],
        "sources": catalog.sources,
        "relationships": catalog.relationships,
        "columns": columns(connection),
        "code": code_stamp(),
        "now": catalog.now,
    }
    text = json.dumps(made_of, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


Compile = Callable[[ServiceContext, Sequence[SegmentSource], FieldMapping], Any]


def _compilers() -> dict[str, Compile]:
    """What compiles each of a run's queries, by purpose: the settled walk's SQL (text, or None
    where the engine cannot give it), a first run's stream's (a dict of texts, or None)."""
    from segsync.services.sync.settled import walk_sql  # they use this module: imported here
    from segsync.services.sync.stream_query import stream_sql

    return {"walk": walk_sql, "stream": stream_sql}


Purpose = Literal["walk", "stream"]


def member_sql(
    reader: ServiceContext,
    export_id: int,
    purpose: Purpose,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
) -> Any:
    """The export's member SQL for ``purpose`` (see :func:`_compilers`): as kept from a run
    before when its :func:`stamp` matches; else compiled and kept for the next run, beside the
    other purpose's when that was kept with the same stamp."""
    return member_sqls(reader, export_id, (purpose,), segments, mapping)[purpose]


def member_sqls(
    reader: ServiceContext,
    export_id: int,
    purposes: Sequence[Purpose],
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    *,
    catalog: Catalog | None = None,
    compiling: bool = True,
) -> dict[str, Any]:
    """:func:`member_sql` of each of ``purposes``, with one stamp and one reading and writing
    of the kept file: at least those purposes, and any other kept with the same stamp (a first
    run that finds the walk's SQL kept beside its stream's need not compile it). ``catalog``:
    the stamp's part from the metadata DB, read already. Not ``compiling``: only what was kept
    (compiling may read the metadata DB, which a reading process never opens)."""
    digest = stamp(reader, segments, mapping, catalog)
    if not compiling:
        return _kept(reader, export_id, digest) if digest is not None else {}
    compilers = _compilers()
    if digest is None:
        return {purpose: compilers[purpose](reader, segments, mapping) for purpose in purposes}
    kept = _kept(reader, export_id, digest)
    path = _path(reader, export_id)
    missing = [purpose for purpose in purposes if purpose not in kept]
    if not missing:
        return kept
    for purpose in missing:
        kept[purpose] = compilers[purpose](reader, segments, mapping)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"stamp": digest, "sql": kept}), encoding="utf-8")
        os.replace(partial, path)
    except OSError as err:
        log.warning("could not keep the run's compiled SQL in %s: %s", path, err)
    return kept


def _path(reader: ServiceContext, export_id: int) -> Path:
    return reader.settings.data_dir / "cache" / "run-sql" / f"{export_id}.json"


def _kept(reader: ServiceContext, export_id: int, digest: str) -> dict[str, Any]:
    """The SQL kept for the export with the stamp ``digest``, by purpose ({}: none)."""
    try:
        found = json.loads(_path(reader, export_id).read_text(encoding="utf-8"))
        if found["stamp"] == digest:
            return dict(found["sql"])
    except (OSError, ValueError, TypeError, KeyError):
        pass  # none kept yet, or unreadable: compiled by the caller
    return {}


def prepare(ctx: ServiceContext, export_id: int) -> None:
    """Compile and keep the export's run SQL now, where it is not kept already: when the export
    is saved, so that its first run starts without Ibis. Only on DuckDB: other engines keep
    none, so nothing is compiled (nor the engine opened) for them here. Nothing fails here —
    an export without a connection, segments the profiles cannot answer yet — the run
    compiles its SQL then."""
    from segsync.services.sync.read import profile_reader
    from segsync.services.sync.target import load_target
    from segsync.storage.repositories.exports import ExportRepository

    if not ctx.settings.profiles_on_duckdb:
        return  # only DuckDB's SQL is kept: nothing to compile ahead elsewhere
    try:
        with ctx.db.session() as session:
            target = load_target(session, ExportRepository(session).get(export_id))
        with profile_reader(ctx) as reader:
            member_sqls(reader, export_id, ("stream", "walk"), target.segments, target.mapping)
    except Exception as err:  # the run compiles it: nothing is lost but its start-up time
        log.info("export %s: its run SQL is left for its first run to compile (%s)", export_id, err)
