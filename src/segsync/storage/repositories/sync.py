"""The sync state of an export: what the destination acknowledged (docs/design.md "Sync state is the
checkpoint"). Per export: every acknowledged contact's email and payload hash, and every list
membership segsync created (by segment id).

Write-ahead intents: before a batch leaves, the contacts and memberships it may create are
recorded as *pending* (:meth:`SyncStateRepository.record_intents`); the acknowledgement turns
them into known rows. A pending row survives any number of crashes: a pending membership is
"maybe on the list" until a later run confirms it (sends it again) or removes it. A pending
contact that was never acknowledged has an empty payload hash, which no real hash equals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from segsync.storage.models.sync import SyncContact, SyncMembership

NO_HASH = ""
"""The payload hash of a contact only intended (sent, never acknowledged)."""

# SQLite allows 32,766 bound parameters per statement; stay well below on every dialect.
_CHUNK = 500


class SyncStateRepository:
    """Read and write one export's sync state. Writes are upserts, so committing the same
    acknowledged batch twice (a resumed run resending its batch in flight) is harmless."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def hashes(self, export_id: int) -> dict[str, str]:
        """email → payload hash of every acknowledged contact (a contact only intended, never
        acknowledged, is left out)."""
        query = (
            select(SyncContact.email, SyncContact.payload_hash)
            .where(SyncContact.export_id == export_id, SyncContact.payload_hash != NO_HASH)
            .execution_options(yield_per=10_000)
        )
        return {email: digest for email, digest in self.session.execute(query)}

    def memberships(self, export_id: int, *, pending: bool = False) -> set[tuple[int, str]]:
        """``(segment_id, email)`` of every membership segsync created for the export, or with
        ``pending=True`` of every membership a batch may have created without an answer yet."""
        query = (
            select(SyncMembership.segment_id, SyncMembership.email)
            .where(SyncMembership.export_id == export_id, SyncMembership.pending == pending)
            .execution_options(yield_per=10_000)
        )
        return {(int(segment_id), email) for segment_id, email in self.session.execute(query)}

    def record_intents(
        self,
        export_id: int,
        emails: Iterable[str],
        memberships: Iterable[tuple[int, str]],
        *,
        now: datetime,
    ) -> None:
        """Write-ahead: the contacts and memberships a batch about to leave may create, as
        pending rows. Rows already there (known or pending) are left as they are."""
        contacts = [
            {
                "export_id": export_id,
                "email": email,
                "payload_hash": NO_HASH,
                "contact_id": None,
                "synced_at": now,
                "pending": True,
            }
            for email in dict.fromkeys(emails)
        ]
        if contacts:
            statement = self._insert(SyncContact).on_conflict_do_nothing(
                index_elements=["export_id", "email"]
            )
            self.session.connection().execute(statement, contacts)
        rows = [
            {"export_id": export_id, "segment_id": segment_id, "email": email, "pending": True}
            for segment_id, email in dict.fromkeys(memberships)
        ]
        if rows:
            statement = self._insert(SyncMembership).on_conflict_do_nothing(
                index_elements=["export_id", "segment_id", "email"]
            )
            self.session.connection().execute(statement, rows)

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
                "pending": False,
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
                "pending": False,
            },
        )
        # One statement executed for many rows: compiled once and cached, sent in batches.
        self.session.connection().execute(statement, rows)

    def record_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Record acknowledged memberships (a pending one becomes known)."""
        rows = [
            {"export_id": export_id, "segment_id": segment_id, "email": email, "pending": False}
            for segment_id, email in dict.fromkeys(memberships)
        ]
        if not rows:
            return
        statement = self._insert(SyncMembership).on_conflict_do_update(
            index_elements=["export_id", "segment_id", "email"], set_={"pending": False}
        )
        self.session.connection().execute(statement, rows)

    def remove_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Forget memberships the destination confirmed removed or absent (known or pending)."""
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
        recorded = self.memberships(export_id) | self.memberships(export_id, pending=True)
        forgotten = {e for s, e in recorded if s == segment_id} - set(kept)
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
