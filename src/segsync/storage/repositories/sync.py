"""The sync state of an export: what the destination acknowledged (docs/design.md "Sync state is the
checkpoint"). Per export: every acknowledged contact's email and payload hash, and every list
membership segsync created (by segment id)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from segsync.storage.models.sync import SyncContact, SyncMembership

# SQLite allows 32,766 bound parameters per statement; stay well below on every dialect.
_CHUNK = 500


class SyncStateRepository:
    """Read and write one export's sync state. Writes are upserts, so committing the same
    acknowledged batch twice (a resumed run resending its batch in flight) is harmless."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def hashes(self, export_id: int) -> dict[str, str]:
        """email → payload hash of every acknowledged contact."""
        query = (
            select(SyncContact.email, SyncContact.payload_hash)
            .where(SyncContact.export_id == export_id)
            .execution_options(yield_per=10_000)
        )
        return {email: digest for email, digest in self.session.execute(query)}

    def memberships(self, export_id: int) -> set[tuple[int, str]]:
        """``(segment_id, email)`` of every membership segsync created for the export."""
        query = (
            select(SyncMembership.segment_id, SyncMembership.email)
            .where(SyncMembership.export_id == export_id)
            .execution_options(yield_per=10_000)
        )
        return {(int(segment_id), email) for segment_id, email in self.session.execute(query)}

    def counts(self, export_id: int) -> tuple[int, int]:
        """How many contacts and memberships the state holds."""
        contacts = self.session.scalar(
            select(func.count()).where(SyncContact.export_id == export_id)
        )
        members = self.session.scalar(
            select(func.count()).where(SyncMembership.export_id == export_id)
        )
        return int(contacts or 0), int(members or 0)

    def record_contacts(
        self,
        export_id: int,
        hashes: Mapping[str, str],
        *,
        now: datetime,
        contact_ids: Mapping[str, str | None] | None = None,
    ) -> None:
        """Upsert acknowledged contacts (email → payload hash, and the destination's id)."""
        ids = contact_ids or {}
        rows = [
            {
                "export_id": export_id,
                "email": email,
                "payload_hash": digest,
                "contact_id": ids.get(email),
                "synced_at": now,
            }
            for email, digest in hashes.items()
        ]
        if not rows:
            return
        insert = self._insert(SyncContact)
        statement = insert.on_conflict_do_update(
            index_elements=["export_id", "email"],
            set_={
                "payload_hash": insert.excluded.payload_hash,
                "contact_id": func.coalesce(insert.excluded.contact_id, SyncContact.contact_id),
                "synced_at": insert.excluded.synced_at,
            },
        )
        # One statement executed for many rows: compiled once and cached, sent in batches.
        self.session.connection().execute(statement, rows)

    def record_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Insert memberships (already present ones are left as they are)."""
        rows = [
            {"export_id": export_id, "segment_id": segment_id, "email": email}
            for segment_id, email in dict.fromkeys(memberships)
        ]
        if not rows:
            return
        statement = self._insert(SyncMembership).on_conflict_do_nothing(
            index_elements=["export_id", "segment_id", "email"]
        )
        self.session.connection().execute(statement, rows)

    def remove_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Forget memberships the destination confirmed removed."""
        pairs = list(dict.fromkeys(memberships))
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            if self.session.get_bind().dialect.name == "sqlite":
                condition: Any = or_(
                    *(
                        and_(SyncMembership.segment_id == s, SyncMembership.email == e)
                        for s, e in chunk
                    )
                )
            else:
                condition = tuple_(SyncMembership.segment_id, SyncMembership.email).in_(chunk)
            self.session.execute(
                delete(SyncMembership).where(SyncMembership.export_id == export_id, condition)
            )

    def forget_segment(self, export_id: int, segment_id: int, keep: Iterable[str] = ()) -> None:
        """Forget the memberships of one segment's list (the list is gone), but those of the
        emails in ``keep`` (made on the list that replaced it)."""
        condition = and_(
            SyncMembership.export_id == export_id, SyncMembership.segment_id == segment_id
        )
        kept = list(dict.fromkeys(keep))
        if not kept:
            self.session.execute(delete(SyncMembership).where(condition))
            return
        forgotten = {e for s, e in self.memberships(export_id) if s == segment_id} - set(kept)
        self.remove_memberships(export_id, [(segment_id, email) for email in forgotten])

    def clear(self, export_id: int) -> None:
        """Forget the export's whole sync state (the next run sends everyone again)."""
        self.session.execute(delete(SyncMembership).where(SyncMembership.export_id == export_id))
        self.session.execute(delete(SyncContact).where(SyncContact.export_id == export_id))

    def _insert(self, model: type[SyncContact] | type[SyncMembership]) -> Any:
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)
