"""The system refresh schedule (T1, R6): show it with its next due times, set it, switch
it off. Changing or showing it is for administrators only; every change is audited.

The schedule is kept in the ``system_settings`` table under :data:`SCHEDULE_KEY` as
``{"schedule": SystemSchedule.to_dict(), "saved_by": email}``; the row's ``updated_at`` is when
it was saved, which the scheduler uses so a schedule never fires for slots before it was saved.
:func:`system_schedule` reads it without a permission check, for the scheduler and status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segsync.domain.permissions import Action, require
from segsync.domain.schedule import (
    Frequency,
    SystemSchedule,
    describe,
    due_key,
    next_due,
    parse_times,
    parse_weekdays,
    parse_zone,
)
from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.runs.defaults import DEFAULT_NEXT
from segsync.storage.repositories.system_settings import SystemSettingRepository

__all__ = [
    "SCHEDULE_KEY",
    "SavedSchedule",
    "ScheduleView",
    "next_due_times",
    "schedule_from_options",
    "schedule_off",
    "set_schedule",
    "show_schedule",
    "system_schedule",
]

SCHEDULE_KEY = "system_schedule"


@dataclass(frozen=True)
class SavedSchedule:
    """The stored schedule, when it was saved and by whom (``None``: never set, so off)."""

    schedule: SystemSchedule
    saved_at: datetime | None
    saved_by: str | None


@dataclass(frozen=True)
class ScheduleView:
    """What ``schedule show`` prints: the schedule, its summary and its next due instants."""

    schedule: SystemSchedule
    description: str
    next_due: list[datetime]
    saved_at: datetime | None
    saved_by: str | None

    def to_dict(self) -> dict[str, Any]:
        zone = self.schedule.zone
        return {
            **self.schedule.to_dict(),
            "description": self.description,
            "next_due": [due_key(moment) for moment in self.next_due],
            "next_due_local": [moment.astimezone(zone).isoformat() for moment in self.next_due],
            "saved_at": None if self.saved_at is None else self.saved_at.isoformat(),
            "saved_by": self.saved_by,
        }


def system_schedule(ctx: ServiceContext) -> SavedSchedule:
    """The stored system schedule (off when never set). No permission check: for the
    scheduler, the status page and other services."""
    with ctx.db.session() as session:
        stored = SystemSettingRepository(session).get(SCHEDULE_KEY)
    if stored is None:
        return SavedSchedule(SystemSchedule(), None, None)
    raw = stored.value.get("schedule")
    schedule = SystemSchedule.from_dict(raw if isinstance(raw, dict) else {})
    by = stored.value.get("saved_by")
    return SavedSchedule(schedule, stored.updated_at, by if isinstance(by, str) else None)


def next_due_times(
    schedule: SystemSchedule, after: datetime, count: int = DEFAULT_NEXT
) -> list[datetime]:
    """The next ``count`` due instants strictly after ``after`` (none when off)."""
    result: list[datetime] = []
    moment: datetime | None = after
    while moment is not None and len(result) < count:
        moment = next_due(schedule, moment)
        if moment is not None:
            result.append(moment)
    return result


def _view(ctx: ServiceContext, saved: SavedSchedule, count: int) -> ScheduleView:
    return ScheduleView(
        schedule=saved.schedule,
        description=describe(saved.schedule),
        next_due=next_due_times(saved.schedule, ctx.now(), count),
        saved_at=saved.saved_at,
        saved_by=saved.saved_by,
    )


def show_schedule(ctx: ServiceContext, *, count: int = DEFAULT_NEXT) -> ScheduleView:
    """The system schedule with its next ``count`` due times (administrators only, R6)."""
    require(ctx.actor, Action.MANAGE_SCHEDULE)
    if not 1 <= count <= 100:
        raise InputError(f"next: {count} is not between 1 and 100")
    return _view(ctx, system_schedule(ctx), count)


def schedule_from_options(
    *, daily: bool, weekly: str | None, times: str, tz: str
) -> SystemSchedule:
    """An enabled schedule from the CLI/form options ``--daily | --weekly DAYS``, ``--times
    06:00,18:00`` and ``--tz ZONE``; each mistake is an ``InputError`` naming the field."""
    if daily and weekly is not None:
        raise InputError("frequency: give either --daily or --weekly DAYS, not both")
    if not daily and weekly is None:
        raise InputError("frequency: give --daily, or --weekly DAYS (e.g. --weekly mon,thu)")
    parse_zone(tz, field="tz")
    return SystemSchedule(
        enabled=True,
        frequency=Frequency.DAILY if daily else Frequency.WEEKLY,
        weekdays=parse_weekdays(weekly, field="weekdays") if weekly is not None else frozenset(),
        times=parse_times(times, field="times"),
        tz=tz,
    )


def _save(ctx: ServiceContext, schedule: SystemSchedule, action: str, summary: str) -> ScheduleView:
    now = ctx.now()
    with ctx.db.session() as session:
        SystemSettingRepository(session).put(
            SCHEDULE_KEY, {"schedule": schedule.to_dict(), "saved_by": ctx.actor.email}, now=now
        )
        audit.record(
            session,
            at=now,
            actor=ctx.actor,
            action=action,
            target_type="schedule",
            target="system",
            summary=summary,
            details=schedule.to_dict(),
        )
    return _view(ctx, SavedSchedule(schedule, now, ctx.actor.email), DEFAULT_NEXT)


def set_schedule(ctx: ServiceContext, schedule: SystemSchedule) -> ScheduleView:
    """Save ``schedule`` (switched on) as the system schedule (administrators only, R6).

    Slots before now never fire for it: the scheduler counts from the time it was saved."""
    require(ctx.actor, Action.MANAGE_SCHEDULE)
    if not schedule.enabled:
        raise InputError("enabled: to switch the schedule off use `segsync schedule off`")
    return _save(ctx, schedule, "schedule.set", f"System schedule set: {describe(schedule)}")


def schedule_off(ctx: ServiceContext) -> ScheduleView:
    """Switch the system schedule off, keeping its days and times (administrators only)."""
    require(ctx.actor, Action.MANAGE_SCHEDULE)
    current = system_schedule(ctx).schedule
    off = SystemSchedule(
        enabled=False,
        frequency=current.frequency,
        weekdays=current.weekdays,
        times=current.times,
        tz=current.tz,
    )
    return _save(ctx, off, "schedule.switched_off", "System schedule switched off")
