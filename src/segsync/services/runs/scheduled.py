"""Queueing scheduled runs (E8, C3, T2): one run per export and due time, acting as the
connection's export user.

:func:`enqueue_runs` is what the scheduler calls for each due time. The run is keyed by
``(export, due time)``, unique in the metadata DB, so a run another scheduler queued first is
reported rather than queued twice. When the connection's export user was removed or is no
longer an administrator (C3), the run is still recorded — and ends **Failure** at once with the
reason, so it shows in the history and administrators are notified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from segsync.domain.permissions import Actor, Role
from segsync.domain.runs import RunStatus
from segsync.domain.schedule import due_key
from segsync.errors import FatalError, SegsyncError
from segsync.services.connections.manage import export_actor
from segsync.services.context import ServiceContext
from segsync.services.sync.finish import notify_run_end
from segsync.storage.repositories.exports import ExportRecord
from segsync.storage.repositories.runs import RunRepository
from segsync.storage.repositories.scheduled_runs import ScheduledRunRepository

__all__ = ["HOLD_SECONDS", "SCHEDULER_ACTOR", "TRIGGER", "QueuedRun", "enqueue_runs"]

log = logging.getLogger(__name__)

HOLD_SECONDS = 30 * 60
"""How long a system refresh holds its runs; extended after each segment refreshes."""
TRIGGER = "scheduled"
"""The ``trigger`` of every run the scheduler queues."""
SCHEDULER_ACTOR = Actor(user_id=None, email="scheduler", role=Role.ADMINISTRATOR)
"""Who the scheduler's own work (re-imports, segment refreshes) is recorded as."""


@dataclass(frozen=True)
class QueuedRun:
    """A run the scheduler queued, in its state when the tick ended (``queued``, or
    ``skipped``/``failure`` with ``message``)."""

    export_name: str
    run_id: int
    due_at: datetime
    status: RunStatus
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "export": self.export_name,
            "run_id": self.run_id,
            "due_at": due_key(self.due_at),
            "status": self.status.value,
            "message": self.message,
        }


def enqueue_runs(
    ctx: ServiceContext, exports: list[ExportRecord], due: datetime, *, hold: str | None
) -> tuple[list[QueuedRun], list[str]]:
    """Queue one run per export for ``due`` (exports must have a connection); returns the runs
    queued and the names of exports whose run for ``due`` already existed. With ``hold``
    (``hold:...``) the runs are held for :data:`HOLD_SECONDS` (see
    :class:`~segsync.storage.repositories.scheduled_runs.ScheduledRunRepository`)."""
    actors: dict[int, Actor | FatalError] = {}
    queued: list[QueuedRun] = []
    taken: list[str] = []
    for record in exports:
        assert record.connection_id is not None
        if record.connection_id not in actors:
            try:
                actors[record.connection_id] = export_actor(ctx, record.connection_id)
            except FatalError as err:
                actors[record.connection_id] = err
            except SegsyncError as err:
                actors[record.connection_id] = FatalError(err.message)
        actor = actors[record.connection_id]
        item = _enqueue_one(ctx, record, due, actor, hold)
        if item is None:
            taken.append(record.name)
        else:
            queued.append(item)
    return queued, taken


def _enqueue_one(
    ctx: ServiceContext,
    record: ExportRecord,
    due: datetime,
    actor: Actor | FatalError,
    hold: str | None,
) -> QueuedRun | None:
    now = ctx.now()
    refused = isinstance(actor, FatalError)
    try:
        with ctx.db.session() as session:
            run = ScheduledRunRepository(session).add(
                export_id=record.id,
                export_name=record.name,
                connection_id=record.connection_id,
                actor=SCHEDULER_ACTOR.email if isinstance(actor, FatalError) else actor.email,
                now=now,
                due_at=due,
                trigger=TRIGGER,
                hold_owner=None if refused else hold,
                hold_until=None if refused else now + timedelta(seconds=HOLD_SECONDS),
            )
            if isinstance(actor, FatalError):
                message = f"scheduled run not started: {actor.message}"
                run = RunRepository(session).finish(
                    run.id, RunStatus.FAILURE, now=now, message=message
                )
    except IntegrityError:
        log.info("export %r: the run due %s was already queued", record.name, due_key(due))
        return None
    if run.status is RunStatus.FAILURE:
        log.warning("export %r: %s", record.name, run.message)
        notify_run_end(ctx, run)
    return QueuedRun(record.name, run.id, due, run.status, run.message)
