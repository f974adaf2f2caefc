"""Local wall-clock times, weekdays and IANA time zones: parsing, and conversion to UTC.

Pure (stdlib ``zoneinfo``/``datetime`` only). :mod:`segsync.domain.schedule` builds on it and
re-exports its public names.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segsync.errors import InputError

MAX_TIMES_PER_DAY = 4
"""The system schedule runs at most this many times a day (T1)."""


class Weekday(StrEnum):
    """Days of the week, Monday first (``date.weekday()`` order)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """0 for Monday … 6 for Sunday, as ``date.weekday()``."""
        return list(Weekday).index(self)

    @property
    def label(self) -> str:
        return self.value.capitalize()


def parse_zone(name: str, *, field: str = "tz") -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Lisbon``, ``UTC``); an InputError naming ``field``."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(
            f"{field}: unknown time zone {name!r}; use an IANA name such as "
            "'Europe/Lisbon', 'America/New_York' or 'UTC'"
        ) from None


def parse_time(text: str, *, field: str = "start") -> time:
    """A local wall time written ``HH:MM`` (24-hour clock; ``6:00`` is accepted too)."""
    hours, sep, minutes = text.strip().partition(":")
    if (
        sep
        and (hours + minutes).isascii()
        and hours.isdigit()
        and minutes.isdigit()
        and len(hours) in (1, 2)
        and len(minutes) == 2
        and int(hours) < 24
        and int(minutes) < 60
    ):
        return time(int(hours), int(minutes))
    raise InputError(f"{field}: {text.strip()!r} is not a time; write HH:MM, e.g. 06:00 or 18:30")


def parse_times(text: str, *, field: str = "times") -> tuple[time, ...]:
    """Comma-separated ``HH:MM`` times, e.g. ``"06:00,18:00"``: 1 to 4 distinct, sorted."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise InputError(f"{field}: give at least one time, e.g. 06:00 or 06:00,18:00")
    return check_times([parse_time(part, field=field) for part in parts], field=field)


def parse_weekdays(text: str, *, field: str = "weekdays") -> frozenset[Weekday]:
    """Comma-separated days, e.g. ``"mon,thu"`` (full names and any case accepted)."""
    days: set[Weekday] = set()
    for part in text.split(","):
        word = part.strip().lower()
        if not word:
            continue
        matches = [day for day in Weekday if word in (day.value, _FULL_NAMES[day])]
        if not matches:
            raise InputError(
                f"{field}: {part.strip()!r} is not a day; use mon, tue, wed, thu, fri, sat, sun"
            )
        days.add(matches[0])
    if not days:
        raise InputError(f"{field}: give at least one day, e.g. mon,thu")
    return frozenset(days)


def check_times(times: Iterable[time], *, field: str = "times") -> tuple[time, ...]:
    """Validate wall times (whole minutes, distinct, at most four); return them sorted."""
    result = tuple(sorted(times))
    for value in result:
        if value.tzinfo is not None or value.second or value.microsecond:
            raise InputError(f"{field}: {value} must be a plain local time in whole minutes")
    for first, second in itertools.pairwise(result):
        if first == second:
            raise InputError(f"{field}: {format_time(first)} is given twice")
    if len(result) > MAX_TIMES_PER_DAY:
        raise InputError(
            f"{field}: {len(result)} times given; a schedule runs at most "
            f"{MAX_TIMES_PER_DAY} times a day"
        )
    return result


def format_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


_FULL_NAMES = {
    Weekday.MON: "monday",
    Weekday.TUE: "tuesday",
    Weekday.WED: "wednesday",
    Weekday.THU: "thursday",
    Weekday.FRI: "friday",
    Weekday.SAT: "saturday",
    Weekday.SUN: "sunday",
}


def wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of local wall time ``wall`` on ``day`` in ``zone``, under the DST rules:
    a repeated wall time → its first occurrence; a skipped one → the first instant after the gap.
    """
    local = datetime.combine(day, wall, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap: fold=0 and fold=1 read the wall time with the offsets before and after the jump;
    # the transition lies between the two instants. Find it to the second.
    other = local.replace(fold=1).astimezone(UTC)
    low, high = min(instant, other), max(instant, other)
    after = high.astimezone(zone).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if (low + timedelta(seconds=mid)).astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid + 1
    return low + timedelta(seconds=lo)


def as_utc(value: datetime, field: str) -> datetime:
    """``value`` as an aware UTC datetime; an InputError naming ``field`` if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{field}: {value.isoformat()} has no time zone; pass an aware datetime")
    return value.astimezone(UTC)
