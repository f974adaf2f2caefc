"""What the scheduler writes to the run queue: runs keyed by due time, and holds on them.

A *held* run is Queued but not claimable (see :func:`segsync.storage.repositories.runs.claimable`):
the runs of a system refresh are queued at its start and held while the segments refresh, then
released, or ended Skipped when one of their segments failed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from segsync.domain.runs import RunStatus
from segsync.storage.models.runs import Run
from segsync.storage.repositories.runs import HOLD_PREFIX, RunRecord, RunRepository


class ScheduledRunRepository:
    """Queue scheduled runs idempotently and hold or release them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        export_id: int,
        export_name: str,
        connection_id: int | None,
        actor: str,
        now: datetime,
        due_at: datetime,
        trigger: str = "scheduled",
        hold_owner: str | None = None,
        hold_until: datetime | None = None,
    ) -> RunRecord:
        """A Queued run for the export's due time ``due_at``.

        ``(export_id, due_at)`` is unique: when another scheduler queued that due time first,
        ``IntegrityError`` is raised (at the flush, or when the unit of work commits). Use one
        unit of work per call and treat that error as "already queued". With ``hold_owner``
        (which must start with :data:`HOLD_PREFIX`) the run is held until ``hold_until`` or
        :meth:`release`.
        """
        if hold_owner is not None and not hold_owner.startswith(HOLD_PREFIX):
            raise ValueError(f"hold owner {hold_owner!r} must start with {HOLD_PREFIX!r}")
        return RunRepository(self.session).create(
            export_id=export_id,
            export_name=export_name,
            connection_id=connection_id,
            actor=actor,
            now=now,
            trigger=trigger,
            due_at=due_at,
            lease_owner=hold_owner,
            lease_expires_at=hold_until,
        )

    def latest_due(self, export_id: int) -> datetime | None:
        """The latest due time a run of the export was queued for (its scheduler mark)."""
        return self.session.scalar(select(func.max(Run.due_at)).where(Run.export_id == export_id))

    def held(self, hold_owner: str) -> list[RunRecord]:
        """The Queued runs ``hold_owner`` holds, oldest first."""
        query = (
            select(Run.id)
            .where(Run.status == RunStatus.QUEUED.value, Run.lease_owner == hold_owner)
            .order_by(Run.id)
        )
        runs = RunRepository(self.session)
        return [runs.get(run_id) for run_id in self.session.scalars(query)]

    def extend(self, hold_owner: str, *, until: datetime) -> int:
        """Keep ``hold_owner``'s Queued runs held until ``until``; returns how many."""
        result = self.session.execute(
            update(Run)
            .where(Run.status == RunStatus.QUEUED.value, Run.lease_owner == hold_owner)
            .values(lease_expires_at=until)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    def release(self, run_id: int, hold_owner: str) -> bool:
        """Make a held Queued run claimable; False if it is no longer Queued and held by
        ``hold_owner`` (canceled meanwhile, or the hold expired and a worker took it)."""
        result = self.session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status == RunStatus.QUEUED.value,
                Run.lease_owner == hold_owner,
            )
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
