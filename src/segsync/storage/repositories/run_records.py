"""What the services see of a run (:class:`RunRecord`) and of a member it did not send
(:class:`RejectRecord`), read from the ``runs`` table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from segsync.domain.runs import RunCounts, RunStatus
from segsync.storage.models.runs import Run


@dataclass(frozen=True)
class RunRecord:
    """A run as the services see it. ``counts`` are the X9 counts; ``plan`` is the dry-run plan
    (or the last plan summary of a real run) as a dict, ``None`` before there is one."""

    id: int
    export_id: int | None
    export_name: str
    connection_id: int | None
    status: RunStatus
    trigger: str
    actor: str
    dry_run: bool
    due_at: datetime | None
    queued_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    counts: RunCounts
    items_total: int
    items_done: int
    message: str | None
    warnings: list[str]
    plan: dict[str, Any] | None
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    kind: str = "sync"
    """``sync`` (a run), ``verify`` (lists read back, drift reported), ``repair`` or ``undo``."""
    hold: dict[str, Any] | None = None
    """The blast-radius hold's verdict on the plan (a held run's, a dry run's that would be
    held, an approved run's) and its ``approved`` entry; ``None`` when there is none."""
    undo_of: int | None = None
    """An undo run (kind ``undo``): the id of the run it reverses."""


@dataclass(frozen=True)
class RejectRecord:
    """A member a run did not send. ``kind``: ``invalid`` (empty or invalid email),
    ``duplicate`` (another profile has the same email) or ``rejected`` (Autopilot or the value
    conversion refused the contact)."""

    kind: str
    profile_id: str | None
    email: str | None
    reason: str


def record_of(row: Run | Row[Any]) -> RunRecord:
    """The record of a ``runs`` row: an ORM ``Run`` or a plain row of the table's columns (lists
    read those: no ORM identity bookkeeping per row)."""
    return RunRecord(
        id=row.id,
        export_id=row.export_id,
        export_name=row.export_name,
        connection_id=row.connection_id,
        status=RunStatus(row.status),
        trigger=row.trigger,
        actor=row.actor,
        dry_run=row.dry_run,
        due_at=row.due_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        counts=RunCounts.from_dict(json.loads(row.counts or "{}")),
        items_total=row.items_total,
        items_done=row.items_done,
        message=row.message,
        warnings=list(json.loads(row.warnings or "[]")),
        plan=json.loads(row.plan) if row.plan else None,
        cancel_requested=row.cancel_requested,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        attempts=row.attempts,
        kind=row.kind or "sync",
        hold=json.loads(row.hold) if row.hold else None,
        undo_of=row.undo_of,
    )
