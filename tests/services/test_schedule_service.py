"""The system schedule service (T1, R6): set, show with next due times, off; audited;
administrators only; bad input refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segsync.domain.permissions import Role
from segsync.domain.schedule import Frequency, SystemSchedule
from segsync.errors import InputError, PermissionDenied
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.runs.schedule import (
    schedule_from_options,
    schedule_off,
    set_schedule,
    show_schedule,
    system_schedule,
)
from tests.services.export_fixtures import acting_as

# Frozen clock of the conftest: 2025-06-30 12:00 UTC (a Monday; Lisbon is on WEST, UTC+1).


def _lisbon_weekly() -> SystemSchedule:
    return schedule_from_options(
        daily=False, weekly="mon,thu", times="06:00,18:00", tz="Europe/Lisbon"
    )


def test_the_system_schedule_is_off_by_default(service_context: ServiceContext) -> None:
    view = show_schedule(service_context)

    assert view.schedule.enabled is False
    assert view.description == "Off"
    assert view.next_due == []
    assert view.saved_at is None


def test_set_saves_the_schedule_and_shows_the_next_due_times(
    service_context: ServiceContext,
) -> None:
    view = set_schedule(service_context, _lisbon_weekly())

    assert view.description == "Weekly on Mon, Thu at 06:00 and 18:00 (Europe/Lisbon)"
    shown = show_schedule(service_context, count=5)
    assert shown.next_due == [
        datetime(2025, 6, 30, 17, 0, tzinfo=UTC),  # Mon 18:00 WEST
        datetime(2025, 7, 3, 5, 0, tzinfo=UTC),  # Thu 06:00 WEST
        datetime(2025, 7, 3, 17, 0, tzinfo=UTC),
        datetime(2025, 7, 7, 5, 0, tzinfo=UTC),  # Mon
        datetime(2025, 7, 7, 17, 0, tzinfo=UTC),
    ]
    assert shown.saved_at == datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
    assert shown.saved_by == "local-admin"
    assert shown.to_dict()["next_due"][0] == "2025-06-30T17:00:00Z"
    stored = system_schedule(service_context).schedule
    assert stored.frequency is Frequency.WEEKLY
    assert stored.tz == "Europe/Lisbon"


def test_off_keeps_days_and_times_and_both_changes_are_audited(
    service_context: ServiceContext,
) -> None:
    set_schedule(service_context, _lisbon_weekly())

    view = schedule_off(service_context)

    assert view.schedule.enabled is False
    assert view.next_due == []
    kept = system_schedule(service_context).schedule
    assert [t.strftime("%H:%M") for t in kept.times] == ["06:00", "18:00"]
    assert {day.value for day in kept.weekdays} == {"mon", "thu"}
    events = audit.list_events(service_context)
    actions = [event.action for event in events]
    assert "schedule.set" in actions
    assert "schedule.switched_off" in actions
    assert any("Weekly on Mon, Thu" in event.summary for event in events)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_only_administrators_show_set_or_switch_off_the_schedule(
    service_context: ServiceContext, role: Role
) -> None:
    other = acting_as(service_context, role)

    for attempt in (
        lambda: show_schedule(other),
        lambda: set_schedule(other, _lisbon_weekly()),
        lambda: schedule_off(other),
    ):
        with pytest.raises(PermissionDenied, match="only administrators change the system"):
            attempt()
    assert system_schedule(service_context).saved_at is None


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"times": "01:00,02:00,03:00,04:00,05:00"}, "times", "at most 4 times a day"),
        ({"times": "6pm"}, "times", "is not a time"),
        ({"tz": "Europe/Lisbo"}, "tz", "unknown time zone 'Europe/Lisbo'"),
        ({"weekly": "mon,funday", "daily": False}, "weekdays", "'funday' is not a day"),
        ({"weekly": "mon"}, "frequency", "not both"),
        ({"daily": False}, "frequency", "give --daily, or --weekly DAYS"),
    ],
)
def test_bad_options_are_refused_naming_the_field(
    options: dict[str, object], field: str, words: str
) -> None:
    chosen: dict[str, object] = {"daily": True, "weekly": None, "times": "06:00", "tz": "UTC"}
    chosen.update(options)

    with pytest.raises(InputError) as caught:
        schedule_from_options(**chosen)  # type: ignore[arg-type]

    assert caught.value.message.startswith(f"{field}: ")
    assert words in caught.value.message


def test_daylight_saving_day_shows_the_gap_slot_once_at_the_first_valid_instant(
    service_context: ServiceContext,
) -> None:
    service_context.now = lambda: datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    set_schedule(
        service_context,
        schedule_from_options(daily=True, weekly=None, times="01:30", tz="Europe/Lisbon"),
    )

    view = show_schedule(service_context, count=2)

    # 29 March 2026 Lisbon jumps 01:00 → 02:00: 01:30 runs at 02:00 WEST = 01:00 UTC.
    assert view.next_due == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]
