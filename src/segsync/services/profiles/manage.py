"""Profile use cases: import files, register tables read in place, load sample data. Relating
tables is :mod:`~segsync.services.profiles.relationships`; the schema and the catalog are
:mod:`~segsync.services.profiles.tables` (all importable from here too).

The *profile table* is the unified customer table (one row per customer); its key is the
profile id. There is exactly one once anything is imported or registered with ``profile=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segsync.domain.catalog import AttrType, Relationship
from segsync.domain.names import did_you_mean
from segsync.domain.permissions import Action, require
from segsync.errors import Conflict, InputError
from segsync.services.context import ServiceContext
from segsync.services.profiles.relationships import describe as describe
from segsync.services.profiles.relationships import parse_column_ref as parse_column_ref
from segsync.services.profiles.relationships import relate as relate
from segsync.services.profiles.relationships import relationship_check
from segsync.services.profiles.tables import NO_PROFILE_TABLE as NO_PROFILE_TABLE
from segsync.services.profiles.tables import SchemaReport as SchemaReport
from segsync.services.profiles.tables import TableSchema as TableSchema
from segsync.services.profiles.tables import catalog as catalog
from segsync.services.profiles.tables import schema as schema
from segsync.storage.repositories.profiles import (
    DataSourceRecord,
    DataSourceRepository,
    FileFingerprint,
    RelationshipRepository,
)

if (
    TYPE_CHECKING
):  # the import modules load Arrow, which reading the catalog (every run) never needs
    from segsync.profiles.importer import ImportResult

Progress = Callable[[int, int], None]
IN_PLACE_FORMAT = "table"
"""The data-source format of a table registered to be read in place (no file behind it)."""


@dataclass(frozen=True)
class ImportReport:
    """What ``import_profiles`` (or ``register_table``: format ``table``, no source) did.
    ``previous_profile_table`` is set when the profile mark moved to this table from another."""

    table: str
    rows: int
    columns: dict[str, AttrType]
    key: str | None
    is_profile: bool
    format: str
    source: str | None
    previous_profile_table: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as the CLI's and API's JSON show it."""
        return {
            "table": self.table,
            "rows": self.rows,
            "key": self.key,
            "is_profile": self.is_profile,
            "format": self.format,
            "source": self.source,
            "attributes": {name: kind.value for name, kind in self.columns.items()},
            "previous_profile_table": self.previous_profile_table,
        }


@dataclass(frozen=True)
class SampleReport:
    customers: int
    orders: int
    seed: int


def import_profiles(
    ctx: ServiceContext,
    path: str | Path,
    table: str,
    *,
    key: str | None = None,
    profile: bool = False,
    replace: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV/TSV/Parquet/JSON Lines file into ``table`` and record it as a data source.

    ``profile=True`` makes ``table`` the profile table (``key`` required: the profile id).
    While another table is the profile table this is refused, unless ``replace=True``, which
    moves the mark (the old table stays, as a related table). Re-importing a table with
    ``replace=True`` keeps its profile mark and, when ``key`` is omitted, its key.
    Administrators only (R2: viewers and contributors change no data sources).
    """
    require(ctx.actor, Action.MANAGE_PROFILES)
    ctx.profiles.check_writable(table)  # before anything: never one of segsync's own tables
    path = Path(path)
    current, previous_profile, relationships = _claim(ctx, table, profile, replace)
    is_profile = profile or (current is not None and current.is_profile)
    if key is None and current is not None and replace:
        key = current.key_column
    if is_profile and key is None:
        raise InputError(
            f"the profile table {table!r} needs a key: add --key COLUMN (the profile id)"
        )
    # Fingerprint first: it describes the file as it was when we read it (or earlier).
    from segsync.profiles.readers import fingerprint

    print_ = fingerprint(path) if path.is_file() else None
    result = ctx.profiles.import_file(
        path,
        table,
        key=key,
        replace=replace,
        progress=progress,
        check=relationship_check(ctx, table, relationships),
    )
    file_fp = (
        FileFingerprint(size=print_.size, mtime=print_.mtime, sha256=print_.sha256)
        if print_ is not None
        else None
    )
    _record(ctx, result, is_profile=is_profile, fingerprint=file_fp)
    return ImportReport(
        table=table,
        rows=result.rows,
        columns=result.columns,
        key=key,
        is_profile=is_profile,
        format=result.format,
        source=str(path.resolve()),
        previous_profile_table=previous_profile,
    )


def _claim(
    ctx: ServiceContext, table: str, profile: bool, replace: bool
) -> tuple[DataSourceRecord | None, str | None, list[Relationship]]:
    """``table``'s current record, the table losing the profile mark to it (if any) and the
    relationships. Taking the mark from another table needs ``replace``."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session)
        current = sources.find(table)
        profile_source = sources.profile()
        relationships = RelationshipRepository(session).list()
    previous = None
    if profile and profile_source is not None and profile_source.table_name != table:
        if not replace:
            raise Conflict(
                f"{profile_source.table_name!r} is already the profile table and there is "
                f"exactly one; add --replace to make {table!r} the profile table instead"
            )
        previous = profile_source.table_name
    return current, previous, relationships


def register_table(
    ctx: ServiceContext,
    table: str,
    *,
    key: str | None = None,
    profile: bool = False,
    replace: bool = False,
) -> ImportReport:
    """Record a table that already exists in the profile engine as a data source read in place
    (format ``table``): nothing is copied, segments query it where it is. Administrators only.

    ``key``, ``profile`` and ``replace`` mean what they mean for :func:`import_profiles`; the
    key is checked (exists, never empty, unique) as imports check it. Registering again updates
    the record, keeping the profile mark and, when ``key`` is omitted, the key. The scheduled
    refresh has nothing to re-read for such a source (no file).
    """
    require(ctx.actor, Action.MANAGE_PROFILES)
    engine = ctx.profiles
    engine.own.refuse(table)
    tables = engine.list_tables()
    if table not in tables:
        hint = did_you_mean(table, tables)
        raise InputError(
            f"no table {table!r} in the profile engine ({engine.name}){hint}; tables there: "
            f"{', '.join(tables) or 'none'}. Create it in that database first, or import a file"
        )
    current, previous_profile, relationships = _claim(ctx, table, profile, replace)
    is_profile = profile or (current is not None and current.is_profile)
    if key is None and current is not None:
        key = current.key_column
    if is_profile and key is None:
        raise InputError(
            f"the profile table {table!r} needs a key: add --key COLUMN (the profile id)"
        )
    if key is not None:
        engine.check_key(table, key)
    info = engine.table_info(table)
    relationship_check(ctx, table, relationships)(info)
    rows = engine.row_count(table)
    with ctx.db.session() as session:
        DataSourceRepository(session).save(
            table_name=table,
            source_path=None,
            format=IN_PLACE_FORMAT,
            key_column=key,
            is_profile=is_profile,
            fingerprint=None,
            row_count=rows,
            imported_at=ctx.now(),
        )
    return ImportReport(
        table=table,
        rows=rows,
        columns=dict(info.columns),
        key=key,
        is_profile=is_profile,
        format=IN_PLACE_FORMAT,
        source=None,
        previous_profile_table=previous_profile,
    )


def _record(
    ctx: ServiceContext,
    result: ImportResult,
    *,
    is_profile: bool,
    fingerprint: FileFingerprint | None,
) -> DataSourceRecord:
    with ctx.db.session() as session:
        return DataSourceRepository(session).save(
            table_name=result.table,
            source_path=str(Path(result.source).resolve()) if result.source else None,
            format="sample" if result.format == "arrow" else result.format,
            key_column=result.key,
            is_profile=is_profile,
            fingerprint=fingerprint,
            row_count=result.rows,
            imported_at=ctx.now(),
        )


def load_sample(ctx: ServiceContext, *, profiles: int = 10_000, seed: int = 42) -> SampleReport:
    """Generate sample customers and orders, import them (customers as the profile table,
    replacing earlier sample data) and relate ``orders.CustomerId → customers.CustomerId``.
    Administrators only."""
    require(ctx.actor, Action.MANAGE_PROFILES)
    if profiles < 1:
        raise InputError(f"--profiles must be at least 1 (got {profiles})")
    with ctx.db.session() as session:
        profile_source = DataSourceRepository(session).profile()
        relationships = RelationshipRepository(session).list()
    if profile_source is not None and profile_source.table_name != "customers":
        raise Conflict(
            f"{profile_source.table_name!r} is already the profile table; sample data would "
            "make 'customers' the profile table. Use a fresh --data-dir for sample data"
        )
    from segsync.profiles.sample import generate_sample

    customers, orders = generate_sample(profiles, seed, today=ctx.now().date())
    engine = ctx.profiles
    for data, table, key, is_profile in (
        (customers, "customers", "CustomerId", True),
        (orders, "orders", "OrderId", False),
    ):
        result = engine.import_arrow(
            data, table, key=key, replace=True, check=relationship_check(ctx, table, relationships)
        )
        _record(ctx, result, is_profile=is_profile, fingerprint=None)
    relate(ctx, "orders", "CustomerId", "customers", "CustomerId")
    return SampleReport(customers=customers.num_rows, orders=orders.num_rows, seed=seed)
