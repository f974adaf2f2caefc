"""What a schedule is (T1, E8): the system refresh schedule and an export's schedule, their
checks and their JSON-ready form. When they are due is :mod:`segsync.domain.schedule`.

Pure: stdlib ``zoneinfo``/``datetime`` only, through :mod:`segsync.domain.local_time`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from segsync.domain.local_time import (
    Weekday,
    check_times,
    format_time,
    parse_time,
    parse_zone,
)
from segsync.errors import InputError

__all__ = [
    "ExportMode",
    "ExportSchedule",
    "Frequency",
    "Recurrence",
    "Schedule",
    "SystemSchedule",
]


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
