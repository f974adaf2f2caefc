"""``/api/v1/schedule`` (T1, R6): the system refresh schedule with its next due times; set it
(daily, or weekly on chosen weekdays; up to four times a day; in a time zone) or switch it off.
Administrators only, like Admin > System and ``segsync schedule``; others get 403."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from segsync.services.runs import schedule
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/schedule", tags=["schedule"])

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_TIMES = 4


class ScheduleIn(BaseModel):
    """An enabled schedule. Switch it off with ``POST /api/v1/schedule/off``."""

    frequency: Literal["daily", "weekly"] = Field(description="daily, or weekly on `weekdays`")
    weekdays: list[Weekday] = Field(
        default_factory=list,
        max_length=7,
        description="The days of a weekly schedule (ignored when daily).",
    )
    times: list[Annotated[str, Field(max_length=10)]] = Field(
        min_length=1,
        max_length=MAX_TIMES,
        description="Up to four local times a day, HH:MM (e.g. 06:00, 18:30).",
        examples=[["06:00", "18:00"]],
    )
    tz: str = Field(
        default="UTC",
        min_length=1,
        max_length=100,
        description="An IANA time zone, e.g. Europe/Lisbon (daylight saving handled).",
    )


class ScheduleOut(BaseModel):
    enabled: bool
    frequency: str = Field(description="daily or weekly")
    weekdays: list[str]
    times: list[str] = Field(description="Local times, HH:MM.")
    tz: str
    description: str = Field(description="The schedule in words.")
    next_due: list[str] = Field(description="The next due instants, UTC (ISO 8601).")
    next_due_local: list[str] = Field(description="The same instants in the schedule's zone.")
    saved_at: str | None
    saved_by: str | None


def _out(view: schedule.ScheduleView) -> ScheduleOut:
    data: dict[str, Any] = view.to_dict()
    return ScheduleOut.model_validate(data)


@router.get("", summary="The system schedule and its next due times")
def show_schedule(
    ctx: ApiContextDep,
    count: Annotated[
        int, Query(alias="next", ge=1, le=100, description="How many due times to list.")
    ] = 5,
) -> ScheduleOut:
    return _out(schedule.show_schedule(ctx, count=count))


@router.put("", summary="Set the system schedule (switches it on)")
def set_schedule(ctx: ApiContextDep, body: ScheduleIn) -> ScheduleOut:
    """Slots before now never fire: the scheduler counts from the moment it was saved.
    Mistakes answer 422 naming the field (``times``, ``weekdays``, ``tz``)."""
    weekly = body.frequency == "weekly"
    chosen = schedule.schedule_from_options(
        daily=not weekly,
        weekly=",".join(body.weekdays) if weekly else None,
        times=",".join(body.times),
        tz=body.tz.strip(),
    )
    return _out(schedule.set_schedule(ctx, chosen))


@router.post("/off", summary="Switch the system schedule off (keeps its days and times)")
def schedule_off(ctx: ApiContextDep) -> ScheduleOut:
    return _out(schedule.schedule_off(ctx))
