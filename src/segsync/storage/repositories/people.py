"""What the metadata DB holds about one person, by email ("explain a person"): their contact and
list memberships in every export's sync state, the records runs set aside for them, and their
erasures. Reads only; a fixed number of queries whatever the history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from segsync.storage.models.connections import Connection
from segsync.storage.models.exports import ExportList
from segsync.storage.models.operations import Erasure
from segsync.storage.models.runs import Run, RunReject
from segsync.storage.models.sync import SyncContact, SyncMembership
from segsync.storage.repositories.sync import SyncStateRepository, contact_of_email

REJECTS_SHOWN = 200
"""At most this many set-aside records of one person are read (newest runs first)."""


@dataclass(frozen=True)
class ContactState:
    """The person's contact in one export's sync state. ``pending``: a batch that may have
    created or changed it awaits its answer."""

    export_id: int
    pending: bool
    synced_at: datetime
    contact_id: str | None


@dataclass(frozen=True)
class MembershipState:
    """One list membership segsync created (``pending``: maybe there, not confirmed)."""

    export_id: int
    segment_id: int
    pending: bool


@dataclass(frozen=True)
class PersonReject:
    """A record a run set aside (or the destination refused) for this person."""

    run_id: int
    export_id: int | None
    export_name: str
    at: datetime
    kind: str
    profile_id: str | None
    email: str | None
    reason: str


@dataclass(frozen=True)
class PersonErasure:
    """An erasure of this person at one connection, or the marker that suppresses them."""

    connection_name: str | None
    status: str
    requested_at: datetime
    done_at: datetime | None


class PersonRepository:
    """Reads about one person; ``email`` is trimmed and lower-cased by the caller."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def contacts(self, email: str) -> list[ContactState]:
        SyncStateRepository(self.session).settle_intents()  # intents: pending rows first
        query = select(SyncContact).where(contact_of_email(email))
        return [
            ContactState(row.export_id, row.pending, row.synced_at, row.contact_id)
            for row in self.session.scalars(query.order_by(SyncContact.export_id))
        ]

    def memberships(self, email: str) -> list[MembershipState]:
        SyncStateRepository(self.session).settle_intents()
        query = select(SyncMembership).where(SyncMembership.email == email)
        return [
            MembershipState(row.export_id, row.segment_id, row.pending)
            for row in self.session.scalars(
                query.order_by(SyncMembership.export_id, SyncMembership.segment_id)
            )
        ]

    def list_titles(self, export_ids: Sequence[int]) -> dict[int, dict[int, str]]:
        """export id → segment id → the title of the destination list made for it, for these
        exports, in one query."""
        titles: dict[int, dict[int, str]] = {export_id: {} for export_id in export_ids}
        query = select(ExportList).where(ExportList.export_id.in_(list(export_ids)))
        for row in self.session.scalars(query):
            titles[row.export_id][row.segment_id] = row.title
        return titles

    def rejects(self, email: str, profile_ids: Sequence[str]) -> list[PersonReject]:
        """Set-aside records whose email is this one (compared trimmed and lower-cased, as
        rejects keep the raw value) or whose profile id is one of ``profile_ids``; newest run
        first, at most :data:`REJECTS_SHOWN`."""
        match = func.lower(func.trim(RunReject.email)) == email
        if profile_ids:
            match = or_(match, RunReject.profile_id.in_(list(profile_ids)))
        query = (
            select(RunReject, Run.export_id, Run.export_name, Run.started_at, Run.queued_at)
            .join(Run, Run.id == RunReject.run_id)
            .where(match)
            .order_by(RunReject.run_id.desc(), RunReject.id)
            .limit(REJECTS_SHOWN)
        )
        return [
            PersonReject(
                run_id=row.run_id,
                export_id=export_id,
                export_name=export_name,
                at=started_at or queued_at,
                kind=row.kind,
                profile_id=row.profile_id,
                email=row.email,
                reason=row.reason,
            )
            for row, export_id, export_name, started_at, queued_at in self.session.execute(query)
        ]

    def erasures(self, email: str, digest: str) -> list[PersonErasure]:
        """Erasure rows of this person: pending ones hold the email, done ones and the
        suppression marker only its digest. Newest first."""
        query = (
            select(Erasure, Connection.name)
            .outerjoin(Connection, Connection.id == Erasure.connection_id)
            .where(Erasure.email.in_([email, digest]))
            .order_by(Erasure.requested_at.desc(), Erasure.id.desc())
        )
        return [
            PersonErasure(name, row.status, row.requested_at, row.done_at)
            for row, name in self.session.execute(query)
        ]
