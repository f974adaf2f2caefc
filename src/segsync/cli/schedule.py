"""``segsync schedule show | set | off``: the system refresh schedule (administrators only)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, print_json, wants_json
from segsync.services.runs.defaults import DEFAULT_NEXT

if TYPE_CHECKING:
    from segsync.services.runs import schedule as schedule_service
else:
    schedule_service = lazy_module("segsync.services.runs.schedule")

schedule_app = typer.Typer(
    name="schedule",
    help="The system refresh schedule: data sources, segments, then exports (administrators).",
    no_args_is_help=True,
)


def _local(moment: datetime, view: schedule_service.ScheduleView) -> str:
    local = moment.astimezone(view.schedule.zone)
    utc = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({utc})"


def _print(view: schedule_service.ScheduleView, as_json: bool) -> None:
    if as_json:
        print_json(view.to_dict())
        return
    console.print(view.description, highlight=False, markup=False)
    if not view.next_due:
        console.print("Nothing is due: the system schedule is off.", highlight=False)
    else:
        console.print("Next:", highlight=False)
        for moment in view.next_due:
            console.print(f"  {_local(moment, view)}", highlight=False, markup=False)
    if view.saved_at is not None:
        saved = view.saved_at.strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"Saved {saved} by {view.saved_by or 'unknown'}", highlight=False)


@schedule_app.command("show")
def show_command(
    ctx: typer.Context,
    next_count: Annotated[
        int, typer.Option("--next", metavar="N", help="How many next due times to list.")
    ] = DEFAULT_NEXT,
    json_flag: JsonOption = False,
) -> None:
    """The system schedule and its next due times."""
    with service_context(ctx) as services:
        view = schedule_service.show_schedule(services, count=next_count)
    _print(view, wants_json(ctx, json_flag))


@schedule_app.command("set")
def set_command(
    ctx: typer.Context,
    times: Annotated[
        str,
        typer.Option("--times", metavar="HH:MM[,HH:MM...]", help="One to four local times a day."),
    ],
    tz: Annotated[
        str, typer.Option("--tz", metavar="ZONE", help="IANA time zone, e.g. Europe/Lisbon.")
    ],
    daily: Annotated[bool, typer.Option("--daily", help="Every day.")] = False,
    weekly: Annotated[
        str | None,
        typer.Option("--weekly", metavar="DAYS", help="On these days, e.g. mon,thu."),
    ] = None,
    json_flag: JsonOption = False,
) -> None:
    """Switch the system schedule on: daily or weekly, at up to four local times a day."""
    chosen = schedule_service.schedule_from_options(daily=daily, weekly=weekly, times=times, tz=tz)
    with service_context(ctx) as services:
        view = schedule_service.set_schedule(services, chosen)
    _print(view, wants_json(ctx, json_flag))


@schedule_app.command("off")
def off_command(ctx: typer.Context, json_flag: JsonOption = False) -> None:
    """Switch the system schedule off (its days and times are kept for next time)."""
    with service_context(ctx) as services:
        view = schedule_service.schedule_off(services)
    _print(view, wants_json(ctx, json_flag))
