"""When each export is verified on its own (docs/scheduling.md "Verify schedules").

An export's verify schedule is an export schedule of its own (off by default; daily, weekly or
every N hours, in a time zone), kept in ``exports.verify_schedule``. :func:`tick_verifies`,
which ``segsync serve`` calls with the scheduler's tick, queues a verify run (kind ``verify``,
trigger ``scheduled``) at each due time; the workers execute it like any run, acting as the
connection's export user (C3). A scheduled verify reports; it never repairs.

Each export's latest due time is a mark in ``system_settings`` (``scheduler.verify.<id>``) set
by compare-and-set, so two schedulers on one database queue each verify once; missed slots
coalesce into one verify, and slots before the schedule was saved never fire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from segsync.domain.permissions import Action, require
from segsync.domain.runs import RunStatus
from segsync.domain.schedule import (
    ExportMode,
    ExportSchedule,
    describe,
    due_key,
    next_due,
    scheduler_tick,
)
from segsync.errors import FatalError, InputError, SegsyncError
from segsync.services.connections.manage import export_actor
from segsync.services.context import ServiceContext
from segsync.services.exports.validation import schedule_from_options
from segsync.services.exports.views import export_ref
from segsync.services.privacy import audit
from segsync.services.sync.verify import VERIFY
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRepository
from segsync.storage.repositories.system_settings import SystemSettingRepository
from segsync.storage.repositories.verify_schedules import VerifyScheduleRepository

__all__ = [
    "MARK_PREFIX",
    "QueuedVerifyRun",
    "VerifyScheduleView",
    "set_verify_schedule",
    "show_verify_schedule",
    "tick_verifies",
    "verify_schedule_from_options",
]

log = logging.getLogger(__name__)

MARK_PREFIX = "scheduler.verify."
"""``system_settings`` key prefix of each export's latest verify due time."""


@dataclass(frozen=True)
class VerifyScheduleView:
    """An export's verify schedule, its summary and its next due time."""

    export: str
    schedule: ExportSchedule
    description: str
    next_due: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "export": self.export,
            "verify_schedule": self.schedule.to_dict(),
            "description": self.description,
            "next_due": None if self.next_due is None else due_key(self.next_due),
        }


@dataclass(frozen=True)
class QueuedVerifyRun:
    """A verify the tick queued (``queued``, or ``failure`` with ``message``)."""

    export_name: str
    run_id: int
    due_at: datetime
    status: RunStatus
    message: str | None = None


def verify_schedule_from_options(
    kind: str, *, at: str | None = None, days: str | None = None, hours: int | None = None,
    tz: str | None = None,
) -> ExportSchedule:  # fmt: skip
    """``off``, ``daily --at``, ``weekly --days --at`` or ``every --hours N [--at]`` (the
    options of ``--schedule``; "with the system refresh" does not apply to verifies)."""
    if kind.strip().lower().replace("_", "-") == "with-system":
        raise InputError("verify schedule: use off, daily, weekly or every (not with-system)")
    chosen = schedule_from_options(kind, at=at, days=days, hours=hours, tz=tz)
    assert chosen is not None
    return chosen


def _view(name: str, schedule: ExportSchedule, now: datetime) -> VerifyScheduleView:
    label = "Off" if schedule.mode is ExportMode.OFF else describe(schedule)
    return VerifyScheduleView(name, schedule, label, next_due(schedule, now))


def show_verify_schedule(ctx: ServiceContext, export: int | str) -> VerifyScheduleView:
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export) if isinstance(export, int) else repo.get_by_name(export)
        stored = VerifyScheduleRepository(session).get(record.id)
    return _view(record.name, ExportSchedule.from_dict(stored.schedule), ctx.now())


def set_verify_schedule(
    ctx: ServiceContext, export: int | str, schedule: ExportSchedule
) -> VerifyScheduleView:
    """Save the export's verify schedule (whoever may set its schedule); audited. Slots before
    now never fire."""
    now = ctx.now()
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export) if isinstance(export, int) else repo.get_by_name(export)
        require(ctx.actor, Action.SCHEDULE_EXPORT, export_ref(record))
        VerifyScheduleRepository(session).set(record.id, schedule.to_dict())
        SystemSettingRepository(session).put(
            f"{MARK_PREFIX}{record.id}", {"due": due_key(now), "saved": True}, now=now
        )
        view = _view(record.name, schedule, now)
        audit.record(
            session,
            at=now,
            actor=ctx.actor,
            action="export.verify_schedule_set",
            target_type="export",
            target=record.name,
            summary=f"Verify schedule of export {record.name!r}: {view.description}",
            details=schedule.to_dict(),
        )
    return view


def tick_verifies(ctx: ServiceContext) -> list[QueuedVerifyRun]:
    """Queue the verify of every export whose verify schedule is due at ``ctx.now()``."""
    now = ctx.now()
    queued: list[QueuedVerifyRun] = []
    with ctx.db.session() as session:
        due_list = VerifyScheduleRepository(session).scheduled()
    for item in due_list:
        if item.connection_id is None:
            continue
        try:
            schedule = ExportSchedule.from_dict(item.schedule)
        except InputError as err:
            log.warning("export %r: bad verify schedule: %s", item.export_name, err.message)
            continue
        key = f"{MARK_PREFIX}{item.export_id}"
        with ctx.db.session() as session:
            mark = SystemSettingRepository(session).get(key)
        last = None
        if mark is not None and isinstance(mark.value.get("due"), str):
            last = datetime.fromisoformat(mark.value["due"].replace("Z", "+00:00"))
        due = scheduler_tick(schedule, last, now)
        if due is None or not _claim(ctx, key, None if mark is None else mark.raw, due, now):
            continue
        queued.append(_queue(ctx, item.export_id, item.export_name, item.connection_id, due))
    return queued


def _claim(ctx: ServiceContext, key: str, raw: str | None, due: datetime, now: datetime) -> bool:
    try:
        with ctx.db.session() as session:
            return SystemSettingRepository(session).compare_and_set(
                key, raw, {"due": due_key(due)}, now=now
            )
    except IntegrityError:
        return False


def _queue(
    ctx: ServiceContext, export_id: int, name: str, connection_id: int, due: datetime
) -> QueuedVerifyRun:
    now = ctx.now()
    refused: str | None = None
    try:
        actor = export_actor(ctx, connection_id).email
    except (FatalError, SegsyncError) as err:
        actor, refused = "scheduler", f"scheduled verify not started: {err.message}"
    with ctx.db.session() as session:
        runs = RunRepository(session)
        run = runs.create(
            export_id=export_id,
            export_name=name,
            connection_id=connection_id,
            actor=actor,
            now=now,
            trigger="scheduled",
            kind=VERIFY,
        )
        if refused is not None:
            run = runs.finish(run.id, RunStatus.FAILURE, now=now, message=refused)
    log.info("export %r: verify run %s queued (due %s)", name, run.id, due_key(due))
    return QueuedVerifyRun(name, run.id, due, run.status, run.message)
