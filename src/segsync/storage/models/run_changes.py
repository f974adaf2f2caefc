"""The change record: what each run changed in the destination, person by person (docs/exports.md
"The change record"). The run page's change log, ``segsync explain`` and ``segsync runs undo``
read it; it is kept for the last ``change_log_runs`` runs of each export."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class RunChange(Base):
    """One change a run made: a membership added or removed, a contact updated, or an item the
    destination refused. ``fields`` is the mapped payload sent (JSON); ``previous`` the mapped
    payload segsync had last sent for the contact before this run (JSON; NULL when the contact
    was new or its earlier values are unknown)."""

    __tablename__ = "run_changes"
    __table_args__ = (
        Index("ix_run_changes_run_email", "run_id", "email"),
        Index("ix_run_changes_export_email", "export_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    export_id: Mapped[int | None]
    segment_id: Mapped[int | None]
    email: Mapped[str] = mapped_column(String(320), index=True)
    profile_id: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(16))  # added | updated | removed | refused
    fields: Mapped[str | None] = mapped_column(Text)
    previous: Mapped[str | None] = mapped_column(Text)
    new_contact: Mapped[bool] = mapped_column(default=False, server_default=false())
    at: Mapped[datetime]
