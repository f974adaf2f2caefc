"""Profile use cases: import files, register tables read in place, relate tables, describe the
schema, load sample data.

The *profile table* is the unified customer table (one row per customer); its key is the
profile id. There is exactly one once anything is imported or registered with ``profile=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from segsync.domain.catalog import AttrType, Catalog, Relationship, TableInfo
from segsync.domain.permissions import Action, require
from segsync.errors import Conflict, InputError
from segsync.profiles.importer import ImportResult
from segsync.profiles.readers import fingerprint
from segsync.profiles.sample import generate_sample
from segsync.services.context import ServiceContext
from segsync.storage.repositories.profiles import (
    DataSourceRecord,
    DataSourceRepository,
    FileFingerprint,
    RelationshipRepository,
)

Progress = Callable[[int, int], None]
IN_PLACE_FORMAT = "table"
"""The data-source format of a table registered to be read in place (no file behind it)."""
NO_PROFILE_TABLE = (
    "no profile table yet: run `segsync profiles import FILE --table NAME --key COLUMN "
    "--profile`, `segsync profiles register TABLE --key COLUMN --profile` or "
    "`segsync profiles sample`"
)


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
class TableSchema:
    name: str
    is_profile: bool
    key: str | None
    source: str | None
    format: str
    row_count: int | None
    imported_at: datetime
    columns: dict[str, AttrType]


@dataclass(frozen=True)
class SchemaReport:
    profile_table: str | None
    tables: list[TableSchema]
    relationships: list[Relationship] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_table": self.profile_table,
            "tables": [
                {
                    "name": t.name,
                    "is_profile": t.is_profile,
                    "key": t.key,
                    "source": t.source,
                    "format": t.format,
                    "row_count": t.row_count,
                    "imported_at": t.imported_at.isoformat(),
                    "attributes": [{"name": c, "type": k.value} for c, k in t.columns.items()],
                }
                for t in self.tables
            ],
            "relationships": [_relationship_dict(r) for r in self.relationships],
        }


@dataclass(frozen=True)
class SampleReport:
    customers: int
    orders: int
    seed: int


def _relationship_dict(rel: Relationship) -> dict[str, str]:
    return {
        "child": f"{rel.child_table}.{rel.child_column}",
        "parent": f"{rel.parent_table}.{rel.parent_column}",
    }


def describe(rel: Relationship) -> str:
    return f"{rel.child_table}.{rel.child_column} → {rel.parent_table}.{rel.parent_column}"


def _relationship_check(
    ctx: ServiceContext, table: str, relationships: list[Relationship]
) -> Callable[[TableInfo], None]:
    """Refuse new data for ``table`` that would break a declared relationship."""
    engine = ctx.profiles

    def check(info: TableInfo) -> None:
        for rel in relationships:
            for side_table, column, other_table, other_column in (
                (rel.child_table, rel.child_column, rel.parent_table, rel.parent_column),
                (rel.parent_table, rel.parent_column, rel.child_table, rel.child_column),
            ):
                if side_table != table:
                    continue
                if column not in info.columns:
                    raise InputError(
                        f"the new data for {table!r} has no column {column!r}, which the "
                        f"relationship {describe(rel)} needs; columns are: "
                        f"{', '.join(info.columns)}"
                    )
                if other_table != table and engine.has_table(other_table):
                    other = engine.table_info(other_table).columns.get(other_column)
                    if other is not None and other != info.columns[column]:
                        raise InputError(
                            f"the new {table}.{column} is {info.columns[column].value} but "
                            f"{other_table}.{other_column} is {other.value}: the relationship "
                            f"{describe(rel)} needs the same type"
                        )

    return check


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
    print_ = fingerprint(path) if path.is_file() else None
    result = ctx.profiles.import_file(
        path,
        table,
        key=key,
        replace=replace,
        progress=progress,
        check=_relationship_check(ctx, table, relationships),
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
    tables = engine.list_tables()
    if table not in tables:
        close = get_close_matches(table, tables, n=1) or [
            t for t in tables if t.lower() == table.lower()
        ]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
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
    _relationship_check(ctx, table, relationships)(info)
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


def parse_column_ref(text: str) -> tuple[str, str]:
    """``"orders.CustomerId"`` → ``("orders", "CustomerId")``."""
    table, dot, column = text.partition(".")
    if not dot or not table or not column:
        raise InputError(f"{text!r} is not TABLE.COLUMN (for example orders.CustomerId)")
    return table, column


def relate(
    ctx: ServiceContext, child: str, child_column: str, parent: str, parent_column: str
) -> tuple[Relationship, bool]:
    """Declare that ``child.child_column`` references ``parent.parent_column``.

    Both tables and columns must exist and the columns must have the same attribute type.
    Returns the relationship and whether it is new (declaring it twice is harmless).
    Administrators only.
    """
    require(ctx.actor, Action.MANAGE_PROFILES)
    if child == parent:
        raise InputError(f"cannot relate {child!r} to itself; name two different tables")
    engine = ctx.profiles
    types: list[AttrType] = []
    for table, column in ((child, child_column), (parent, parent_column)):
        columns = list(engine.table(table).columns)
        if column not in columns:
            raise InputError(
                f"column {column!r} not found in table {table!r}; columns are: {', '.join(columns)}"
            )
        kind = engine.table_info(table).columns.get(column)
        if kind is None:
            raise InputError(f"{table}.{column} has a type segsync cannot compare")
        types.append(kind)
    if types[0] != types[1]:
        raise InputError(
            f"cannot relate {child}.{child_column} ({types[0].value}) to "
            f"{parent}.{parent_column} ({types[1].value}): the types differ"
        )
    rel = Relationship(child, child_column, parent, parent_column)
    with ctx.db.session() as session:
        created = RelationshipRepository(session).add(rel, now=ctx.now())
    return rel, created


def schema(ctx: ServiceContext) -> SchemaReport:
    """Every imported table with its attributes, types and row count, and the relationships."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
        relationships = RelationshipRepository(session).list()
    engine = ctx.profiles
    tables = []
    for source in sources:
        exists = engine.has_table(source.table_name)
        info = engine.table_info(source.table_name, with_count=True) if exists else None
        tables.append(
            TableSchema(
                name=source.table_name,
                is_profile=source.is_profile,
                key=source.key_column,
                source=source.source_path,
                format=source.format,
                row_count=info.row_count if info else None,
                imported_at=source.imported_at,
                columns=dict(info.columns) if info else {},
            )
        )
    tables.sort(key=lambda t: (not t.is_profile, t.name))
    profile = next((t.name for t in tables if t.is_profile), None)
    return SchemaReport(profile_table=profile, tables=tables, relationships=relationships)


def catalog(ctx: ServiceContext) -> Catalog:
    """The profile table, the related tables and relationships, as segments see them."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
        relationships = RelationshipRepository(session).list()
    profile = next((s for s in sources if s.is_profile), None)
    if profile is None or profile.key_column is None:
        raise InputError(NO_PROFILE_TABLE)
    engine = ctx.profiles
    if not engine.has_table(profile.table_name):
        raise InputError(
            f"the profile table {profile.table_name!r} is missing from the profile engine at "
            f"{engine.display_url}; import it again"
        )
    tables = {
        s.table_name: engine.table_info(s.table_name)
        for s in sources
        if engine.has_table(s.table_name)
    }
    return Catalog(
        profile_table=profile.table_name,
        profile_key=profile.key_column,
        tables=tables,
        relationships=[
            r for r in relationships if r.child_table in tables and r.parent_table in tables
        ],
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
    customers, orders = generate_sample(profiles, seed, today=ctx.now().date())
    engine = ctx.profiles
    for data, table, key, is_profile in (
        (customers, "customers", "CustomerId", True),
        (orders, "orders", "OrderId", False),
    ):
        result = engine.import_arrow(
            data, table, key=key, replace=True, check=_relationship_check(ctx, table, relationships)
        )
        _record(ctx, result, is_profile=is_profile, fingerprint=None)
    relate(ctx, "orders", "CustomerId", "customers", "CustomerId")
    return SampleReport(customers=customers.num_rows, orders=orders.num_rows, seed=seed)
