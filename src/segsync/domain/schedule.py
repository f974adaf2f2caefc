"""Schedule maths: when the system refresh and each export are due (T1, E8).

Pure: every function takes the instants it needs; nothing reads the clock.

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

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar
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
from segsync.errors import InputError

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


class Frequency(StrEnum):
    """How often the system schedule runs."""

    DAILY = "daily"
    WEEKLY = "weekly"


class ExportMode(StrEnum):
    """An export's schedule (E8): with every system refresh, its own recurrence, or off."""

    WITH_SYSTEM = "with_system"
    OWN = "own"
    OFF = "off"


class Recurrence(StrEnum):
    """An export's own recurrence."""

    DAILY = "daily"
    WEEKLY = "weekly"
    EVERY_N_HOURS = "every_n_hours"


_E = TypeVar("_E", bound=StrEnum)


def _member(kind: type[_E], value: object, field: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InputError(f"{field}: {value!r} is not one of {allowed}") from None


def _weekday_set(values: Iterable[object], field: str) -> frozenset[Weekday]:
    return frozenset(_member(Weekday, value, field) for value in values)


# ---------------------------------------------------------------- the schedule models


@dataclass(frozen=True)
class SystemSchedule:
    """The system refresh schedule (T1): off by default; daily, or weekly on chosen
    weekdays; 1–4 local times a day; one IANA time zone.

    Build it from CLI text with :func:`parse_times` / :func:`parse_weekdays`. Format checks
    always apply; "at least one time" and "weekly needs weekdays" apply once ``enabled``, so an
    administrator can switch a schedule off and on again without losing it.
    """

    enabled: bool = False
    frequency: Frequency = Frequency.DAILY
    weekdays: frozenset[Weekday] = frozenset()
    times: tuple[time, ...] = ()
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "frequency", _member(Frequency, self.frequency, "frequency"))
        object.__setattr__(self, "weekdays", _weekday_set(self.weekdays, "weekdays"))
        object.__setattr__(self, "times", check_times(self.times))
        parse_zone(self.tz)
        if not self.enabled:
            return
        if not self.times:
            raise InputError("times: give at least one time, e.g. 06:00 or 06:00,18:00")
        if self.frequency is Frequency.WEEKLY and not self.weekdays:
            raise InputError("weekdays: a weekly schedule needs at least one day, e.g. mon,thu")
        if self.frequency is Frequency.DAILY and self.weekdays:
            raise InputError("weekdays: only a weekly schedule takes weekdays")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, for storage and the API; :meth:`from_dict` reads it back."""
        return {
            "enabled": self.enabled,
            "frequency": self.frequency.value,
            "weekdays": _sorted_days(self.weekdays),
            "times": [format_time(value) for value in self.times],
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SystemSchedule:
        return cls(
            enabled=bool(data.get("enabled", False)),
            frequency=_member(Frequency, data.get("frequency", "daily"), "frequency"),
            weekdays=_weekday_set(_list(data, "weekdays"), "weekdays"),
            times=tuple(parse_time(str(value), field="times") for value in _list(data, "times")),
            tz=str(data.get("tz", "UTC")),
        )


@dataclass(frozen=True)
class ExportSchedule:
    """An export's schedule (E8): ``with_system`` (the default) runs with every scheduled
    system refresh; ``own`` follows ``recurrence`` (daily, weekly on ``weekdays``, or every
    ``every_hours`` hours anchored at ``start``) in ``tz``; ``off`` means manual runs only.

    Fields that do not apply to the mode or recurrence are kept but ignored, so switching back
    restores them; constraints between fields are checked once ``mode`` is ``own``.
    """

    mode: ExportMode = ExportMode.WITH_SYSTEM
    recurrence: Recurrence = Recurrence.DAILY
    weekdays: frozenset[Weekday] = frozenset()
    every_hours: int | None = None
    start: time = time(0, 0)
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _member(ExportMode, self.mode, "mode"))
        object.__setattr__(self, "recurrence", _member(Recurrence, self.recurrence, "recurrence"))
        object.__setattr__(self, "weekdays", _weekday_set(self.weekdays, "weekdays"))
        check_times([self.start], field="start")
        parse_zone(self.tz)
        if self.every_hours is not None and not 1 <= self.every_hours <= 24:
            raise InputError(f"every_hours: {self.every_hours} is not between 1 and 24")
        if self.mode is not ExportMode.OWN:
            return
        if self.recurrence is Recurrence.WEEKLY and not self.weekdays:
            raise InputError("weekdays: a weekly recurrence needs at least one day, e.g. mon,thu")
        if self.recurrence is not Recurrence.WEEKLY and self.weekdays:
            raise InputError("weekdays: only a weekly recurrence takes weekdays")
        if self.recurrence is Recurrence.EVERY_N_HOURS and self.every_hours is None:
            raise InputError("every_hours: give the number of hours between runs (1 to 24)")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, for storage and the API; :meth:`from_dict` reads it back."""
        return {
            "mode": self.mode.value,
            "recurrence": self.recurrence.value,
            "weekdays": _sorted_days(self.weekdays),
            "every_hours": self.every_hours,
            "start": format_time(self.start),
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ExportSchedule:
        every = data.get("every_hours")
        if every is not None and not isinstance(every, int):
            raise InputError(f"every_hours: {every!r} is not a whole number of hours")
        return cls(
            mode=_member(ExportMode, data.get("mode", "with_system"), "mode"),
            recurrence=_member(Recurrence, data.get("recurrence", "daily"), "recurrence"),
            weekdays=_weekday_set(_list(data, "weekdays"), "weekdays"),
            every_hours=every,
            start=parse_time(str(data.get("start", "00:00")), field="start"),
            tz=str(data.get("tz", "UTC")),
        )


Schedule = SystemSchedule | ExportSchedule


def _list(data: Mapping[str, object], key: str) -> list[object]:
    value = data.get(key) or []
    if not isinstance(value, list | tuple | set | frozenset):
        raise InputError(f"{key}: expected a list, got {value!r}")
    return list(value)


def _sorted_days(days: frozenset[Weekday]) -> list[str]:
    return [day.value for day in sorted(days, key=lambda day: day.number)]


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
