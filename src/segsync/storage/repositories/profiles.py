"""Data sources and relationships of the profile engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segsync.domain.catalog import Relationship
from segsync.errors import NotFound
from segsync.storage.models.profiles import DataSource, TableRelationship


@dataclass(frozen=True)
class FileFingerprint:
    """What identifies a version of a source file: size, modification time, SHA-256."""

    size: int
    mtime: datetime
    sha256: str


@dataclass(frozen=True)
class DataSourceRecord:
    table_name: str
    source_path: str | None
    format: str
    key_column: str | None
    is_profile: bool
    fingerprint: FileFingerprint | None
    row_count: int
    imported_at: datetime


def _record(row: DataSource) -> DataSourceRecord:
    fingerprint = None
    if row.file_size is not None and row.file_mtime is not None and row.file_sha256:
        fingerprint = FileFingerprint(row.file_size, row.file_mtime, row.file_sha256)
    return DataSourceRecord(
        table_name=row.table_name,
        source_path=row.source_path,
        format=row.format,
        key_column=row.key_column,
        is_profile=row.is_profile,
        fingerprint=fingerprint,
        row_count=row.row_count,
        imported_at=row.imported_at,
    )


class DataSourceRepository:
    """The tables imported into the profile engine. At most one is the profile table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, table_name: str) -> DataSourceRecord | None:
        row = self._row(table_name)
        return None if row is None else _record(row)

    def get(self, table_name: str) -> DataSourceRecord:
        record = self.find(table_name)
        if record is None:
            raise NotFound(f"no data source named {table_name!r}")
        return record

    def list(self) -> list[DataSourceRecord]:
        rows = self.session.scalars(select(DataSource).order_by(DataSource.table_name))
        return [_record(row) for row in rows]

    def profile(self) -> DataSourceRecord | None:
        """The unified profile table's record, if one is marked."""
        row = self.session.scalars(select(DataSource).where(DataSource.is_profile)).first()
        return None if row is None else _record(row)

    def save(
        self,
        *,
        table_name: str,
        source_path: str | None,
        format: str,
        key_column: str | None,
        is_profile: bool,
        fingerprint: FileFingerprint | None,
        row_count: int,
        imported_at: datetime,
    ) -> DataSourceRecord:
        """Insert or replace the record of ``table_name``. Marking it the profile table
        unmarks any other, so there is never more than one."""
        if is_profile:
            self.session.execute(
                update(DataSource)
                .where(DataSource.table_name != table_name, DataSource.is_profile)
                .values(is_profile=False)
            )
        row = self._row(table_name)
        if row is None:
            row = DataSource(table_name=table_name)
            self.session.add(row)
        row.source_path = source_path
        row.format = format
        row.key_column = key_column
        row.is_profile = is_profile
        row.file_size = fingerprint.size if fingerprint else None
        row.file_mtime = fingerprint.mtime if fingerprint else None
        row.file_sha256 = fingerprint.sha256 if fingerprint else None
        row.row_count = row_count
        row.imported_at = imported_at
        self.session.flush()
        return _record(row)

    def delete(self, table_name: str) -> None:
        self.session.execute(delete(DataSource).where(DataSource.table_name == table_name))

    def _row(self, table_name: str) -> DataSource | None:
        return self.session.scalars(
            select(DataSource).where(DataSource.table_name == table_name)
        ).first()


class RelationshipRepository:
    """Declared relationships between tables of the profile engine."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def list(self) -> list[Relationship]:
        rows = self.session.scalars(select(TableRelationship).order_by(TableRelationship.id))
        return [
            Relationship(r.child_table, r.child_column, r.parent_table, r.parent_column)
            for r in rows
        ]

    def add(self, relationship: Relationship, *, now: datetime) -> bool:
        """Record ``relationship``; return False when it was already declared."""
        if self._row(relationship) is not None:
            return False
        self.session.add(
            TableRelationship(
                child_table=relationship.child_table,
                child_column=relationship.child_column,
                parent_table=relationship.parent_table,
                parent_column=relationship.parent_column,
                created_at=now,
            )
        )
        self.session.flush()
        return True

    def remove(self, relationship: Relationship) -> None:
        row = self._row(relationship)
        if row is None:
            raise NotFound(
                f"no relationship {relationship.child_table}.{relationship.child_column} → "
                f"{relationship.parent_table}.{relationship.parent_column}"
            )
        self.session.delete(row)
        self.session.flush()

    def _row(self, rel: Relationship) -> TableRelationship | None:
        return self.session.scalars(
            select(TableRelationship).where(
                TableRelationship.child_table == rel.child_table,
                TableRelationship.child_column == rel.child_column,
                TableRelationship.parent_table == rel.parent_table,
                TableRelationship.parent_column == rel.parent_column,
            )
        ).first()
