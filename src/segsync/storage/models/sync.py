"""The sync state: per export, what the destination acknowledged. It is the run checkpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class SyncContact(Base):
    """A contact the destination acknowledged for an export, with the hash of what was sent."""

    __tablename__ = "sync_contacts"

    export_id: Mapped[int] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    # No index on email alone: readers by email ask export by export (migration 0011)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(128))
    synced_at: Mapped[datetime]
    # True while a batch that may have created or changed the contact awaits its answer
    # (a write-ahead intent); the acknowledgement clears it.
    pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The mapped values last acknowledged (canonical JSON of {"custom": …, "fields": …}): what a
    # run's change record keeps as a contact's previous values (migration 0009).
    payload: Mapped[str | None] = mapped_column(Text)


class SyncMembership(Base):
    """A list membership segsync created for an export (segment's list ∋ email)."""

    __tablename__ = "sync_memberships"

    export_id: Mapped[int] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    # True while a batch that may have added the membership awaits its answer: the membership
    # may exist, so a mirror removes it if the person is no longer in the segment.
    pending: Mapped[bool] = mapped_column(default=False, server_default=false())


class SyncIntent(Base):
    """A write-ahead intent kept whole: what the batches leaving together may create (their
    emails, and their ``(segment id, email)`` memberships, as JSON arrays), in one row written
    before they leave. The acknowledgements that answer those batches delete it; whatever it
    still holds after its run ended or crashed becomes pending rows of :class:`SyncContact` and
    :class:`SyncMembership` (``SyncStateRepository.settle_intents``), as if
    each had been written pending one by one (migration 0012)."""

    __tablename__ = "sync_intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    emails: Mapped[str] = mapped_column(Text)
    memberships: Mapped[str] = mapped_column(Text)
