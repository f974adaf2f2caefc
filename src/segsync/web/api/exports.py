"""``/api/v1/exports`` (E1–E8, C7, R2–R4): list with search and sort, get with stored (or live)
member counts, create (never runs, E4), update, duplicate, detach, attach, delete. Exports and
connections are addressed by id (``connection_id``; a connection's name in ``connection`` is
still accepted), segments by name. The data matching goes to the services as it came: typed
lines, never text to parse."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response
from pydantic import BaseModel, Field

from segsync.errors import InputError
from segsync.services import connections, exports
from segsync.services.context import ServiceContext
from segsync.services.exports import (
    UNSET,
    DataMatching,
    ExportChange,
    ExportEdit,
    ExportSettings,
    MappingLine,
    or_unset,
)
from segsync.services.exports import forms as export_forms
from segsync.web.api.encode import json_list
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/exports", tags=["exports"])
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

SortColumn = Literal["name", "connection", "status", "refreshed"]
ScheduleKind = Literal["with-system", "off", "daily", "weekly", "every"]


class FieldMap(BaseModel):
    field: str = Field(
        min_length=1,
        max_length=200,
        description="A standard field of the connection's destination (e.g. Company) or "
        "custom:<type>:<Name> (GET /connections/{id}/fields).",
    )
    attribute: str = Field(min_length=1, max_length=300, description="A profile attribute.")


class ScheduleIn(BaseModel):
    kind: ScheduleKind = Field(
        description="with-system (every system refresh), off (manual), or an own recurrence."
    )
    at: str | None = Field(default=None, max_length=5, description="HH:MM local time.")
    days: list[str] = Field(default_factory=list, max_length=7, description="weekly: mon, thu…")
    hours: int | None = Field(default=None, ge=1, le=24, description="every: hours between runs.")
    tz: str | None = Field(default=None, max_length=64, description="Time zone (default UTC).")


ConnectionIdField = Field(default=None, ge=1, le=2**63 - 1, description="The connection's id.")
ConnectionNameField = Field(
    default=None, min_length=1, max_length=200, description="Or the connection's name."
)


HoldRemovalsField = Field(
    default="20%",
    max_length=20,
    description="Hold a run that would remove more than this share of a list (20%), or off",
)
HoldGrowthField = Field(
    default="3x",
    max_length=20,
    description="Hold a run that would grow a list more than this factor, by 1,000+ (3x), or off",
)


class NewExport(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    connection_id: int | None = ConnectionIdField
    connection: str | None = ConnectionNameField
    email: str = Field(min_length=1, max_length=300, description="The email attribute.")
    first_name: str | None = Field(default=None, max_length=300)
    last_name: str | None = Field(default=None, max_length=300)
    maps: list[FieldMap] = Field(default_factory=list, max_length=100)
    segments: list[str] = Field(min_length=1, max_length=100, description="Segment names.")
    removal: Literal["mirror", "add-only"] = "mirror"
    list_prefix: str = Field(default="", max_length=100)
    schedule: ScheduleIn | None = None
    hold_removals: str = HoldRemovalsField
    hold_growth: str = HoldGrowthField


class ExportUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: int | None = ConnectionIdField
    connection: str | None = ConnectionNameField
    email: str | None = Field(default=None, min_length=1, max_length=300)
    first_name: str | None = Field(default=None, max_length=300, description='"" clears it.')
    last_name: str | None = Field(default=None, max_length=300, description='"" clears it.')
    maps: list[FieldMap] | None = Field(default=None, max_length=100, description="Replaces all.")
    segments: list[str] | None = Field(default=None, min_length=1, max_length=100)
    removal: Literal["mirror", "add-only"] | None = None
    list_prefix: str | None = Field(default=None, max_length=100)
    schedule: ScheduleIn | None = None
    hold_removals: str | None = Field(default=None, max_length=20, description="e.g. 20% or off")
    hold_growth: str | None = Field(default=None, max_length=20, description="e.g. 3x or off")


class Duplicate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The new export's name.")
    connection_id: int | None = ConnectionIdField
    connection: str | None = ConnectionNameField


class Attach(BaseModel):
    connection_id: int | None = ConnectionIdField
    connection: str | None = ConnectionNameField


class ExportRowOut(BaseModel):
    id: int
    name: str
    connection: str = Field(description='The connection used, or "No connection".')
    connection_name: str | None
    connection_type: str | None
    segments: list[str]
    schedule: str
    status: str | None
    refreshed_at: str | None
    your_permissions: Literal["edit", "view"]


class ChangeOut(BaseModel):
    id: int
    name: str
    connection: str
    sync_state_reset: bool
    canceled_runs: list[int]
    stop_requested: list[int]


def _connection_id(ctx: ServiceContext, connection_id: int | None, name: str | None) -> int | None:
    """The connection a body names: by ``connection_id``, or by name (one lookup)."""
    if connection_id is not None and name is not None:
        raise InputError("connection: give connection_id or connection (a name), not both")
    if name is not None:
        return connections.connection_id(ctx, name)
    return connection_id


def _required_connection(ctx: ServiceContext, connection_id: int | None, name: str | None) -> int:
    chosen = _connection_id(ctx, connection_id, name)
    if chosen is None:
        raise InputError("connection: give connection_id (or the connection's name as connection)")
    return chosen


def _lines(items: list[FieldMap]) -> list[MappingLine]:
    return [MappingLine(item.field, item.attribute) for item in items]


def _schedule(schedule: ScheduleIn | None, current: dict[str, Any] | None = None) -> Any:
    if schedule is None:
        return None
    return export_forms.schedule_from_form(
        schedule.kind,
        at=schedule.at,
        days=schedule.days,
        hours=schedule.hours,
        tz=schedule.tz,
        current=current,
    )


def _details(ctx: ServiceContext, export_id: int) -> dict[str, Any]:
    return exports.show_export(ctx, export_id).to_dict()


def _change(change: ExportChange) -> ChangeOut:
    record = change.export
    return ChangeOut(
        id=record.id,
        name=record.name,
        connection=record.connection_name or exports.NO_CONNECTION,
        sync_state_reset=change.sync_state_reset,
        canceled_runs=change.canceled_runs,
        stop_requested=change.stop_requested,
    )


@router.get(
    "",
    summary="List exports (search by export, connection name or type; sort)",
    response_model=list[ExportRowOut],
)
def list_exports(
    ctx: ApiContextDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort: SortColumn = "name",
    descending: bool = False,
    limit: Annotated[
        int | None, Query(ge=0, le=10_000, description="At most this many rows (default: all).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Skip this many rows first.")] = 0,
) -> Response:
    rows = exports.list_exports(
        ctx, search=search, sort=sort, descending=descending, limit=limit, offset=offset
    )
    return json_list(ExportRowOut, [ExportRowOut(id=row.id, **row.to_dict()) for row in rows])


@router.post("", status_code=201, summary="Create an export (saving never runs it, E4)")
def create_export(ctx: ApiContextDep, body: NewExport) -> dict[str, Any]:
    matching = DataMatching(body.email, body.first_name, body.last_name, _lines(body.maps))
    settings = ExportSettings(
        name=body.name,
        connection_id=_required_connection(ctx, body.connection_id, body.connection),
        matching=matching,
        segments=body.segments,
        removal=body.removal,
        list_prefix=body.list_prefix,
        schedule=_schedule(body.schedule),
        hold_removals=body.hold_removals,
        hold_growth=body.hold_growth,
    )
    return _details(ctx, exports.create_export(ctx, settings).id)


@router.get("/{export_id}", summary="An export with its member counts and warnings")
def get_export(
    ctx: ApiContextDep,
    export_id: RecordId,
    counts: Annotated[
        Literal["stored", "live"],
        Query(
            description="stored (default): each segment's count from its last refresh, with "
            "counted_at; live: counted in the profiles now, with the distinct total."
        ),
    ] = "stored",
) -> dict[str, Any]:
    return exports.show_export(ctx, export_id, live_counts=counts == "live").to_dict()


@router.patch("/{export_id}", summary="Change an export's settings")
def update_export(ctx: ApiContextDep, export_id: RecordId, body: ExportUpdate) -> dict[str, Any]:
    record = exports.get_export(ctx, export_id)
    connection_id = _connection_id(ctx, body.connection_id, body.connection)
    schedule = _schedule(body.schedule, dict(record.schedule))
    edit = ExportEdit(
        name=or_unset(body.name),
        connection_id=or_unset(connection_id),
        email=or_unset(body.email),
        first_name=or_unset(body.first_name),
        last_name=or_unset(body.last_name),
        lines=UNSET if body.maps is None else _lines(body.maps),
        segments=or_unset(body.segments),
        removal=or_unset(body.removal),
        list_prefix=or_unset(body.list_prefix),
        schedule=or_unset(schedule),
        hold_removals=or_unset(body.hold_removals),
        hold_growth=or_unset(body.hold_growth),
    )
    change = exports.edit_export(ctx, export_id, edit)
    return {**_details(ctx, export_id), "sync_state_reset": change.sync_state_reset}


@router.post("/{export_id}/duplicate", status_code=201, summary="Copy an export's settings")
def duplicate_export(ctx: ApiContextDep, export_id: RecordId, body: Duplicate) -> dict[str, Any]:
    connection_id = _connection_id(ctx, body.connection_id, body.connection)
    record = exports.duplicate_export(ctx, export_id, body.name, connection_id=connection_id)
    return _details(ctx, record.id)


@router.post("/{export_id}/detach", summary='Detach from its connection ("No connection")')
def detach_export(ctx: ApiContextDep, export_id: RecordId) -> ChangeOut:
    return _change(exports.detach_export(ctx, export_id))


@router.post("/{export_id}/attach", summary="Attach to a connection")
def attach_export(ctx: ApiContextDep, export_id: RecordId, body: Attach) -> ChangeOut:
    connection_id = _required_connection(ctx, body.connection_id, body.connection)
    return _change(exports.attach_export(ctx, export_id, connection_id))


@router.delete("/{export_id}", status_code=204, summary="Remove an export (its runs stay)")
def remove_export(ctx: ApiContextDep, export_id: RecordId) -> Response:
    exports.remove_export(ctx, export_id)
    return Response(status_code=204)
