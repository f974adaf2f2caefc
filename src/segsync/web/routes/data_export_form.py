"""Data > Exports: the one form of Add destination, Edit and Create duplicate (E1–E3, E8).

The connection is chosen by id; the data matching offers the fields of the chosen connection's
destination (its field catalogue, through ``services.exports.forms``) and goes to the services
as typed lines. Saving never starts a run (E4).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import InputError
from segsync.services import connections, exports, profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.exports import (
    UNSET,
    DataMatching,
    ExportEdit,
    ExportSettings,
    MappingLine,
    or_unset,
)
from segsync.services.exports import forms as export_forms
from segsync.services.exports.views import export_ref
from segsync.services.users.access import Action, require
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/data/exports")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

EMPTY_MAP_ROWS = 2
TextList = Annotated[list[str], Form()]


def _attributes(ctx: ServiceContext) -> list[tuple[str, str]]:
    """The profile table's attributes as ``(name, type)``: what a mapping may use."""
    return [(name, kind.value) for name, kind in profiles.profile_attributes(ctx).items()]


def _values_of(ctx: ServiceContext, export_id: int) -> dict[str, Any]:
    """An export's settings as the form's values."""
    record = exports.get_export(ctx, export_id)
    matching = export_forms.matching_of(record)
    maps = []
    for line in matching.lines:
        target, custom = line.field, ""
        if target.startswith("custom:"):
            target, _, custom = target.rpartition(":")
        maps.append({"target": target, "custom": custom, "attribute": line.attribute})
    return {
        "name": record.name,
        "connection": str(record.connection_id or ""),
        "email": matching.email,
        "first_name": matching.first_name or "",
        "last_name": matching.last_name or "",
        "maps": maps,
        "segments": list(record.segment_names),
        "removal": record.removal_policy.replace("_", "-"),
        "list_prefix": record.list_prefix,
        **export_forms.hold_choice(record.hold_removals, record.hold_growth),
        "schedule": export_forms.schedule_choice(record.schedule),
    }


def _blank_values(segment: str | None) -> dict[str, Any]:
    return {
        "name": "",
        "connection": "",
        "email": "",
        "first_name": "",
        "last_name": "",
        "maps": [],
        "segments": [segment] if segment else [],
        "removal": "mirror",
        "list_prefix": "",
        "hold_removals": "20%",
        "hold_growth": "3x",
        "schedule": {"kind": "with-system", "at": "06:00", "days": [], "hours": None, "tz": "UTC"},
    }


def _connection_id(values: dict[str, Any]) -> int | None:
    """The chosen connection's id; ``None`` when none is chosen."""
    text = str(values["connection"]).strip()
    if not text:
        return None
    if not text.isdigit():
        raise InputError(f"connection: {text!r} is not a connection; choose one of the list")
    return int(text)


def _form(
    request: Request,
    ctx: ServiceContext,
    values: dict[str, Any],
    *,
    mode: str,
    action: str,
    export_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    groups = connections.usable_connections(ctx)
    check = None
    if values["segments"]:
        chosen = values["connection"]
        connection_id = int(chosen) if str(chosen).isdigit() else None
        # Counts of the segments' last refreshes: the form opens without the profile engine;
        # its script asks /data/exports/selection for the live total.
        check = export_forms.selection_check(ctx, connection_id, values["segments"], live=False)
    maps = list(values["maps"]) + [{"target": "", "custom": "", "attribute": ""}] * EMPTY_MAP_ROWS
    context = {
        "values": values,
        "maps": maps,
        "mode": mode,
        "action": action,
        "export_id": export_id,
        "error": error,
        "groups": groups,
        "attributes": _attributes(ctx),
        "segments": segments.list_segments(ctx),
        "choices": {group.type: export_forms.mapping_choices(group.type) for group in groups},
        "schedule_kinds": export_forms.SCHEDULE_KINDS,
        "weekdays": export_forms.WEEKDAYS,
        "check": check,
    }
    return render(request, "data/export_form.html", context, status_code=status_code)


def _lines(values: dict[str, Any]) -> list[MappingLine]:
    """The extra rows of the data matching: a field (a custom one gets its name appended) and
    the attribute filling it."""
    lines = []
    for row in values["maps"]:
        target, attribute = row["target"], row["attribute"].strip()
        if not target or not attribute:
            raise InputError(
                "more fields: each row needs both a destination field and a profile attribute"
            )
        if target.startswith("custom:"):
            if not row["custom"]:
                raise InputError(f"more fields: give the custom field's name for {target}")
            target = f"{target}:{row['custom']}"
        lines.append(MappingLine(target, attribute))
    return lines


def _schedule(values: dict[str, Any], current: dict[str, Any] | None = None) -> Any:
    chosen = values["schedule"]
    hours_text = str(chosen["hours"] or "").strip()
    if hours_text and not hours_text.isdigit():
        raise InputError(f"schedule hours: {hours_text!r} is not a whole number")
    return export_forms.schedule_from_form(
        chosen["kind"],
        at=chosen["at"],
        days=chosen["days"],
        hours=int(hours_text) if hours_text else None,
        tz=chosen["tz"],
        current=current,
    )


def _matching(values: dict[str, Any]) -> DataMatching:
    return DataMatching(values["email"], values["first_name"], values["last_name"], _lines(values))


FormFields = dict[str, Any]


def _fields(
    name: Annotated[str, Form(max_length=200)] = "",
    connection: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=300)] = "",
    first_name: Annotated[str, Form(max_length=300)] = "",
    last_name: Annotated[str, Form(max_length=300)] = "",
    map_target: TextList = [],  # noqa: B006 - FastAPI copies defaults
    map_custom: TextList = [],  # noqa: B006
    map_attribute: TextList = [],  # noqa: B006
    segments: TextList = [],  # noqa: B006
    removal: Annotated[str, Form(max_length=20)] = "mirror",
    list_prefix: Annotated[str, Form(max_length=100)] = "",
    hold_removals: Annotated[str, Form(max_length=20)] = "20%",
    hold_growth: Annotated[str, Form(max_length=20)] = "3x",
    schedule_kind: Annotated[str, Form(max_length=20)] = "with-system",
    schedule_at: Annotated[str, Form(max_length=10)] = "",
    schedule_days: TextList = [],  # noqa: B006
    schedule_hours: Annotated[str, Form(max_length=10)] = "",
    schedule_tz: Annotated[str, Form(max_length=64)] = "",
) -> FormFields:
    rows = []
    for index, target in enumerate(map_target):
        custom = map_custom[index] if index < len(map_custom) else ""
        attribute = map_attribute[index] if index < len(map_attribute) else ""
        if target.strip() or attribute.strip():
            rows.append(
                {"target": target.strip(), "custom": custom.strip(), "attribute": attribute}
            )
    return {
        "name": name,
        "connection": connection,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "maps": rows,
        "segments": segments,
        "removal": removal,
        "list_prefix": list_prefix,
        "hold_removals": hold_removals,
        "hold_growth": hold_growth,
        "schedule": {
            "kind": schedule_kind,
            "at": schedule_at,
            "days": schedule_days,
            "hours": schedule_hours,
            "tz": schedule_tz,
        },
    }


FieldsDep = Annotated[FormFields, Depends(_fields)]


def flash_warnings(request: Request, ctx: ServiceContext, export_id: int) -> None:
    for warning in exports.show_export(ctx, export_id).warnings:
        flash(request, f"Warning: {warning}", "error")


def _redirect_export(export_id: int) -> RedirectResponse:
    return RedirectResponse(f"/data/exports/{export_id}", status_code=303)


@router.get("/new")
def new_page(
    request: Request,
    ctx: ContextDep,
    segment: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    require(ctx.actor, Action.CREATE_EXPORT)
    values = _blank_values(segment or None)
    return _form(request, ctx, values, mode="new", action="/data/exports/new")


@router.post("/new", response_model=None)
def create(request: Request, ctx: ContextDep, values: FieldsDep) -> HTMLResponse | RedirectResponse:
    try:
        connection_id = _connection_id(values)
        if connection_id is None:
            raise InputError("connection: choose the connection to send to")
        settings = ExportSettings(
            name=values["name"],
            connection_id=connection_id,
            matching=_matching(values),
            segments=values["segments"],
            removal=values["removal"],
            list_prefix=values["list_prefix"],
            schedule=_schedule(values),
            hold_removals=values["hold_removals"],
            hold_growth=values["hold_growth"],
        )
        record = exports.create_export(ctx, settings)
    except InputError as err:
        return _form(
            request, ctx, values, mode="new", action="/data/exports/new", error=err.message,
            status_code=422,
        )  # fmt: skip
    flash(
        request,
        f"Export {record.name!r} saved. Saving does not run it: press Run to send it now.",
        "success",
    )
    flash_warnings(request, ctx, record.id)
    return _redirect_export(record.id)


@router.get("/{export_id}/edit")
def edit_page(request: Request, ctx: ContextDep, export_id: RecordId) -> HTMLResponse:
    record = exports.get_export(ctx, export_id)
    require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
    return _form(
        request,
        ctx,
        _values_of(ctx, export_id),
        mode="edit",
        action=f"/data/exports/{export_id}/edit",
        export_id=export_id,
    )


@router.post("/{export_id}/edit", response_model=None)
def edit(
    request: Request, ctx: ContextDep, export_id: RecordId, values: FieldsDep
) -> HTMLResponse | RedirectResponse:
    record = exports.get_export(ctx, export_id)
    require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
    try:
        connection_id = _connection_id(values)
        matching = _matching(values)
        edit = ExportEdit(
            name=values["name"] if values["name"] != record.name else UNSET,
            connection_id=(
                connection_id
                if connection_id is not None and connection_id != record.connection_id
                else UNSET
            ),
            email=matching.email,
            first_name=matching.first_name,
            last_name=matching.last_name,
            lines=matching.lines,
            segments=values["segments"],
            removal=values["removal"],
            list_prefix=values["list_prefix"],
            schedule=or_unset(_schedule(values, dict(record.schedule))),
            hold_removals=values["hold_removals"],
            hold_growth=values["hold_growth"],
        )
        change = exports.edit_export(ctx, export_id, edit)
    except InputError as err:
        return _form(
            request, ctx, values, mode="edit", action=f"/data/exports/{export_id}/edit",
            export_id=export_id, error=err.message, status_code=422,
        )  # fmt: skip
    reset = " Its next run sends everyone again." if change.sync_state_reset else ""
    flash(request, f"Export {change.export.name!r} saved.{reset}", "success")
    flash_warnings(request, ctx, export_id)
    return _redirect_export(export_id)


@router.get("/{export_id}/duplicate")
def duplicate_page(request: Request, ctx: ContextDep, export_id: RecordId) -> HTMLResponse:
    require(ctx.actor, Action.CREATE_EXPORT)
    values = _values_of(ctx, export_id)
    values["name"] = f"Copy of {values['name']}"
    return _form(request, ctx, values, mode="duplicate", action="/data/exports/new")
