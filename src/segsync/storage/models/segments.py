"""Segments, their refresh history and their latest member snapshot."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class SegmentStatus(StrEnum):
    """A segment's lifecycle (S4): a saved segment is a draft until its first refresh."""

    DRAFT = "draft"
    ACTIVE = "active"
    FAILED = "failed"


class RefreshStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)  # the definition as JSON text
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.DRAFT.value)
    member_count: Mapped[int | None] = mapped_column(BigInteger)
    last_refreshed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(320))


class SegmentRefresh(Base):
    """One refresh of a segment: when, how it ended, and how membership moved."""

    __tablename__ = "segment_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    member_count: Mapped[int | None] = mapped_column(BigInteger)
    entered: Mapped[int | None] = mapped_column(BigInteger)
    left: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class SegmentSnapshot(Base):
    """The members (profile ids) at the latest successful refresh, zlib-compressed."""

    __tablename__ = "segment_snapshots"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    profile_ids: Mapped[bytes] = mapped_column(LargeBinary)
    member_count: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime]
