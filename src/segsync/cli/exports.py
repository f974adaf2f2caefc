"""``segsync exports``: create, list, show, edit, duplicate, detach, attach and remove exports.

``exports_app`` is the Typer group; the run engine adds ``run`` and ``run-all`` to it from
:mod:`segsync.cli.runs`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from segsync.cli.context import service_context
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    console,
    err_console,
    print_json,
    wants_json,
)
from segsync.services import exports as export_service

exports_app = typer.Typer(
    name="exports",
    help="Exports: which segments go to which Autopilot connection, and how.",
    no_args_is_help=True,
)

# ---------------------------------------------------------------- shared options

EmailOption = Annotated[
    str | None,
    typer.Option("--email", metavar="ATTR", help="The profile attribute holding the email."),
]
FirstNameOption = Annotated[
    str | None,
    typer.Option("--first-name", metavar="ATTR", help="The attribute for FirstName."),
]
LastNameOption = Annotated[
    str | None,
    typer.Option("--last-name", metavar="ATTR", help="The attribute for LastName."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="FIELD=ATTR",
        help="Map a standard field (Company=CompanyName) or a custom one "
        "(custom:integer:Rating=Score). Repeatable.",
    ),
]
SegmentOption = Annotated[
    list[str] | None,
    typer.Option("--segment", metavar="NAME", help="A segment to export. Repeatable."),
]
RemovalOption = Annotated[
    str | None,
    typer.Option("--removal", metavar="mirror|add-only", help="When a person leaves a segment."),
]
PrefixOption = Annotated[
    str | None,
    typer.Option("--list-prefix", metavar="P", help="Put P before each list title."),
]
ScheduleOption = Annotated[
    str | None,
    typer.Option(
        "--schedule",
        metavar="KIND",
        help="with-system (default), off, daily, weekly or every.",
    ),
]
AtOption = Annotated[
    str | None, typer.Option("--at", metavar="HH:MM", help="Local time of the schedule.")
]
DaysOption = Annotated[
    str | None, typer.Option("--days", metavar="DAYS", help="Weekdays for weekly, e.g. mon,thu.")
]
HoursOption = Annotated[
    int | None, typer.Option("--hours", metavar="N", help="Hours between runs for every.")
]
TzOption = Annotated[
    str | None, typer.Option("--tz", metavar="ZONE", help="IANA time zone (default UTC).")
]


def _say(text: str, *, err: bool = False) -> None:
    """Print ``text`` as is: no markup, no emoji codes (``custom:date:X`` stays as typed)."""
    (err_console if err else console).print(Text(text))


def _table(
    title: str | None, columns: list[str], rows: list[list[str]], *, min_widths: int = 0
) -> None:
    """A Rich table whose cells are shown as typed (no markup or emoji codes). Long values wrap,
    never cut; each column is at least ``min_widths`` wide (or its widest value if shorter)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for index, column in enumerate(columns):
        widest = max([len(row[index]) for row in rows] or [0])
        table.add_column(column, overflow="fold", min_width=min(min_widths, widest) or None)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def _connection_label(connection: str, connection_type: str | None) -> str:
    return f"{connection} ({connection_type})" if connection_type else connection


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _print_details(details: export_service.ExportDetails) -> None:
    console.print(Text(details.name, style="bold"))
    facts = [
        ("Connection", _connection_label(details.connection, details.connection_type)),
        ("Removal policy", details.removal_policy),
        ("List prefix", details.list_prefix or "(none)"),
        ("Schedule", details.schedule_description),
        ("Latest status", (details.status or "no run yet").capitalize()),
        ("Refreshed", _when(details.refreshed_at)),
        ("Your permissions", details.your_permissions),
        ("Created", f"{_when(details.created_at)} by {details.created_by}"),
    ]
    if details.contract_limit is not None:
        facts.insert(1, ("Contract limit", f"{details.contract_limit:,} profiles"))
    for label, value in facts:
        _say(f"  {label + ':':<18}{value}")
    _table(
        "Data matching",
        ["Autopilot field", "Profile attribute"],
        [[line.field, line.attribute] for line in details.mapping],
    )
    _print_segments(details)


def _print_segments(details: export_service.ExportDetails) -> None:
    rows: list[list[str]] = [
        [
            line.name,
            "?" if line.members is None else f"{line.members:,}",
            line.list_title,
            line.list_id or "(created on first run)",
        ]
        for line in details.segments
    ]
    total = "?" if details.distinct_total is None else f"{details.distinct_total:,}"
    rows.append(["Distinct total", total, "", ""])
    _table("Segments", ["Segment", "Members", "Autopilot list", "List id"], rows)
    for warning in details.warnings:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), warning))


# ---------------------------------------------------------------- commands


@exports_app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A unique name for the export.")],
    connection: Annotated[
        str, typer.Option("--connection", metavar="C", help="The connection to send to.")
    ],
    email: Annotated[
        str,
        typer.Option("--email", metavar="ATTR", help="The profile attribute holding the email."),
    ],
    segment: Annotated[
        list[str],
        typer.Option("--segment", metavar="NAME", help="A segment to export. Repeatable."),
    ],
    first_name: FirstNameOption = None,
    last_name: LastNameOption = None,
    map_: MapOption = None,
    removal: RemovalOption = "mirror",
    list_prefix: PrefixOption = "",
    schedule: ScheduleOption = None,
    at: AtOption = None,
    days: DaysOption = None,
    hours: HoursOption = None,
    tz: TzOption = None,
    json_output: JsonOption = False,
) -> None:
    """Save a new export. Saving never runs it: use `segsync exports run NAME`."""
    chosen = export_service.schedule_from_options(schedule, at=at, days=days, hours=hours, tz=tz)
    with service_context(ctx) as services:
        record = export_service.create_export(
            services,
            name,
            connection,
            email,
            first_name=first_name,
            last_name=last_name,
            maps=map_ or [],
            segments=segment,
            removal=removal or "mirror",
            list_prefix=list_prefix or "",
            schedule=chosen,
        )
        details = export_service.show_export(services, record.name)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    _say(
        f"Saved export {record.name!r} on connection {record.connection_name!r}. "
        f"Nothing was sent: run it with `segsync exports run {record.name!r}`."
    )
    _print_segments(details)


@exports_app.command("list")
def list_command(
    ctx: typer.Context,
    search: Annotated[
        str | None,
        typer.Option("--search", metavar="S", help="Match export, connection name or type."),
    ] = None,
    sort: Annotated[
        str,
        typer.Option("--sort", metavar="COL", help="name, connection, status or refreshed."),
    ] = "name",
    descending: Annotated[bool, typer.Option("--desc", help="Sort in descending order.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Every export with its connection, segments, schedule, latest status and permissions."""
    with service_context(ctx) as services:
        rows = export_service.list_exports(
            services, search=search, sort=sort, descending=descending
        )
    if wants_json(ctx, json_output):
        print_json([row.to_dict() for row in rows])
        return
    if not rows:
        _say("No exports." if not search else f"No export matches {search!r}.")
        return
    _table(
        None,
        ["Name", "Connection", "Segments", "Schedule", "Status", "Refreshed", "Your permissions"],
        [
            [
                row.name,
                _connection_label(row.connection, row.connection_type),
                ", ".join(row.segments),
                row.schedule,
                (row.status or "-").capitalize(),
                row.refreshed_at.strftime("%Y-%m-%d %H:%M") if row.refreshed_at else "never",
                row.your_permissions,
            ]
            for row in rows
        ],
        min_widths=10,
    )


@exports_app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    json_output: JsonOption = False,
) -> None:
    """An export's settings, each segment's member count and list, and limit warnings."""
    with service_context(ctx) as services:
        details = export_service.show_export(services, name)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    _print_details(details)


@exports_app.command("edit")
def edit_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export to change.")],
    new_name: Annotated[str | None, typer.Option("--name", help="Rename the export.")] = None,
    connection: Annotated[
        str | None,
        typer.Option("--connection", metavar="C", help="Move it to this connection."),
    ] = None,
    email: EmailOption = None,
    first_name: FirstNameOption = None,
    last_name: LastNameOption = None,
    map_: MapOption = None,
    clear_maps: Annotated[
        bool, typer.Option("--clear-maps", help="Remove every --map field mapping.")
    ] = False,
    segment: SegmentOption = None,
    removal: RemovalOption = None,
    list_prefix: PrefixOption = None,
    schedule: ScheduleOption = None,
    at: AtOption = None,
    days: DaysOption = None,
    hours: HoursOption = None,
    tz: TzOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change an export. Only the options given change; --map and --segment replace the set."""
    if clear_maps and map_:
        raise typer.BadParameter("give --map or --clear-maps, not both", param_hint="--map")
    with service_context(ctx) as services:
        current = export_service.get_export(services, name).schedule if schedule else None
        chosen = export_service.schedule_from_options(
            schedule, at=at, days=days, hours=hours, tz=tz, current=current
        )
        change = export_service.edit_export(
            services,
            name,
            new_name=new_name,
            connection=connection,
            email=email,
            first_name=first_name,
            last_name=last_name,
            maps=[] if clear_maps else map_,
            segments=segment,
            removal=removal,
            list_prefix=list_prefix,
            schedule=chosen,
        )
        details = export_service.show_export(services, change.export.name)
    if wants_json(ctx, json_output):
        print_json({**details.to_dict(), "sync_state_reset": change.sync_state_reset})
        return
    _say(f"Saved export {change.export.name!r}. Nothing was sent.")
    if change.sync_state_reset:
        _say(
            "It moved to another connection: its sync state was reset, so its next run sends "
            "everyone to the new destination."
        )
    _print_segments(details)


@exports_app.command("duplicate")
def duplicate_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export to copy.")],
    new_name: Annotated[str, typer.Option("--name", help="The new export's name.")],
    connection: Annotated[
        str | None,
        typer.Option("--connection", metavar="C", help="Put the copy on this connection."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Copy an export's settings under a new name (not its sync state or runs)."""
    with service_context(ctx) as services:
        record = export_service.duplicate_export(services, name, new_name, connection=connection)
        details = export_service.show_export(services, record.name)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    _say(f"Created export {record.name!r} as a copy of {name!r}. Nothing was sent.")


@exports_app.command("detach")
def detach_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    json_output: JsonOption = False,
) -> None:
    """Set an export to "No connection": it keeps its settings and never runs until attached."""
    with service_context(ctx) as services:
        change = export_service.detach_export(services, name)
    if wants_json(ctx, json_output):
        print_json(_change_json(change))
        return
    _say(
        f"Export {name!r} has no connection now; it keeps its settings and will not run until "
        f"you attach one: `segsync exports attach {name!r} --connection NAME`."
    )
    _print_canceled(change)


@exports_app.command("attach")
def attach_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    connection: Annotated[str, typer.Option("--connection", metavar="C", help="The connection.")],
    json_output: JsonOption = False,
) -> None:
    """Attach an export to a connection, so it runs again."""
    with service_context(ctx) as services:
        change = export_service.attach_export(services, name, connection)
    if wants_json(ctx, json_output):
        print_json(_change_json(change))
        return
    _say(f"Export {name!r} is attached to connection {change.export.connection_name!r}.")
    if change.sync_state_reset:
        _say(
            "Its sync state described another connection and was reset: the next run sends "
            "everyone."
        )


@exports_app.command("remove")
def remove_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove an export, its sync state and lists record; its run history stays."""
    if not yes:
        confirmed = typer.confirm(
            f"Remove export {name!r}? Queued runs are canceled and a running one stops after "
            "its current batch. Contacts already in Autopilot stay there.",
            default=False,
            err=True,
        )
        if not confirmed:
            _say("Nothing removed.", err=True)
            raise typer.Exit(EXIT_FAILED)
    with service_context(ctx) as services:
        change = export_service.remove_export(services, name)
    if wants_json(ctx, json_output):
        print_json(_change_json(change))
        return
    _say(f"Removed export {name!r}.")
    _print_canceled(change)


def _change_json(change: export_service.ExportChange) -> dict[str, object]:
    return {
        "name": change.export.name,
        "connection": change.export.connection_name,
        "sync_state_reset": change.sync_state_reset,
        "canceled_runs": change.canceled_runs,
        "stop_requested": change.stop_requested,
    }


def _print_canceled(change: export_service.ExportChange) -> None:
    if change.canceled_runs:
        ids = ", ".join(str(run_id) for run_id in change.canceled_runs)
        _say(f"Canceled queued runs: {ids}.")
    if change.stop_requested:
        ids = ", ".join(str(run_id) for run_id in change.stop_requested)
        _say(f"Runs {ids} stop after their current batch.")
