"""Status (T3): every task — data source, segment, export — with its latest status, last
update and next due time, plus the system schedule and its latest refresh.

* **Data sources**: status ``imported``, ``changed`` (the file changed since its import and is
  re-imported by the next system refresh), ``missing`` (the file is gone) or ``generated``
  (sample data, no file); last update = the last import; next due = the next system refresh for
  file sources.
* **Segments**: ``draft``, ``active`` or ``failed``; last update = the last refresh (for a
  draft: when it was saved); next due = the next system refresh, except for drafts (S4).
* **Exports**: the status of the latest (non-dry) run, or ``never run``; last update = when that
  run ended (or was queued); next due from the export's schedule (its own recurrence, or the
  system schedule for "with the system refresh"); none for schedules that are off and for
  detached exports.

History and details: ``segsync runs list --export NAME`` / ``runs show ID`` and
``segsync segments show NAME``.

:func:`status` lists every task; :func:`status_summary` (the Admin > System page) counts the
exports by status and lists only those needing attention. Both use a fixed number of queries,
whatever the number of exports and runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from segsync.domain.permissions import Action, require
from segsync.domain.runs import RunStatus
from segsync.domain.schedule import ExportSchedule, SystemSchedule, describe, next_due
from segsync.services.context import ServiceContext
from segsync.services.profiles.data_sources import file_state
from segsync.services.runs.schedule import system_schedule
from segsync.services.runs.scheduler import SYSTEM_MARK_KEY
from segsync.storage.models.segments import SegmentStatus
from segsync.storage.repositories.export_listing import (
    ExportBrief,
    ExportListingRepository,
    LatestRun,
)
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.profiles import DataSourceRepository
from segsync.storage.repositories.segments import SegmentRepository
from segsync.storage.repositories.system_settings import SystemSettingRepository

__all__ = [
    "StatusReport",
    "StatusSummary",
    "SystemStatus",
    "TaskStatus",
    "status",
    "status_summary",
]

TaskKind = Literal["data_source", "segment", "export"]
NEVER_RUN = "never run"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class TaskStatus:
    """One line of the status page. ``details`` holds what the kind adds: rows and file for a
    data source; members and last error for a segment; schedule, latest run id and message,
    connection for an export."""

    kind: TaskKind
    name: str
    status: str
    last_update: datetime | None
    next_due: datetime | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "last_update": _iso(self.last_update),
            "next_due": _iso(self.next_due),
            **self.details,
        }


@dataclass(frozen=True)
class SystemStatus:
    """The system schedule, its next due time and the latest system refresh's mark."""

    description: str
    enabled: bool
    next_due: datetime | None
    last_refresh_due: str | None
    last_refresh_state: str | None
    last_refresh_ended: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.description,
            "enabled": self.enabled,
            "next_due": _iso(self.next_due),
            "last_refresh_due": self.last_refresh_due,
            "last_refresh_state": self.last_refresh_state,
            "last_refresh_ended": self.last_refresh_ended,
        }


@dataclass(frozen=True)
class StatusReport:
    """Every task, data sources first, then segments, then exports (each by name)."""

    generated_at: datetime
    system: SystemStatus
    tasks: list[TaskStatus]

    def of_kind(self, kind: TaskKind) -> list[TaskStatus]:
        return [task for task in self.tasks if task.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "system": self.system.to_dict(),
            "tasks": [task.to_dict() for task in self.tasks],
        }


def status(ctx: ServiceContext) -> StatusReport:
    """The status of every task (T3). Anyone who may view may see it."""
    require(ctx.actor, Action.VIEW)
    now = ctx.now()
    saved = system_schedule(ctx)
    system_next = next_due(saved.schedule, now)
    with ctx.db.session() as session:
        mark = SystemSettingRepository(session).get(SYSTEM_MARK_KEY)
        tasks = _data_sources(session, system_next)
        tasks += _segments(session, system_next)
        tasks += _exports(session, now, saved.schedule)
    system = _system_status(saved.schedule, system_next, mark)
    return StatusReport(generated_at=now, system=system, tasks=tasks)


def _system_status(
    schedule: SystemSchedule, system_next: datetime | None, mark: Any
) -> SystemStatus:
    value = mark.value if mark is not None else {}
    return SystemStatus(
        description=describe(schedule),
        enabled=schedule.enabled,
        next_due=system_next,
        last_refresh_due=value.get("due"),
        last_refresh_state=value.get("state"),
        last_refresh_ended=value.get("ended_at"),
    )


def _data_sources(session: Any, system_next: datetime | None) -> list[TaskStatus]:
    tasks = []
    for source in DataSourceRepository(session).list():
        from_file = bool(source.source_path) and source.fingerprint is not None
        state = file_state(source) if from_file else "generated"
        label = {"unchanged": "imported"}.get(state, state)
        tasks.append(
            TaskStatus(
                kind="data_source",
                name=source.table_name,
                status=label,
                last_update=source.imported_at,
                next_due=system_next if from_file else None,
                details={
                    "rows": source.row_count,
                    "file": source.source_path,
                    "profile_table": source.is_profile,
                },
            )
        )
    return tasks


def _segments(session: Any, system_next: datetime | None) -> list[TaskStatus]:
    latest = ExportListingRepository(session).latest_refreshes()
    tasks = []
    for record in SegmentRepository(session).list():
        refresh = latest.get(record.id)
        draft = record.status is SegmentStatus.DRAFT
        tasks.append(
            TaskStatus(
                kind="segment",
                name=record.name,
                status=record.status.value,
                last_update=(refresh.ended_at if refresh else None) or record.updated_at,
                next_due=None if draft else system_next,
                details={
                    "members": record.member_count,
                    "error": refresh.error if refresh else None,
                },
            )
        )
    return tasks


ScheduleFacts = Callable[[dict[str, Any]], tuple[str, datetime | None]]
"""An export schedule → its description and next due time (see :func:`_schedule_facts`)."""


def _schedule_facts(now: datetime, system: SystemSchedule) -> ScheduleFacts:
    """An export schedule's description and next due time at ``now``, worked out once per
    distinct schedule: thousands of exports share a handful."""
    seen: dict[str, tuple[str, datetime | None]] = {}

    def facts(stored: dict[str, Any]) -> tuple[str, datetime | None]:
        key = repr(stored)
        if key not in seen:
            schedule = ExportSchedule.from_dict(stored)
            due = next_due(schedule, now, system=system if system.enabled else None)
            seen[key] = (describe(schedule), due)
        return seen[key]

    return facts


def _export_task(
    record: ExportRecord | ExportBrief,
    run: LatestRun | None,
    refreshed_at: datetime | None,
    now: datetime,
    system: SystemSchedule,
    schedule_facts: ScheduleFacts | None = None,
) -> TaskStatus:
    description, due = (schedule_facts or _schedule_facts(now, system))(record.schedule)
    if record.connection_id is None:
        due = None
    return TaskStatus(
        kind="export",
        name=record.name,
        status=run.status.value if run is not None else NEVER_RUN,
        last_update=None if run is None else (run.ended_at or run.queued_at),
        next_due=due,
        details={
            "schedule": description,
            "connection": record.connection_name,
            "latest_run": None if run is None else run.run_id,
            "message": None if run is None else run.message,
            "refreshed_at": _iso(refreshed_at),
        },
    )


def _exports(session: Any, now: datetime, system: SystemSchedule) -> list[TaskStatus]:
    listing = ExportListingRepository(session)
    records = listing.briefs()
    latest = listing.latest_runs()
    refreshed = listing.refreshed()
    facts = _schedule_facts(now, system)
    return [
        _export_task(record, latest.get(record.id), refreshed.get(record.id), now, system, facts)
        for record in records
    ]


# ---------------------------------------------------------------- the summary (Admin > System)


@dataclass(frozen=True)
class StatusSummary:
    """The status page's view for any number of exports: every data source and segment, the
    exports counted by latest status (``never run`` included), and the exports that need
    attention — latest run failed, most recent first, at most ``limit`` of ``attention_total``.
    The full list, paged, is Data > Exports (sortable by status)."""

    generated_at: datetime
    system: SystemStatus
    sources: list[TaskStatus]
    segments: list[TaskStatus]
    export_counts: dict[str, int]
    exports_total: int
    attention: list[TaskStatus]
    attention_total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "system": self.system.to_dict(),
            "sources": [task.to_dict() for task in self.sources],
            "segments": [task.to_dict() for task in self.segments],
            "export_counts": dict(self.export_counts),
            "exports_total": self.exports_total,
            "attention": [task.to_dict() for task in self.attention],
            "attention_total": self.attention_total,
        }


ATTENTION = frozenset({RunStatus.FAILURE})
"""Latest statuses that put an export on the summary's "needs attention" list."""


def status_summary(ctx: ServiceContext, *, limit: int = 20) -> StatusSummary:
    """Like :func:`status`, with the exports summarised (see :class:`StatusSummary`): a fixed
    number of queries, and full records only for the ``limit`` exports shown."""
    require(ctx.actor, Action.VIEW)
    now = ctx.now()
    saved = system_schedule(ctx)
    system_next = next_due(saved.schedule, now)
    with ctx.db.session() as session:
        mark = SystemSettingRepository(session).get(SYSTEM_MARK_KEY)
        sources = _data_sources(session, system_next)
        segments = _segments(session, system_next)
        listing = ExportListingRepository(session)
        rows = listing.listing()
        latest = listing.latest_runs(ATTENTION)
        failing = sorted(
            latest.values(),
            key=lambda run: (run.ended_at or run.queued_at, run.run_id),
            reverse=True,
        )
        shown = failing[: max(0, limit)]
        records = ExportRepository(session).records([run.export_id for run in shown])
    counts: dict[str, int] = {}
    for row in rows:
        label = row.latest_status.value if row.latest_status else NEVER_RUN
        counts[label] = counts.get(label, 0) + 1
    refreshed = {row.id: row.refreshed_at for row in rows}
    attention = [
        _export_task(record, latest[record.id], refreshed.get(record.id), now, saved.schedule)
        for record in records
    ]
    return StatusSummary(
        generated_at=now,
        system=_system_status(saved.schedule, system_next, mark),
        sources=sources,
        segments=segments,
        export_counts=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        exports_total=len(rows),
        attention=attention,
        attention_total=len(failing),
    )
