"""Data sources (the tables imported into the profile engine) and their relationships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class DataSource(Base):
    """One table of the profile engine and where it came from.

    ``file_size``/``file_mtime``/``file_sha256`` fingerprint the source file so a scheduled
    refresh can tell whether it changed; they are empty for generated (sample) data.
    """

    __tablename__ = "data_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str] = mapped_column(String(128), unique=True)
    source_path: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    key_column: Mapped[str | None] = mapped_column(String(256))
    is_profile: Mapped[bool] = mapped_column(default=False)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_mtime: Mapped[datetime | None]
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    imported_at: Mapped[datetime]


class TableRelationship(Base):
    """``child_table.child_column`` references ``parent_table.parent_column``."""

    __tablename__ = "relationships"
    __table_args__ = (
        UniqueConstraint("child_table", "child_column", "parent_table", "parent_column"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_table: Mapped[str] = mapped_column(String(128))
    child_column: Mapped[str] = mapped_column(String(256))
    parent_table: Mapped[str] = mapped_column(String(128))
    parent_column: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
