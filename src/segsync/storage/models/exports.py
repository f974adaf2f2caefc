"""Exports, the segments each one sends, and the destination lists made for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class Export(Base):
    """What to send where: segments, field mapping (JSON), removal policy, schedule (JSON).

    ``connection_id`` is NULL for a detached export (C7: "No connection")."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    mapping: Mapped[str] = mapped_column(Text)
    removal_policy: Mapped[str] = mapped_column(String(16), default="mirror")
    list_prefix: Mapped[str] = mapped_column(String(100), default="")
    schedule: Mapped[str] = mapped_column(Text, default='{"mode": "with_system"}')
    # When to verify the export's lists (an ExportSchedule; off by default)
    verify_schedule: Mapped[str] = mapped_column(
        Text, default='{"mode": "off"}', server_default='{"mode": "off"}'
    )
    # The blast-radius hold (migration 0010): the share of a list whose removal holds a run,
    # and the factor of growth that does; NULL turns one off. No ORM default: a default would
    # turn an explicit NULL (off) back on. The repository always writes both; the migration's
    # server defaults turned the hold on for the exports that existed before it.
    hold_removals: Mapped[float | None] = mapped_column(Float)
    hold_growth: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ExportSegment(Base):
    """A segment sent by an export, in the order the user chose."""

    __tablename__ = "export_segments"

    export_id: Mapped[int] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(default=0)


class ExportList(Base):
    """The destination list made for one segment of an export (E6), reused on later runs."""

    __tablename__ = "export_lists"

    export_id: Mapped[int] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
