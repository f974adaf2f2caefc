"""The scheduler (T1, T2, E8, C3): :func:`tick` turns due schedules into queued runs.

``segsync serve`` calls :func:`tick` every few seconds; each call uses ``ctx.now()`` and does
whatever is due at that instant, then returns a :class:`TickReport`. Workers execute the runs.

**The system refresh**, when its schedule is due, runs in this order (T2):

1. the runs of the exports whose schedule is "with the system refresh" are queued at once,
   *held* (Queued, not claimable: see :func:`segsync.storage.repositories.runs.claimable`);
2. data sources are re-read: every file registered with ``profiles import`` whose size,
   modification time or SHA-256 changed since it was imported is imported again (replace);
3. the active segments refresh (drafts are skipped, S4);
4. each held run is released to the workers, or ends **Skipped** naming the segment of its
   export that failed to refresh.

**An export's own recurrence** (daily, weekly, every N hours) queues a run at its due times.
Exports whose schedule is off, and detached exports, are never scheduled.

Idempotent: a scheduled run is keyed by (export, due time), which the metadata DB keeps unique,
so two schedulers on one database queue each run once; the system refresh is claimed with a
compare-and-set on its mark (``system_settings`` row :data:`SYSTEM_MARK_KEY`), so exactly one
scheduler runs each refresh. After downtime the missed slots coalesce into one run, due at the
latest of them (:func:`segsync.domain.schedule.scheduler_tick`). Slots before a schedule was
saved (the system schedule's save time, the export's last change) never fire.

Scheduled runs act with the authority of the connection's export user (C3): when that user was
removed or is no longer an administrator, the run is recorded and ends **Failure** at once with
a message saying who and why (and administrators are notified).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from segsync.domain.runs import RunStatus
from segsync.domain.schedule import (
    ExportMode,
    ExportSchedule,
    SystemSchedule,
    due_key,
    scheduler_tick,
)
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.profiles.data_sources import SourceOutcome, reread_sources
from segsync.services.runs.schedule import system_schedule
from segsync.services.runs.scheduled import (
    HOLD_SECONDS,
    SCHEDULER_ACTOR,
    QueuedRun,
    enqueue_runs,
)
from segsync.services.segments.refresh import RefreshOutcome, refresh_segments
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.runs import HOLD_PREFIX, RunRepository
from segsync.storage.repositories.scheduled_runs import ScheduledRunRepository
from segsync.storage.repositories.system_settings import SystemSettingRepository

__all__ = [
    "HOLD_SECONDS",
    "SCHEDULER_ACTOR",
    "SYSTEM_MARK_KEY",
    "QueuedRun",
    "SystemRefreshReport",
    "TickReport",
    "new_scheduler_id",
    "tick",
]

log = logging.getLogger(__name__)

SYSTEM_MARK_KEY = "scheduler.system_refresh"
"""``system_settings`` key of the latest system refresh claimed: due time, owner, state."""

StepCallback = Callable[[str], None]
"""Told the name of each system refresh step as it starts: ``queue``, ``data_sources``,
``segments``, ``release``."""


def new_scheduler_id() -> str:
    """A name for a scheduler: host, process id and a random suffix."""
    return f"scheduler:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@functools.cache
def _process_scheduler_id(pid: int) -> str:
    return new_scheduler_id()


@dataclass(frozen=True)
class SystemRefreshReport:
    """What one system refresh did, step by step."""

    due_at: datetime
    started_at: datetime
    ended_at: datetime
    data_sources: list[SourceOutcome]
    segments: list[RefreshOutcome]
    runs: list[QueuedRun]

    def to_dict(self) -> dict[str, Any]:
        return {
            "due_at": due_key(self.due_at),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "data_sources": [item.to_dict() for item in self.data_sources],
            "segments": [item.to_dict() for item in self.segments],
            "runs": [item.to_dict() for item in self.runs],
        }


@dataclass(frozen=True)
class TickReport:
    """What one :func:`tick` did. ``system_refresh`` is ``None`` when none was due or another
    scheduler claimed it (``system_due_taken``); ``already_queued`` names exports whose due
    run another scheduler had queued first."""

    now: datetime
    scheduler: str
    system_refresh: SystemRefreshReport | None = None
    system_due_taken: datetime | None = None
    export_runs: list[QueuedRun] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[QueuedRun]:
        """Every run this tick queued (system refresh first)."""
        system = self.system_refresh.runs if self.system_refresh else []
        return [*system, *self.export_runs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "scheduler": self.scheduler,
            "system_refresh": None
            if self.system_refresh is None
            else self.system_refresh.to_dict(),
            "system_due_taken": None
            if self.system_due_taken is None
            else due_key(self.system_due_taken),
            "export_runs": [item.to_dict() for item in self.export_runs],
            "already_queued": self.already_queued,
        }


# ---------------------------------------------------------------- tick


def tick(
    ctx: ServiceContext,
    *,
    scheduler: str | None = None,
    on_step: StepCallback | None = None,
) -> TickReport:
    """Do what is due at ``ctx.now()``: the system refresh (if due and not claimed by another
    scheduler) and the runs of exports with their own recurrence. Never raises for one
    export's or one segment's trouble; those end up in the report and the run history.

    ``scheduler`` names this scheduler in the claims (default: one name per process);
    ``on_step`` observes the system refresh steps (tests, progress display)."""
    now = ctx.now()
    name = scheduler or _process_scheduler_id(os.getpid())
    saved = system_schedule(ctx)
    report = TickReport(now=now, scheduler=name)
    due, mark_raw = _system_due(ctx, saved.schedule, saved.saved_at, now)
    if due is not None:
        if _claim(ctx, due, mark_raw, name, now):
            refresh = _system_refresh(ctx, due, name, now, on_step)
            report = dataclasses.replace(report, system_refresh=refresh)
        else:
            report = dataclasses.replace(report, system_due_taken=due)
    own, taken = _own_recurrences(ctx, saved.schedule, now)
    return dataclasses.replace(report, export_runs=own, already_queued=taken)


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _system_due(
    ctx: ServiceContext, schedule: SystemSchedule, saved_at: datetime | None, now: datetime
) -> tuple[datetime | None, str | None]:
    """The system refresh due now (coalesced), and the mark's raw text for compare-and-set."""
    with ctx.db.session() as session:
        mark = SystemSettingRepository(session).get(SYSTEM_MARK_KEY)
    last = None
    if mark is not None and isinstance(mark.value.get("due"), str):
        last = datetime.fromisoformat(mark.value["due"].replace("Z", "+00:00"))
    floor = _latest(last, saved_at)
    if floor is None:
        return None, None
    due = scheduler_tick(schedule, floor, now)
    return due, None if mark is None else mark.raw


def _claim(
    ctx: ServiceContext, due: datetime, expected: str | None, scheduler: str, now: datetime
) -> bool:
    """Compare-and-set the system refresh mark to ``due``: True for the one scheduler that
    wins; False when another one claimed this (or a later) due time first."""
    value = {
        "due": due_key(due),
        "scheduler": scheduler,
        "state": "running",
        "claimed_at": now.isoformat(),
    }
    try:
        with ctx.db.session() as session:
            won = SystemSettingRepository(session).compare_and_set(
                SYSTEM_MARK_KEY, expected, value, now=now
            )
    except IntegrityError:
        return False
    if not won:
        log.info("system refresh due %s was claimed by another scheduler", due_key(due))
    return won


def _mark_done(ctx: ServiceContext, due: datetime, scheduler: str, summary: dict[str, Any]) -> None:
    with ctx.db.session() as session:
        settings = SystemSettingRepository(session)
        mark = settings.get(SYSTEM_MARK_KEY)
        if mark is None or mark.value.get("due") != due_key(due):
            return  # a later refresh was claimed meanwhile; leave its mark alone
        value = {**mark.value, "state": "done", "ended_at": ctx.now().isoformat(), **summary}
        settings.compare_and_set(SYSTEM_MARK_KEY, mark.raw, value, now=ctx.now())


# ---------------------------------------------------------------- the system refresh


def _system_refresh(
    ctx: ServiceContext,
    due: datetime,
    scheduler: str,
    now: datetime,
    on_step: StepCallback | None,
) -> SystemRefreshReport:
    def step(name: str) -> None:
        log.info("system refresh %s: %s", due_key(due), name)
        if on_step is not None:
            on_step(name)

    # A DuckDB file admits one read-write process: hold the profile engine only meanwhile,
    # unless the caller has it open already (then it shares it and keeps it).
    if ctx.profiles_opened:
        work = dataclasses.replace(ctx, actor=SCHEDULER_ACTOR)
    else:
        work = ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=SCHEDULER_ACTOR)
    try:
        return _pipeline(ctx, work, due, scheduler, now, step)
    finally:
        if not ctx.profiles_opened and work.profiles_opened:
            work.profiles.close()


def _pipeline(
    ctx: ServiceContext,
    work: ServiceContext,
    due: datetime,
    scheduler: str,
    now: datetime,
    step: StepCallback,
) -> SystemRefreshReport:
    hold = f"{HOLD_PREFIX}system-refresh:{due_key(due)}:{scheduler}"
    step("queue")
    with ctx.db.session() as session:
        exports = [
            record
            for record in ExportRepository(session).list()
            if record.connection_id is not None
            and ExportSchedule.from_dict(record.schedule).mode is ExportMode.WITH_SYSTEM
        ]
    queued, _ = enqueue_runs(ctx, exports, due, hold=hold)
    step("data_sources")
    sources = reread_sources(work)
    step("segments")

    def keep_holding(_name: str, _done: int, _total: int) -> None:
        with ctx.db.session() as session:
            ScheduledRunRepository(session).extend(
                hold, until=ctx.now() + timedelta(seconds=HOLD_SECONDS)
            )

    outcomes = refresh_segments(work, all_segments=True, active_only=True, progress=keep_holding)
    step("release")
    runs = _release(ctx, exports, queued, outcomes, hold)
    report = SystemRefreshReport(due, now, ctx.now(), sources, outcomes, runs)
    reimported = sum(1 for s in sources if s.status == "reimported")
    failed = [o.name for o in outcomes if not o.ok]
    summary: dict[str, Any] = {
        "data_sources_reimported": reimported,
        "segments_failed": failed,
        "runs": len(runs),
    }
    _mark_done(ctx, due, scheduler, summary)
    with ctx.db.session() as session:
        audit.record(
            session,
            at=ctx.now(),
            actor=SCHEDULER_ACTOR,
            action="schedule.refresh_ran",
            target_type="schedule",
            target="system",
            summary=(
                f"System refresh due {due_key(due)}: {reimported} data source(s) re-imported, "
                f"{len(outcomes)} segment(s) refreshed ({len(failed)} failed), "
                f"{len(runs)} export run(s) queued"
            ),
            details=summary,
        )
    return report


def _release(
    ctx: ServiceContext,
    exports: list[ExportRecord],
    queued: list[QueuedRun],
    outcomes: list[RefreshOutcome],
    hold: str,
) -> list[QueuedRun]:
    """Release each held run, or end it Skipped naming its export's failed segment."""
    failed = {outcome.name: outcome.error or "it failed" for outcome in outcomes if not outcome.ok}
    segments_of = {record.name: record.segment_names for record in exports}
    result: list[QueuedRun] = []
    with ctx.db.session() as session:
        held = {run.id for run in ScheduledRunRepository(session).held(hold)}
    for item in queued:
        if item.run_id not in held:
            result.append(item)  # ended already (its user check failed), or canceled meanwhile
            continue
        bad = [name for name in segments_of.get(item.export_name, []) if name in failed]
        with ctx.db.session() as session:
            if not bad:
                ScheduledRunRepository(session).release(item.run_id, hold)
                result.append(item)
                continue
            reasons = "; ".join(
                f"segment {name!r} failed to refresh: {failed[name]}" for name in bad
            )
            message = f"not run: {reasons}"
            try:
                RunRepository(session).finish(
                    item.run_id,
                    RunStatus.SKIPPED,
                    now=ctx.now(),
                    message=message,
                    expect=RunStatus.QUEUED,
                )
            except Conflict:
                # Its hold ran out during a long refresh and a worker took it: leave it be.
                log.warning("export %r: run %s already started", item.export_name, item.run_id)
                result.append(item)
                continue
        log.warning("export %r skipped: %s", item.export_name, reasons)
        result.append(dataclasses.replace(item, status=RunStatus.SKIPPED, message=message))
    return result


# ---------------------------------------------------------------- enqueueing


def _own_recurrences(
    ctx: ServiceContext, system: SystemSchedule, now: datetime
) -> tuple[list[QueuedRun], list[str]]:
    """Queue the due run of every export with its own recurrence."""
    due_exports: list[tuple[ExportRecord, datetime]] = []
    with ctx.db.session() as session:
        marks = ScheduledRunRepository(session)
        for record in ExportRepository(session).list():
            schedule = ExportSchedule.from_dict(record.schedule)
            if schedule.mode is not ExportMode.OWN or record.connection_id is None:
                continue
            floor = _latest(marks.latest_due(record.id), record.updated_at)
            due = scheduler_tick(schedule, floor, now, system=system)
            if due is not None:
                due_exports.append((record, due))
    queued: list[QueuedRun] = []
    taken: list[str] = []
    for record, due in due_exports:
        runs, lost = enqueue_runs(ctx, [record], due, hold=None)
        queued.extend(runs)
        taken.extend(lost)
    return queued, taken
