"""``segsync exports``: create, list, show, edit, duplicate, detach, attach and remove exports.

``exports_app`` is the Typer group; the run engine adds ``run`` and ``run-all`` to it from
:mod:`segsync.cli.runs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.export_options import (
    AtOption,
    DaysOption,
    EmailOption,
    FirstNameOption,
    HoldGrowthOption,
    HoldRemovalsOption,
    HoursOption,
    LastNameOption,
    MapOption,
    PrefixOption,
    RemovalOption,
    ScheduleOption,
    SegmentOption,
    TzOption,
)
from segsync.cli.export_views import (
    change_json,
    connection_label,
    print_canceled,
    print_details,
    print_segments,
    say,
)
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    WideOption,
    print_json,
    print_table,
    wants_json,
)
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services import connections as connection_service
    from segsync.services import exports as export_service
else:
    connection_service = lazy_module("segsync.services.connections")
    export_service = lazy_module("segsync.services.exports")

exports_app = typer.Typer(
    name="exports",
    help="Exports: which segments go to which destination connection, and how.",
    no_args_is_help=True,
)


def parse_map(text: str) -> export_service.MappingLine:
    """``--map FIELD=ATTR`` as a :class:`MappingLine`; the field itself is checked by the
    service, against the connection's destination."""
    target, sep, attribute = text.partition("=")
    if not sep:
        raise InputError(f"--map {text!r}: write FIELD=ATTRIBUTE, e.g. Company=CompanyName")
    if not target.strip():
        raise InputError(f"--map {text!r}: the destination field before '=' is missing")
    if not attribute.strip():
        raise InputError(f"--map {text!r}: the profile attribute after '=' is missing")
    return export_service.MappingLine(target.strip(), attribute.strip())


def _lines(maps: Sequence[str]) -> list[export_service.MappingLine]:
    return [parse_map(text) for text in maps]


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
    hold_removals: HoldRemovalsOption = None,
    hold_growth: HoldGrowthOption = None,
    schedule: ScheduleOption = None,
    at: AtOption = None,
    days: DaysOption = None,
    hours: HoursOption = None,
    tz: TzOption = None,
    json_output: JsonOption = False,
) -> None:
    """Save a new export. Saving never runs it: use `segsync exports run NAME`."""
    chosen = export_service.schedule_from_options(schedule, at=at, days=days, hours=hours, tz=tz)
    matching = export_service.DataMatching(email, first_name, last_name, _lines(map_ or []))
    with service_context(ctx) as services:
        settings = export_service.ExportSettings(
            name=name,
            connection_id=connection_service.connection_id(services, connection),
            matching=matching,
            segments=segment,
            removal=removal or "mirror",
            list_prefix=list_prefix or "",
            schedule=chosen,
            hold_removals=hold_removals or "20%",
            hold_growth=hold_growth or "3x",
        )
        record = export_service.create_export(services, settings)
        details = export_service.show_export(services, record.id)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    say(
        f"Saved export {record.name!r} on connection {record.connection_name!r}. "
        f"Nothing was sent: run it with `segsync exports run {record.name!r}`."
    )
    print_segments(details)


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
    wide: WideOption = False,
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
        say("No exports." if not search else f"No export matches {search!r}.")
        return
    print_table(
        None,
        ["Name", "Status", "Connection", "Schedule", "Refreshed", "Segments", "Your permissions"],
        [
            [
                row.name,
                (row.status or "-").capitalize(),
                connection_label(row.connection, row.connection_type),
                row.schedule,
                row.refreshed_at.strftime("%Y-%m-%d %H:%M") if row.refreshed_at else "never",
                ", ".join(row.segments),
                row.your_permissions,
            ]
            for row in rows
        ],
        wide=wide,
    )


@exports_app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    json_output: JsonOption = False,
) -> None:
    """An export's settings, each segment's member count and list, and limit warnings."""
    with service_context(ctx) as services:
        details = export_service.show_export(services, export_service.export_id(services, name))
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    print_details(details)


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
    hold_removals: HoldRemovalsOption = None,
    hold_growth: HoldGrowthOption = None,
    schedule: ScheduleOption = None,
    at: AtOption = None,
    days: DaysOption = None,
    hours: HoursOption = None,
    tz: TzOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change an export. Only the options given change; --map and --segment replace the set."""
    from segsync.services.exports import ExportEdit, or_unset

    if clear_maps and map_:
        raise typer.BadParameter("give --map or --clear-maps, not both", param_hint="--map")
    lines = [] if clear_maps else (_lines(map_) if map_ is not None else None)
    with service_context(ctx) as services:
        export_id = export_service.export_id(services, name)
        current = export_service.get_export(services, export_id).schedule if schedule else None
        chosen = export_service.schedule_from_options(
            schedule, at=at, days=days, hours=hours, tz=tz, current=current
        )
        connection_id = (
            connection_service.connection_id(services, connection) if connection else None
        )
        edit = ExportEdit(
            name=or_unset(new_name),
            connection_id=or_unset(connection_id),
            email=or_unset(email),
            first_name=or_unset(first_name),
            last_name=or_unset(last_name),
            lines=or_unset(lines),
            segments=or_unset(segment),
            removal=or_unset(removal),
            list_prefix=or_unset(list_prefix),
            schedule=or_unset(chosen),
            hold_removals=or_unset(hold_removals),
            hold_growth=or_unset(hold_growth),
        )
        change = export_service.edit_export(services, export_id, edit)
        details = export_service.show_export(services, export_id)
    if wants_json(ctx, json_output):
        print_json({**details.to_dict(), "sync_state_reset": change.sync_state_reset})
        return
    say(f"Saved export {change.export.name!r}. Nothing was sent.")
    if change.sync_state_reset:
        say(
            "It moved to another connection: its sync state was reset, so its next run sends "
            "everyone to the new destination."
        )
    print_segments(details)


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
        export_id = export_service.export_id(services, name)
        connection_id = (
            connection_service.connection_id(services, connection) if connection else None
        )
        record = export_service.duplicate_export(
            services, export_id, new_name, connection_id=connection_id
        )
        details = export_service.show_export(services, record.id)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    say(f"Created export {record.name!r} as a copy of {name!r}. Nothing was sent.")


@exports_app.command("detach")
def detach_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    json_output: JsonOption = False,
) -> None:
    """Set an export to "No connection": it keeps its settings and never runs until attached."""
    with service_context(ctx) as services:
        change = export_service.detach_export(services, export_service.export_id(services, name))
    if wants_json(ctx, json_output):
        print_json(change_json(change))
        return
    say(
        f"Export {name!r} has no connection now; it keeps its settings and will not run until "
        f"you attach one: `segsync exports attach {name!r} --connection NAME`."
    )
    print_canceled(change)


@exports_app.command("attach")
def attach_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    connection: Annotated[str, typer.Option("--connection", metavar="C", help="The connection.")],
    json_output: JsonOption = False,
) -> None:
    """Attach an export to a connection, so it runs again."""
    with service_context(ctx) as services:
        change = export_service.attach_export(
            services,
            export_service.export_id(services, name),
            connection_service.connection_id(services, connection),
        )
    if wants_json(ctx, json_output):
        print_json(change_json(change))
        return
    say(f"Export {name!r} is attached to connection {change.export.connection_name!r}.")
    if change.sync_state_reset:
        say(
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
            "its current batch. Contacts already sent stay at the destination.",
            default=False,
            err=True,
        )
        if not confirmed:
            say("Nothing removed.", err=True)
            raise typer.Exit(EXIT_FAILED)
    with service_context(ctx) as services:
        change = export_service.remove_export(services, export_service.export_id(services, name))
    if wants_json(ctx, json_output):
        print_json(change_json(change))
        return
    say(f"Removed export {name!r}.")
    print_canceled(change)
