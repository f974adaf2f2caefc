"""Schedule maths: when the system refresh and each export are due (T1, E8).

Pure: every function takes the instants it needs; nothing reads the clock. The schedules
themselves are in :mod:`segsync.domain.schedule_definition` (importable from here too).

Rules (docs/scheduling.md explains them to users):

* Slots are **local wall-clock times** in the schedule's IANA time zone, converted to UTC
  instants with :mod:`zoneinfo`. Every instant returned here is an aware UTC ``datetime``.
* A wall time that does not exist (clocks jump forward over it) runs **once, at the first valid
  instant after the gap** (02:30 in New York on the spring-forward day → 03:00 EDT).
* A wall time that happens twice (clocks fall back) runs **once, at its first occurrence**
  (``fold=0``).
* Two slots that land on the same instant (02:30 and 03:00 on a spring-forward day) are one slot.
* "Every N hours from HH:MM" is anchored in each local day: its slots are the wall times
  ``HH:MM + k·N hours`` (any integer ``k``) that fall within the day, repeated every day. When N
  divides 24 this is a plain "every N hours around the clock"; otherwise the gap across midnight is
  shorter than N hours, and the grid never drifts from day to day.
* After downtime, missed slots are **coalesced** into one run, due at the latest missed slot. The
  due time is the idempotency key: one run per export (or system refresh) per due time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from segsync.domain.local_time import (
    MAX_TIMES_PER_DAY,
    Weekday,
    as_utc,
    check_times,
    format_time,
    parse_time,
    parse_times,
    parse_weekdays,
    parse_zone,
    wall_to_utc,
)
from segsync.domain.schedule_definition import (
    ExportMode,
    ExportSchedule,
    Frequency,
    Recurrence,
    Schedule,
    SystemSchedule,
)

__all__ = [
    "DEFAULT_GRACE",
    "MAX_TIMES_PER_DAY",
    "ExportMode",
    "ExportSchedule",
    "Frequency",
    "Recurrence",
    "Schedule",
    "SystemSchedule",
    "Weekday",
    "as_utc",
    "check_times",
    "coalesce",
    "describe",
    "due_key",
    "due_slots",
    "format_time",
    "next_due",
    "parse_time",
    "parse_times",
    "parse_weekdays",
    "parse_zone",
    "previous_due",
    "scheduler_tick",
    "wall_to_utc",
]

DEFAULT_GRACE = timedelta(minutes=10)
"""How far back :func:`scheduler_tick` looks when nothing was enqueued before."""

_DAY = timedelta(days=1)


# ---------------------------------------------------------------- slots


_WallTimes = Callable[[date], list[time]]


def _plan(schedule: Schedule, system: SystemSchedule | None) -> tuple[ZoneInfo, _WallTimes] | None:
    """The zone and the wall times of each local day, or None when nothing is ever due."""
    if isinstance(schedule, ExportSchedule):
        if schedule.mode is ExportMode.OFF:
            return None
        if schedule.mode is ExportMode.WITH_SYSTEM:
            return None if system is None else _plan(system, None)
        return schedule.zone, _own_walls(schedule)
    if not schedule.enabled:
        return None
    times = list(schedule.times)
    if schedule.frequency is Frequency.DAILY:
        return schedule.zone, lambda day: times
    indexes = {day.number for day in schedule.weekdays}
    return schedule.zone, lambda day: times if day.weekday() in indexes else []


def _own_walls(schedule: ExportSchedule) -> _WallTimes:
    start = [schedule.start]
    if schedule.recurrence is Recurrence.DAILY:
        return lambda day: start
    if schedule.recurrence is Recurrence.WEEKLY:
        indexes = {day.number for day in schedule.weekdays}
        return lambda day: start if day.weekday() in indexes else []
    period = (schedule.every_hours or 24) * 60
    first = (schedule.start.hour * 60 + schedule.start.minute) % period
    grid = [time(minute // 60, minute % 60) for minute in range(first, 24 * 60, period)]
    return lambda day: grid


def _day_slots(zone: ZoneInfo, walls: _WallTimes, day: date) -> list[datetime]:
    return sorted({wall_to_utc(day, wall, zone) for wall in walls(day)})


def _days(start: date, step: int) -> Iterator[date]:
    day = start
    while True:
        yield day
        day += timedelta(days=step)


_LOOKAHEAD_DAYS = 16  # a weekly schedule is due at least once in any 8 local days


def next_due(
    schedule: Schedule, after: datetime, *, system: SystemSchedule | None = None
) -> datetime | None:
    """The first due instant strictly after ``after`` (UTC), or None if never due.

    An export ``with_system`` follows ``system`` (None when it is not given or off).
    """
    after = as_utc(after, "after")
    plan = _plan(schedule, system)
    if plan is None:
        return None
    zone, walls = plan
    days = _days(after.astimezone(zone).date() - _DAY, 1)
    for _, day in zip(range(_LOOKAHEAD_DAYS), days, strict=False):
        for slot in _day_slots(zone, walls, day):
            if slot > after:
                return slot
    return None


def previous_due(
    schedule: Schedule, at_or_before: datetime, *, system: SystemSchedule | None = None
) -> datetime | None:
    """The latest due instant at or before ``at_or_before`` (UTC), or None if never due."""
    limit = as_utc(at_or_before, "at_or_before")
    plan = _plan(schedule, system)
    if plan is None:
        return None
    zone, walls = plan
    days = _days(limit.astimezone(zone).date() + _DAY, -1)
    for _, day in zip(range(_LOOKAHEAD_DAYS), days, strict=False):
        for slot in reversed(_day_slots(zone, walls, day)):
            if slot <= limit:
                return slot
    return None


def due_slots(
    schedule: Schedule,
    since: datetime,
    until: datetime,
    *,
    system: SystemSchedule | None = None,
) -> list[datetime]:
    """Every due instant in ``(since, until]``, ascending, as aware UTC datetimes."""
    since, until = as_utc(since, "since"), as_utc(until, "until")
    plan = _plan(schedule, system)
    if plan is None or until <= since:
        return []
    zone, walls = plan
    slots: list[datetime] = []
    last = until.astimezone(zone).date() + _DAY
    for day in _days(since.astimezone(zone).date() - _DAY, 1):
        if day > last:
            break
        slots.extend(slot for slot in _day_slots(zone, walls, day) if since < slot <= until)
    return sorted(set(slots))


def coalesce(slots: Iterable[datetime]) -> datetime | None:
    """Missed slots collapse into one run: the latest of them (None when there are none)."""
    return max(slots, default=None)


def scheduler_tick(
    schedule: Schedule,
    last_enqueued_due: datetime | None,
    now: datetime,
    *,
    system: SystemSchedule | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> datetime | None:
    """The one due time to enqueue at ``now``, or None.

    It is the latest slot in ``(last_enqueued_due, now]`` — every slot missed during downtime
    coalesces into that one run. Store it with the run and pass it back as
    ``last_enqueued_due`` next time; it is also the idempotency key (see :func:`due_key`): two
    schedulers computing the same tick enqueue the same due time, and a unique constraint on
    (export, due time) keeps one.

    With ``last_enqueued_due=None`` (never enqueued) only a slot within ``grace`` before ``now``
    counts, so a new schedule does not fire for a slot long past. Callers that want a slot missed
    before the very first run caught up pass the time the schedule was saved instead.
    """
    now = as_utc(now, "now")
    floor = now - grace if last_enqueued_due is None else as_utc(last_enqueued_due, "last_due")
    latest = previous_due(schedule, now, system=system)
    if latest is None or latest <= floor:
        return None
    return latest


def due_key(due: datetime) -> str:
    """The canonical text of a due time (``2026-03-29T01:00:00Z``), for idempotency keys."""
    return as_utc(due, "due").strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- describe


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(schedule: Schedule) -> str:
    """A one-line summary: ``Weekly on Mon, Thu at 06:00 and 18:00 (Europe/Lisbon)``."""
    if isinstance(schedule, ExportSchedule):
        if schedule.mode is ExportMode.OFF:
            return "Off (manual runs only)"
        if schedule.mode is ExportMode.WITH_SYSTEM:
            return "With every system refresh"
        at = f"at {format_time(schedule.start)} ({schedule.tz})"
        if schedule.recurrence is Recurrence.DAILY:
            return f"Daily {at}"
        if schedule.recurrence is Recurrence.WEEKLY:
            return f"Weekly on {', '.join(_labels(schedule.weekdays))} {at}"
        hours = schedule.every_hours or 24
        every = "Every hour" if hours == 1 else f"Every {hours} hours"
        first = format_time(_own_walls(schedule)(date.min)[0])
        each_day = "" if 24 % hours == 0 else " each day"
        return f"{every} from {first}{each_day} ({schedule.tz})"
    if not schedule.enabled:
        return "Off"
    at = f"at {_join([format_time(value) for value in schedule.times])} ({schedule.tz})"
    if schedule.frequency is Frequency.DAILY:
        return f"Daily {at}"
    return f"Weekly on {', '.join(_labels(schedule.weekdays))} {at}"


def _labels(days: frozenset[Weekday]) -> list[str]:
    return [day.label for day in sorted(days, key=lambda day: day.number)]
