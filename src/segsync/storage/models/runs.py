"""Runs (the queue and the history) and the records each run set aside."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class Run(Base):
    """One run of an export. A row is the queue entry, the checkpointed progress and the record.

    ``due_at`` + ``export_id`` is unique for scheduled runs so two schedulers enqueue once;
    ``lease_owner``/``lease_expires_at`` say which worker holds a processing run."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("export_id", "due_at"),
        Index("ix_runs_status_queued_at", "status", "queued_at"),
        # Big histories (migrations 0007, 0006): each export's latest run, and its latest successful
        # run's end, read from these indexes alone.
        Index("ix_runs_export_latest", "export_id", "dry_run", "kind", "status", "ended_at"),
        Index("ix_runs_status_export", "status", "dry_run", "kind", "export_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int | None] = mapped_column(
        ForeignKey("exports.id", ondelete="SET NULL"), index=True
    )
    export_name: Mapped[str] = mapped_column(String(200))
    connection_id: Mapped[int | None] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    # sync (a run), verify (read the lists back, report drift) or repair (verify and fix)
    kind: Mapped[str] = mapped_column(String(16), default="sync", server_default="sync")
    actor: Mapped[str] = mapped_column(String(320))
    dry_run: Mapped[bool] = mapped_column(default=False)
    due_at: Mapped[datetime | None]
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    counts: Mapped[str] = mapped_column(Text, default="{}")
    items_total: Mapped[int] = mapped_column(BigInteger, default=0)
    items_done: Mapped[int] = mapped_column(BigInteger, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[str] = mapped_column(Text, default="[]")
    plan: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The blast-radius hold (migration 0010): the verdict on the run's plan and its approval
    hold: Mapped[str | None] = mapped_column(Text)
    # An undo run (kind "undo", migration 0010): the id of the run it reverses
    undo_of: Mapped[int | None] = mapped_column(Integer)


class RunReject(Base):
    """A member the run did not send: an invalid or empty email, or a contact the API refused."""

    __tablename__ = "run_rejects"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # invalid | rejected
    profile_id: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text)
