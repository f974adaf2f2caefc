"""Erasure requests (P4) and the local data about a person that an erasure removes: the sync
state of every export (contacts and list memberships) and the records runs set aside."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from segsync.errors import NotFound
from segsync.storage.models.connections import Connection
from segsync.storage.models.exports import Export
from segsync.storage.models.operations import Erasure
from segsync.storage.models.runs import RunReject
from segsync.storage.models.sync import SyncContact, SyncMembership
from segsync.storage.repositories.export_runs import ExportRunsRepository
from segsync.storage.repositories.run_changes import RunChangeRepository
from segsync.storage.repositories.sync import SyncStateRepository, contact_of_email

PENDING = "pending"
DONE = "done"
FAILED = "failed"
SUPPRESSED = "suppressed"
"""A marker row (no connection, email = ``sha256:<hex>``): never export this person again."""


@dataclass(frozen=True)
class ErasureRecord:
    """One erasure at one connection. ``email`` is the address in clear while ``pending``, and
    only ``sha256:<hex>`` of it once ``done`` (the service replaces it)."""

    id: int
    email: str
    connection_id: int | None
    connection_name: str | None
    requested_by: str
    requested_at: datetime
    status: str
    attempts: int
    last_error: str | None
    done_at: datetime | None


@dataclass(frozen=True)
class ExportState:
    """An export whose sync state holds the person, and the connection that state describes
    (``None`` when that connection no longer exists)."""

    export_id: int
    export_name: str
    connection_id: int | None


@dataclass(frozen=True)
class RemovedState:
    contacts: int
    memberships: int


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class ErasureRepository:
    """Erasure rows and the per-person deletes an erasure needs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ where the person is

    def exports_holding(self, email: str) -> builtins.list[ExportState]:
        """Every export whose sync state holds ``email`` (a contact or a list membership), with
        the connection its sync state describes: the connection of the export's latest started
        run, else its current connection. What intents still hold becomes pending rows first, so
        that a person in a batch a crashed run may have sent is found too."""
        SyncStateRepository(self.session).settle_intents()
        ids = set(
            self.session.scalars(select(SyncContact.export_id).where(contact_of_email(email)))
        )
        ids |= set(
            self.session.scalars(
                select(SyncMembership.export_id).where(SyncMembership.email == email)
            )
        )
        if not ids:
            return []
        runs = ExportRunsRepository(self.session)
        existing = set(self.session.scalars(select(Connection.id)))
        found: builtins.list[ExportState] = []
        rows = self.session.execute(
            select(Export.id, Export.name, Export.connection_id)
            .where(Export.id.in_(ids))
            .order_by(Export.name)
        )
        for export_id, name, current in rows:
            connection_id = runs.state_connection_id(export_id) or current
            found.append(
                ExportState(export_id, name, connection_id if connection_id in existing else None)
            )
        return found

    def connection_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = builtins.list(set(ids))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(Connection.id, Connection.name).where(Connection.id.in_(wanted))
        )
        return {connection_id: name for connection_id, name in rows}

    def remove_sync_state(self, email: str, export_ids: Iterable[int]) -> RemovedState:
        """Delete the person's sync contacts and memberships in these exports."""
        ids = builtins.list(set(export_ids))
        if not ids:
            return RemovedState(0, 0)
        contacts = self.session.execute(
            delete(SyncContact).where(SyncContact.email == email, SyncContact.export_id.in_(ids))
        )
        memberships = self.session.execute(
            delete(SyncMembership).where(
                SyncMembership.email == email, SyncMembership.export_id.in_(ids)
            )
        )
        return RemovedState(_rowcount(contacts), _rowcount(memberships))

    def remove_change_record(self, email: str) -> int:
        """Delete the person's rows of every run's change record (values sent and before)."""
        return RunChangeRepository(self.session).forget_email(email)

    def remove_rejects(self, email: str) -> int:
        """Delete every record a run set aside whose email is ``email`` once trimmed and
        lower-cased (rejects keep the raw value as the source had it)."""
        result = self.session.execute(
            delete(RunReject)
            .where(func.lower(func.trim(RunReject.email)) == email)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    # ------------------------------------------------------------------ erasure rows

    def create(
        self, *, email: str, connection_id: int, requested_by: str, now: datetime
    ) -> ErasureRecord:
        row = Erasure(
            email=email,
            connection_id=connection_id,
            requested_by=requested_by[:320],
            requested_at=now,
            status=PENDING,
            attempts=0,
            last_error=None,
            done_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return self.get(row.id)

    def find_pending(self, email: str, connection_id: int) -> ErasureRecord | None:
        found = self.session.execute(
            _with_names()
            .where(
                Erasure.email == email,
                Erasure.connection_id == connection_id,
                Erasure.status == PENDING,
            )
            .order_by(Erasure.id)
            .limit(1)
        ).first()
        return None if found is None else _record(found[0], found[1])

    def get(self, erasure_id: int) -> ErasureRecord:
        found = self.session.execute(_with_names().where(Erasure.id == erasure_id)).first()
        if found is None:
            raise NotFound(f"no erasure with id {erasure_id}")
        return _record(found[0], found[1])

    def list(self, *, status: str | None = None) -> builtins.list[ErasureRecord]:
        """Newest first, with their connection's name: one query."""
        query = _with_names()
        if status is not None:
            query = query.where(Erasure.status == status)
        query = query.order_by(Erasure.requested_at.desc(), Erasure.id.desc())
        return [_record(row, name) for row, name in self.session.execute(query)]

    def pending_ids(self) -> builtins.list[int]:
        query = select(Erasure.id).where(Erasure.status == PENDING).order_by(Erasure.id)
        return builtins.list(self.session.scalars(query))

    def record_failure(self, erasure_id: int, error: str) -> None:
        """One more failed attempt; the erasure stays pending."""
        self.session.execute(
            update(Erasure)
            .where(Erasure.id == erasure_id, Erasure.status == PENDING)
            .values(attempts=Erasure.attempts + 1, last_error=error)
            .execution_options(synchronize_session=False)
        )

    def complete(self, erasure_id: int, *, email_digest: str, now: datetime) -> bool:
        """Mark it done and replace the clear email by ``email_digest``. False if it was no
        longer pending (another process completed it first)."""
        result = self.session.execute(
            update(Erasure)
            .where(Erasure.id == erasure_id, Erasure.status == PENDING)
            .values(
                status=DONE,
                attempts=Erasure.attempts + 1,
                last_error=None,
                done_at=now,
                email=email_digest,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    # ------------------------------------------------------------------ suppression

    def suppress(self, digest: str, *, requested_by: str, now: datetime) -> bool:
        """Mark the person (by digest) as never to be exported again; False if already so."""
        exists = self.session.scalar(
            select(Erasure.id).where(Erasure.status == SUPPRESSED, Erasure.email == digest)
        )
        if exists is not None:
            return False
        self.session.add(
            Erasure(
                email=digest,
                connection_id=None,
                requested_by=requested_by,
                requested_at=now,
                status=SUPPRESSED,
                attempts=0,
                done_at=now,
            )
        )
        self.session.flush()
        return True

    def suppressed_digests(self) -> frozenset[str]:
        """Digests of everyone forgotten: runs never send them."""
        return frozenset(
            self.session.scalars(select(Erasure.email).where(Erasure.status == SUPPRESSED))
        )

    def lift(self, digest: str) -> int:
        """Allow the person to be exported again; how many markers were removed."""
        result = self.session.execute(
            delete(Erasure)
            .where(Erasure.status == SUPPRESSED, Erasure.email == digest)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


def _with_names() -> Select[Erasure, str | None]:
    """Erasures with their connection's name (``None`` for markers and removed connections)."""
    return select(Erasure, Connection.name).outerjoin(
        Connection, Connection.id == Erasure.connection_id
    )


def _record(row: Erasure, connection_name: str | None) -> ErasureRecord:
    return ErasureRecord(
        id=row.id,
        email=row.email,
        connection_id=row.connection_id,
        connection_name=connection_name,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        done_at=row.done_at,
    )
