"""The run queue's SQL: which queued runs may start, claiming them safely, and the leases of
processing runs (docs/design.md "Scheduling and workers").

Safety of claims, per dialect:

* **SQLite** — :meth:`RunQueueRepository.begin_claims` opens the transaction with
  ``BEGIN IMMEDIATE``: claims of all processes are serialised by SQLite's write lock, so the
  "one run per connection" check and the claim cannot interleave.
* **Postgres** — the candidate run row and its connection row are locked with
  ``FOR UPDATE SKIP LOCKED``: workers on many hosts each take a different run without waiting,
  and two workers never start two runs of one connection (the second skips the locked
  connection, or, once the first committed, sees its processing run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from segsync.domain.runs import RunStatus
from segsync.storage.models.connections import Connection
from segsync.storage.models.exports import Export
from segsync.storage.models.runs import Run
from segsync.storage.repositories.runs import claimable

_QUEUED = RunStatus.QUEUED.value
_PROCESSING = RunStatus.PROCESSING.value


@dataclass(frozen=True)
class Candidate:
    """A queued run that may start now: its export's current connection, and whether dry."""

    run_id: int
    connection_id: int
    dry_run: bool


@dataclass(frozen=True)
class Lease:
    """Who holds a processing run, until when."""

    run_id: int
    owner: str | None
    expires_at: datetime | None
    dry_run: bool


@dataclass(frozen=True)
class BusyRun:
    """The run that holds a connection."""

    id: int
    export_name: str


class RunQueueRepository:
    """Find, lock and claim queued runs; list and release leases of processing runs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def begin_claims(self) -> None:
        """Call first in the claiming transaction: on SQLite it takes the write lock now
        (``BEGIN IMMEDIATE``), so claims of several processes run one after another."""
        if not self._postgres:
            self.session.execute(text("BEGIN IMMEDIATE"))

    def candidates(
        self, *, now: datetime, limit: int = 20, run_id: int | None = None
    ) -> list[Candidate]:
        """Queued runs that are claimable (not held by the scheduler) and due, whose export has
        a connection, and (real runs) whose connection has no processing real run — oldest
        first. ``run_id``: only that run."""
        busy = aliased(Run)
        connection_busy = exists().where(
            busy.status == _PROCESSING,
            busy.dry_run.is_(False),
            busy.connection_id == Export.connection_id,
        )
        query = (
            select(Run.id, Export.connection_id, Run.dry_run)
            .join(Export, Export.id == Run.export_id)
            .where(
                claimable(now),
                Export.connection_id.is_not(None),
                or_(Run.due_at.is_(None), Run.due_at <= now),
                or_(Run.dry_run.is_(True), ~connection_busy),
            )
            .order_by(Run.id)
            .limit(limit)
        )
        if run_id is not None:
            query = query.where(Run.id == run_id)
        return [
            Candidate(int(rid), int(cid), bool(dry))
            for rid, cid, dry in self.session.execute(query)
            if cid is not None
        ]

    def lock_queued(self, run_id: int, *, now: datetime) -> bool:
        """Lock the run if it is still claimable (Postgres: skipping it if another worker holds
        it). False when it is gone, no longer queued, or locked by someone else."""
        query = select(Run.id).where(Run.id == run_id, claimable(now))
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalar(query) is not None

    def lock_connection(self, connection_id: int) -> bool:
        """Postgres: lock the connection's row (skip if another worker is claiming on it), so
        claims on one connection are serialised. SQLite: already serialised; True."""
        if not self._postgres:
            return True
        query = (
            select(Connection.id)
            .where(Connection.id == connection_id)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalar(query) is not None

    def busy_run(self, connection_id: int) -> BusyRun | None:
        """The real run processing on the connection, if any."""
        query = (
            select(Run.id, Run.export_name)
            .where(
                Run.status == _PROCESSING,
                Run.dry_run.is_(False),
                Run.connection_id == connection_id,
            )
            .order_by(Run.id)
            .limit(1)
        )
        row = self.session.execute(query).first()
        return None if row is None else BusyRun(int(row[0]), str(row[1]))

    def connection_busy(self, connection_id: int) -> bool:
        """Whether a real run on the connection is processing."""
        return self.busy_run(connection_id) is not None

    def claim(
        self,
        run_id: int,
        *,
        owner: str,
        expires_at: datetime,
        now: datetime,
        connection_id: int,
    ) -> bool:
        """Queued → processing under ``owner``'s lease (compare-and-set on the status); counts
        one more attempt and keeps the first start time of a run that was queued again."""
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, claimable(now))
            .values(
                status=_PROCESSING,
                started_at=func.coalesce(Run.started_at, now),
                lease_owner=owner,
                lease_expires_at=expires_at,
                attempts=Run.attempts + 1,
                connection_id=connection_id,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def leases(self, *, run_id: int | None = None) -> list[Lease]:
        """The leases of processing runs (oldest run first), or of one run."""
        query = (
            select(Run.id, Run.lease_owner, Run.lease_expires_at, Run.dry_run)
            .where(Run.status == _PROCESSING)
            .order_by(Run.id)
        )
        if run_id is not None:
            query = query.where(Run.id == run_id)
        return [
            Lease(int(rid), owner, expires, bool(dry))
            for rid, owner, expires, dry in self.session.execute(query)
        ]

    def release(self, run_id: int, *, owner: str) -> bool:
        """Processing → queued, lease dropped, so any worker resumes it from its checkpoint.
        False if ``owner`` no longer holds it."""
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == _PROCESSING, Run.lease_owner == owner)
            .values(status=_QUEUED, lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
