"""The profile tables as they stand: the schema of every imported or registered table, and the
catalog segments are compiled against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segsync.domain.catalog import AttrType, Catalog, Relationship
from segsync.errors import InputError, NotFound
from segsync.services.context import ServiceContext
from segsync.storage.repositories.profiles import DataSourceRepository, RelationshipRepository

__all__ = ["NO_PROFILE_TABLE", "SchemaReport", "TableSchema", "catalog", "schema"]

NO_PROFILE_TABLE = (
    "no profile table yet: run `segsync profiles import FILE --table NAME --key COLUMN "
    "--profile`, `segsync profiles register TABLE --key COLUMN --profile` or "
    "`segsync profiles sample`"
)


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


def _relationship_dict(rel: Relationship) -> dict[str, str]:
    return {
        "child": f"{rel.child_table}.{rel.child_column}",
        "parent": f"{rel.parent_table}.{rel.parent_column}",
    }


def schema(ctx: ServiceContext, *, counts: bool = True) -> SchemaReport:
    """Every imported table with its attributes, types and row count (``None`` without
    ``counts``: the segment builder's page does not show them), and the relationships. One
    listing of the engine's tables, then each table's columns (and count)."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
        relationships = RelationshipRepository(session).list()
    engine = ctx.profiles
    present = set(engine.list_tables()) if sources else set()
    tables = []
    for source in sources:
        exists = source.table_name in present
        info = engine.table_info(source.table_name, with_count=counts) if exists else None
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


def profile_attributes(ctx: ServiceContext) -> dict[str, AttrType]:
    """The profile table's attributes and their types, in column order (empty without a
    profile table): one read of its columns, no row counts, no other table."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
    profile = next((s for s in sources if s.is_profile), None)
    if profile is None:
        return {}
    try:
        return dict(ctx.profiles.table_info(profile.table_name).columns)
    except NotFound:
        return {}


def catalog(ctx: ServiceContext) -> Catalog:
    """The profile table, the related tables and relationships, as segments see them."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
        relationships = RelationshipRepository(session).list()
    profile = next((s for s in sources if s.is_profile), None)
    if profile is None or profile.key_column is None:
        raise InputError(NO_PROFILE_TABLE)
    engine = ctx.profiles
    present = set(engine.list_tables())  # one listing, not one per table
    if profile.table_name not in present:
        moved = (
            f" (or, if it was imported before profiles had a schema of their own, move it "
            f"there: ALTER TABLE {profile.table_name} SET SCHEMA {engine.schema})"
            if engine.schema
            else ""
        )
        raise InputError(
            f"the profile table {profile.table_name!r} is missing from the profile engine at "
            f"{engine.display_url}; import it again{moved}"
        )
    tables = {
        s.table_name: engine.table_info(s.table_name) for s in sources if s.table_name in present
    }
    return Catalog(
        profile_table=profile.table_name,
        profile_key=profile.key_column,
        tables=tables,
        relationships=[
            r for r in relationships if r.child_table in tables and r.parent_table in tables
        ],
    )
