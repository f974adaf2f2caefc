"""Schedule maths (T1, E8): every instant is injected; nothing reads the clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.domain.schedule import (
    ExportMode,
    ExportSchedule,
    Frequency,
    Recurrence,
    SystemSchedule,
    Weekday,
    coalesce,
    describe,
    due_key,
    due_slots,
    next_due,
    parse_time,
    parse_times,
    parse_weekdays,
    previous_due,
    scheduler_tick,
    wall_to_utc,
)
from segsync.errors import InputError
from tests.conftest import examples

LISBON = "Europe/Lisbon"
NEW_YORK = "America/New_York"
TOKYO = "Asia/Tokyo"  # no daylight saving


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def daily(times: str, tz: str) -> SystemSchedule:
    return SystemSchedule(enabled=True, times=parse_times(times), tz=tz)


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


# ---------------------------------------------------------------- parsing and validation


def test_parse_times_sorts_and_accepts_up_to_four() -> None:
    assert parse_times("18:00, 06:00,6:30 ,23:59") == (
        time(6, 0),
        time(6, 30),
        time(18, 0),
        time(23, 59),
    )


def test_a_fifth_time_is_refused() -> None:
    with pytest.raises(InputError, match=r"times: 5 times given; .* at most 4 times a day"):
        parse_times("01:00,02:00,03:00,04:00,05:00")


@pytest.mark.parametrize("bad", ["24:00", "6", "06:60", "06-00", "6pm", "06:00:00", "١٢:00"])
def test_bad_time_formats_are_named(bad: str) -> None:
    with pytest.raises(InputError, match=rf"times: '{bad}' is not a time; write HH:MM"):
        parse_times(f"05:00,{bad}")


def test_duplicate_and_missing_times_are_refused() -> None:
    with pytest.raises(InputError, match="times: 06:00 is given twice"):
        parse_times("06:00,6:00")
    with pytest.raises(InputError, match="times: give at least one time"):
        parse_times(" , ")
    with pytest.raises(InputError, match="start: 'noon' is not a time"):
        parse_time("noon")


def test_parse_weekdays_accepts_short_and_full_names() -> None:
    assert parse_weekdays("mon,Thu, SUNDAY") == {Weekday.MON, Weekday.THU, Weekday.SUN}
    with pytest.raises(InputError, match=r"weekdays: 'mo' is not a day; use mon, tue"):
        parse_weekdays("mon,mo")
    with pytest.raises(InputError, match="weekdays: give at least one day"):
        parse_weekdays("")


@pytest.mark.parametrize("tz", ["Europe/Lisbo", "", "../etc/passwd", " UTC", "Mars/Olympus"])
def test_unknown_time_zones_are_refused_naming_the_field(tz: str) -> None:
    with pytest.raises(InputError, match=r"^tz: unknown time zone .*IANA name"):
        SystemSchedule(enabled=True, times=(time(6),), tz=tz)
    with pytest.raises(InputError, match=r"^tz: unknown time zone"):
        ExportSchedule(tz=tz)


def test_the_system_schedule_is_off_by_default() -> None:
    schedule = SystemSchedule()
    assert not schedule.enabled
    assert next_due(schedule, utc(2026, 1, 1)) is None
    assert due_slots(schedule, utc(2026, 1, 1), utc(2026, 2, 1)) == []
    assert describe(schedule) == "Off"


def test_enabled_schedules_need_times_and_weekly_needs_days() -> None:
    with pytest.raises(InputError, match="times: give at least one time"):
        SystemSchedule(enabled=True)
    with pytest.raises(InputError, match="weekdays: a weekly schedule needs at least one day"):
        SystemSchedule(enabled=True, frequency=Frequency.WEEKLY, times=(time(6),))
    with pytest.raises(InputError, match="weekdays: only a weekly schedule takes weekdays"):
        SystemSchedule(enabled=True, times=(time(6),), weekdays=frozenset({Weekday.MON}))
    with pytest.raises(InputError, match="frequency: 'monthly' is not one of daily, weekly"):
        SystemSchedule.from_dict({"enabled": True, "frequency": "monthly", "times": ["06:00"]})
    with pytest.raises(InputError, match="times: 5 times given"):
        SystemSchedule(times=tuple(time(h) for h in range(5)))


def test_switching_off_keeps_the_schedule_for_later() -> None:
    weekly = SystemSchedule(
        enabled=True,
        frequency=Frequency.WEEKLY,
        weekdays=parse_weekdays("mon,thu"),
        times=parse_times("06:00,18:00"),
        tz=LISBON,
    )
    off = SystemSchedule.from_dict({**weekly.to_dict(), "enabled": False})
    assert next_due(off, utc(2026, 1, 1)) is None
    assert SystemSchedule.from_dict({**off.to_dict(), "enabled": True}) == weekly


def test_export_schedule_validation() -> None:
    with pytest.raises(InputError, match="every_hours: 25 is not between 1 and 24"):
        ExportSchedule(mode=ExportMode.OWN, recurrence=Recurrence.EVERY_N_HOURS, every_hours=25)
    with pytest.raises(InputError, match="every_hours: give the number of hours"):
        ExportSchedule(mode=ExportMode.OWN, recurrence=Recurrence.EVERY_N_HOURS)
    with pytest.raises(InputError, match="weekdays: a weekly recurrence needs at least one day"):
        ExportSchedule(mode=ExportMode.OWN, recurrence=Recurrence.WEEKLY)
    with pytest.raises(InputError, match="mode: 'sometimes' is not one of with_system, own, off"):
        ExportSchedule.from_dict({"mode": "sometimes"})
    with pytest.raises(InputError, match="every_hours: 'six' is not a whole number"):
        ExportSchedule.from_dict({"mode": "own", "every_hours": "six"})
    assert ExportSchedule().mode is ExportMode.WITH_SYSTEM


def test_schedules_round_trip_through_dicts() -> None:
    own = ExportSchedule(
        mode=ExportMode.OWN,
        recurrence=Recurrence.WEEKLY,
        weekdays=parse_weekdays("fri,tue"),
        start=time(7, 45),
        tz=NEW_YORK,
    )
    assert own.to_dict()["weekdays"] == ["tue", "fri"]
    assert ExportSchedule.from_dict(own.to_dict()) == own


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InputError, match="after: 2026-01-01T00:00:00 has no time zone"):
        next_due(daily("06:00", TOKYO), datetime(2026, 1, 1))


# ---------------------------------------------------------------- plain recurrences


def test_daily_several_times_a_day_in_a_zone_without_dst() -> None:
    schedule = daily("06:00,12:00,18:00,23:30", TOKYO)  # UTC+9 all year
    slots = due_slots(schedule, utc(2026, 6, 1, 0), utc(2026, 6, 2, 0))
    assert slots == [
        utc(2026, 6, 1, 3),
        utc(2026, 6, 1, 9),
        utc(2026, 6, 1, 14, 30),
        utc(2026, 6, 1, 21),  # 06:00 JST on June 2
    ]
    assert all(slot.tzinfo is UTC for slot in slots)
    # (since, until]: a slot exactly at `since` is excluded, one exactly at `until` included.
    assert due_slots(schedule, utc(2026, 6, 1, 3), utc(2026, 6, 1, 9)) == [utc(2026, 6, 1, 9)]


def test_next_due_is_strictly_after() -> None:
    schedule = daily("06:00,18:00", LISBON)  # winter: Lisbon = UTC
    assert next_due(schedule, utc(2026, 1, 10, 5, 59)) == utc(2026, 1, 10, 6)
    assert next_due(schedule, utc(2026, 1, 10, 6)) == utc(2026, 1, 10, 18)
    assert next_due(schedule, utc(2026, 1, 10, 18)) == utc(2026, 1, 11, 6)
    assert previous_due(schedule, utc(2026, 1, 10, 18)) == utc(2026, 1, 10, 18)
    assert previous_due(schedule, utc(2026, 1, 10, 17)) == utc(2026, 1, 10, 6)


def test_weekly_on_chosen_days() -> None:
    schedule = SystemSchedule(
        enabled=True,
        frequency=Frequency.WEEKLY,
        weekdays=parse_weekdays("mon,thu"),
        times=parse_times("06:00,18:00"),
        tz=LISBON,
    )
    # 2026-06-01 is a Monday; Lisbon summer time is UTC+1.
    slots = due_slots(schedule, utc(2026, 5, 31), utc(2026, 6, 8))
    assert [local(s, LISBON) for s in slots] == [
        "2026-06-01 06:00 WEST",
        "2026-06-01 18:00 WEST",
        "2026-06-04 06:00 WEST",
        "2026-06-04 18:00 WEST",
    ]
    assert slots[0] == utc(2026, 6, 1, 5)
    # From Thursday evening, the next is Monday morning.
    assert next_due(schedule, utc(2026, 6, 4, 17)) == utc(2026, 6, 8, 5)


# ---------------------------------------------------------------- daylight saving


def test_new_york_spring_forward_runs_a_skipped_slot_once_at_the_end_of_the_gap() -> None:
    # 2026-03-08: 02:00 EST → 03:00 EDT (07:00 UTC). 02:30 does not exist that day.
    schedule = daily("02:30", NEW_YORK)
    slots = due_slots(schedule, utc(2026, 3, 7), utc(2026, 3, 10))
    assert [local(s, NEW_YORK) for s in slots] == [
        "2026-03-07 02:30 EST",
        "2026-03-08 03:00 EDT",
        "2026-03-09 02:30 EDT",
    ]
    assert slots[1] == utc(2026, 3, 8, 7)


def test_a_skipped_slot_and_the_slot_at_the_end_of_the_gap_run_once() -> None:
    schedule = daily("02:30,03:00", NEW_YORK)
    slots = due_slots(schedule, utc(2026, 3, 8, 0), utc(2026, 3, 8, 12))
    assert slots == [utc(2026, 3, 8, 7)]


def test_new_york_fall_back_runs_a_repeated_slot_once_at_its_first_occurrence() -> None:
    # 2026-11-01: 02:00 EDT → 01:00 EST; 01:30 happens at 05:30 and at 06:30 UTC.
    schedule = daily("01:30", NEW_YORK)
    slots = due_slots(schedule, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert slots == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert next_due(schedule, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)


def test_lisbon_spring_forward_and_fall_back() -> None:
    # Lisbon changes at 01:00 UTC: 01:00 → 02:00 local on 2026-03-29, 02:00 → 01:00 on 10-25.
    schedule = daily("01:30,18:00", LISBON)
    spring = due_slots(schedule, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    assert spring == [
        utc(2026, 3, 28, 18),  # 18:00 WET
        utc(2026, 3, 29, 1),  # 01:30 does not exist: 02:00 WEST
        utc(2026, 3, 29, 17),  # 18:00 WEST
        utc(2026, 3, 30, 0, 30),  # 01:30 WEST
    ]
    assert local(spring[1], LISBON) == "2026-03-29 02:00 WEST"
    autumn = due_slots(schedule, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert autumn == [
        utc(2026, 10, 24, 17),
        utc(2026, 10, 25, 0, 30),  # 01:30 WEST, the first of the two 01:30s
        utc(2026, 10, 25, 18),
        utc(2026, 10, 26, 1, 30),
    ]


def test_a_half_hour_dst_shift_is_handled_too() -> None:
    # Lord Howe Island moves 02:00 → 02:30 on 2026-10-04 (15:30 UTC).
    zone = ZoneInfo("Australia/Lord_Howe")
    assert wall_to_utc(datetime(2026, 10, 4).date(), time(2, 15), zone) == utc(2026, 10, 3, 15, 30)


def test_every_hour_over_dst_days_runs_each_existing_wall_hour_once() -> None:
    schedule = ExportSchedule(
        mode=ExportMode.OWN, recurrence=Recurrence.EVERY_N_HOURS, every_hours=1, tz=NEW_YORK
    )
    spring_day = due_slots(schedule, utc(2026, 3, 8, 4, 59), utc(2026, 3, 9, 3, 59))
    assert len(spring_day) == 23  # 02:00 does not exist: 03:00 runs once
    fall_day = due_slots(schedule, utc(2026, 11, 1, 3, 59), utc(2026, 11, 2, 4, 59))
    assert len(fall_day) == 24  # 01:00 happens twice but runs once
    assert utc(2026, 11, 1, 5) in fall_day
    assert utc(2026, 11, 1, 6) not in fall_day  # the second 01:00 EST


# ---------------------------------------------------------------- export schedules


def test_every_n_hours_is_anchored_at_the_start_time_each_day() -> None:
    six = ExportSchedule(
        mode=ExportMode.OWN,
        recurrence=Recurrence.EVERY_N_HOURS,
        every_hours=6,
        start=time(3, 15),
        tz=TOKYO,
    )
    day = due_slots(six, utc(2026, 6, 1, 15), utc(2026, 6, 2, 15))  # one Tokyo day
    assert [local(s, TOKYO) for s in day] == [
        "2026-06-02 03:15 JST",
        "2026-06-02 09:15 JST",
        "2026-06-02 15:15 JST",
        "2026-06-02 21:15 JST",
    ]
    seven = ExportSchedule(
        mode=ExportMode.OWN,
        recurrence=Recurrence.EVERY_N_HOURS,
        every_hours=7,
        start=time(10),
        tz=TOKYO,
    )
    day = due_slots(seven, utc(2026, 6, 1, 15), utc(2026, 6, 3, 15))
    assert [local(s, TOKYO)[-9:] for s in day] == ["03:00 JST", "10:00 JST", "17:00 JST"] * 2
    assert describe(seven) == "Every 7 hours from 03:00 each day (Asia/Tokyo)"
    assert describe(six) == "Every 6 hours from 03:15 (Asia/Tokyo)"


def test_own_daily_and_weekly_recurrences() -> None:
    own_daily = ExportSchedule(mode=ExportMode.OWN, start=time(7, 45), tz=NEW_YORK)
    assert next_due(own_daily, utc(2026, 1, 5)) == utc(2026, 1, 5, 12, 45)
    own_weekly = ExportSchedule(
        mode=ExportMode.OWN,
        recurrence=Recurrence.WEEKLY,
        weekdays=frozenset({Weekday.SAT}),
        start=time(9),
        tz=NEW_YORK,
    )
    assert next_due(own_weekly, utc(2026, 1, 5)) == utc(2026, 1, 10, 14)


def test_an_export_with_the_system_follows_the_system_schedule_and_off_never_runs() -> None:
    system = daily("06:00", LISBON)
    with_system = ExportSchedule()
    assert next_due(with_system, utc(2026, 1, 1), system=system) == utc(2026, 1, 1, 6)
    assert next_due(with_system, utc(2026, 1, 1)) is None  # the system schedule decides
    assert next_due(with_system, utc(2026, 1, 1), system=SystemSchedule()) is None
    off = ExportSchedule(mode=ExportMode.OFF)
    assert next_due(off, utc(2026, 1, 1), system=system) is None
    assert scheduler_tick(off, None, utc(2026, 1, 1, 6), system=system) is None


# ---------------------------------------------------------------- enqueueing


def test_three_days_of_downtime_coalesce_into_one_run_at_the_latest_missed_slot() -> None:
    schedule = daily("06:00,18:00", LISBON)
    last = utc(2026, 1, 10, 6)
    back_up = utc(2026, 1, 13, 9)  # down from Jan 10 07:00 to Jan 13 09:00
    missed = due_slots(schedule, last, back_up)
    assert len(missed) == 6
    assert coalesce(missed) == utc(2026, 1, 13, 6)
    assert coalesce([]) is None

    due = scheduler_tick(schedule, last, back_up)
    assert due == utc(2026, 1, 13, 6)
    # Ticking again before the next slot enqueues nothing more …
    assert scheduler_tick(schedule, due, back_up + timedelta(hours=8)) is None
    # … and the next slot is enqueued once it has passed.
    assert scheduler_tick(schedule, due, utc(2026, 1, 13, 18, 0, 30)) == utc(2026, 1, 13, 18)


def test_two_schedulers_compute_the_same_due_time_and_key() -> None:
    schedule = daily("06:00", NEW_YORK)
    last = utc(2026, 2, 1, 11)
    first = scheduler_tick(schedule, last, utc(2026, 2, 2, 11, 0, 5))
    second = scheduler_tick(schedule, last, utc(2026, 2, 2, 11, 1, 40))
    assert first == second == utc(2026, 2, 2, 11)
    assert first is not None
    assert due_key(first) == "2026-02-02T11:00:00Z"
    assert due_key(first.astimezone(ZoneInfo(NEW_YORK))) == "2026-02-02T11:00:00Z"


def test_a_new_schedule_does_not_fire_for_a_slot_long_past() -> None:
    schedule = daily("06:00", TOKYO)  # 21:00 UTC
    assert scheduler_tick(schedule, None, utc(2026, 5, 1, 23)) is None
    assert scheduler_tick(schedule, None, utc(2026, 5, 1, 21, 3)) == utc(2026, 5, 1, 21)
    assert scheduler_tick(schedule, None, utc(2026, 5, 1, 20, 59)) is None
    # Callers may pass the time the schedule was saved to catch up the very first slot.
    assert scheduler_tick(schedule, utc(2026, 5, 1, 12), utc(2026, 5, 1, 23)) == utc(2026, 5, 1, 21)


# ---------------------------------------------------------------- describe


def test_describe() -> None:
    weekly = SystemSchedule(
        enabled=True,
        frequency=Frequency.WEEKLY,
        weekdays=parse_weekdays("thu,mon"),
        times=parse_times("18:00,06:00"),
        tz=LISBON,
    )
    assert describe(weekly) == "Weekly on Mon, Thu at 06:00 and 18:00 (Europe/Lisbon)"
    assert describe(daily("06:00,12:00,18:00", "UTC")) == "Daily at 06:00, 12:00 and 18:00 (UTC)"
    assert describe(ExportSchedule()) == "With every system refresh"
    assert describe(ExportSchedule(mode=ExportMode.OFF)) == "Off (manual runs only)"
    hourly = ExportSchedule(
        mode=ExportMode.OWN, recurrence=Recurrence.EVERY_N_HOURS, every_hours=1, tz="UTC"
    )
    assert describe(hourly) == "Every hour from 00:00 (UTC)"


# ---------------------------------------------------------------- properties

ZONES = [LISBON, NEW_YORK, TOKYO, "Australia/Lord_Howe", "Pacific/Apia", "UTC"]


@settings(max_examples=examples(60), deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    minutes=st.lists(st.integers(0, 24 * 60 - 1), min_size=1, max_size=4, unique=True),
    after=st.datetimes(datetime(2010, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_next_and_previous_due_agree_with_due_slots(
    tz: str, minutes: list[int], after: datetime
) -> None:
    schedule = SystemSchedule(
        enabled=True, times=tuple(time(m // 60, m % 60) for m in minutes), tz=tz
    )
    upcoming = next_due(schedule, after)
    assert upcoming is not None
    assert after < upcoming <= after + timedelta(days=2)
    assert due_slots(schedule, after, upcoming) == [upcoming]
    assert previous_due(schedule, upcoming) == upcoming
    week = due_slots(schedule, after, after + timedelta(days=7))
    assert week == sorted(set(week))
    assert 6 * len(minutes) <= len(week) <= 8 * len(minutes)
