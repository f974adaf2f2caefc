"""Workers' registrations and heartbeats (the ``workers`` table)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segsync.storage.models.workers import Worker


@dataclass(frozen=True)
class WorkerRecord:
    """A registered worker: ``id`` is its lease-owner prefix ``host:pid:uuid``."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    run_id: int | None


def _record(row: Worker) -> WorkerRecord:
    return WorkerRecord(row.id, row.host, row.pid, row.started_at, row.heartbeat_at, row.run_id)


class WorkerRepository:
    """Register, heartbeat, list and remove workers."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def register(self, worker_id: str, *, host: str, pid: int, now: datetime) -> None:
        self.session.add(
            Worker(id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now, run_id=None)
        )
        self.session.flush()

    def heartbeat(self, worker_id: str, *, now: datetime, run_id: int | None) -> bool:
        """Refresh the worker's heartbeat (and the run it is on); False if it is not registered
        (someone pruned it: the caller registers again)."""
        result = self.session.execute(
            update(Worker)
            .where(Worker.id == worker_id)
            .values(heartbeat_at=now, run_id=run_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def remove(self, worker_id: str) -> None:
        self.session.execute(delete(Worker).where(Worker.id == worker_id))

    def list(self) -> builtins.list[WorkerRecord]:
        """Every registered worker, newest heartbeat first."""
        rows = self.session.scalars(select(Worker).order_by(Worker.heartbeat_at.desc()))
        return [_record(row) for row in rows]

    def prune(self, *, stale_before: datetime) -> int:
        """Delete workers whose heartbeat is older than ``stale_before``; return how many."""
        result = self.session.execute(delete(Worker).where(Worker.heartbeat_at < stale_before))
        return int(getattr(result, "rowcount", 0) or 0)
