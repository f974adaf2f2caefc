"""What the profile engine holds, as segment validation and the compiler need to know it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AttrType(StrEnum):
    """The attribute types a user sees (S1). Engine types map onto these."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"  # a calendar date or a timestamp
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class TableInfo:
    """One table of the profile engine: its columns (attributes) with their types."""

    name: str
    columns: dict[str, AttrType]
    row_count: int | None = None


@dataclass(frozen=True)
class Relationship:
    """``child.child_column`` references ``parent.parent_column`` (e.g. orders → customers)."""

    child_table: str
    child_column: str
    parent_table: str
    parent_column: str


@dataclass(frozen=True)
class Catalog:
    """The unified profile table (one row per customer, keyed by ``profile_key``), the related
    tables and the declared relationships between them."""

    profile_table: str
    profile_key: str
    tables: dict[str, TableInfo]
    relationships: list[Relationship] = field(default_factory=list)

    @property
    def profile(self) -> TableInfo:
        return self.tables[self.profile_table]

    def relationship_to_profile(self, table: str) -> Relationship | None:
        """The relationship linking ``table`` to the profile table, if one is declared."""
        for rel in self.relationships:
            if rel.child_table == table and rel.parent_table == self.profile_table:
                return rel
            if rel.parent_table == table and rel.child_table == self.profile_table:
                return Relationship(
                    rel.parent_table, rel.parent_column, rel.child_table, rel.child_column
                )
        return None
