"""Relationships between profile tables: declaring one (``relate``), naming one, and refusing
new data for a table that would break one.
"""

from __future__ import annotations

from collections.abc import Callable

from segsync.domain.catalog import AttrType, Relationship, TableInfo
from segsync.domain.permissions import Action, require
from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.storage.repositories.profiles import RelationshipRepository

__all__ = ["describe", "parse_column_ref", "relate", "relationship_check"]


def describe(rel: Relationship) -> str:
    return f"{rel.child_table}.{rel.child_column} → {rel.parent_table}.{rel.parent_column}"


def relationship_check(
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
