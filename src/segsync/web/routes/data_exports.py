"""Data > Exports (E1–E8, C7, R2–R4, X1): the list with search and sortable columns, Add
destination / Edit / Create duplicate (one form), the read-only view with run history, Remove,
Detach, Attach, Run, Dry run and Run all. Saving never starts a run (E4); Run queues one for
the workers and goes to the run page at once. Exports are addressed by id in URLs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from segsync.errors import InputError
from segsync.services import connections, exports, profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.exports import forms as export_forms
from segsync.services.exports import views as export_views
from segsync.services.exports.views import export_ref
from segsync.services.runs import queue
from segsync.services.runs import views as run_views
from segsync.services.users.access import Action, require
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/data/exports")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

EMPTY_MAP_ROWS = 2
EXPORT_RUNS_PAGE = 50
TextList = Annotated[list[str], Form()]


def _attributes(ctx: ServiceContext) -> list[tuple[str, str]]:
    """The profile table's attributes as ``(name, type)``: what a mapping may use."""
    report = profiles.schema(ctx)
    for table in report.tables:
        if table.is_profile:
            return [(name, kind.value) for name, kind in table.columns.items()]
    return []


def _values_of(ctx: ServiceContext, export_id: RecordId) -> dict[str, Any]:
    """An export's settings as the form's values."""
    record = export_forms.export_by_id(ctx, export_id)
    details = export_views.show_export(ctx, record.name, live_counts=False)
    values: dict[str, Any] = {
        "name": record.name,
        "connection": record.connection_name or "",
        "email": "",
        "first_name": "",
        "last_name": "",
        "maps": [],
        "segments": list(record.segment_names),
        "removal": details.removal_policy,
        "list_prefix": record.list_prefix,
        "schedule": export_forms.schedule_choice(record.schedule),
    }
    for line in details.mapping:
        key = {"Email": "email", "FirstName": "first_name", "LastName": "last_name"}.get(line.field)
        if key:
            values[key] = line.attribute
            continue
        kind, _, custom = line.field.rpartition(":") if line.field.startswith("custom:") else (
            line.field, "", "")  # fmt: skip
        values["maps"].append({"target": kind, "custom": custom, "attribute": line.attribute})
    return values


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
        "schedule": {"kind": "with-system", "at": "06:00", "days": [], "hours": None, "tz": "UTC"},
    }


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
        check = export_forms.selection_check(ctx, values["connection"] or None, values["segments"])
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
        "choices": export_forms.mapping_choices(),
        "schedule_kinds": export_forms.SCHEDULE_KINDS,
        "weekdays": export_forms.WEEKDAYS,
        "check": check,
    }
    return render(request, "data/export_form.html", context, status_code=status_code)


def _submitted(
    name: str,
    connection: str,
    email: str,
    first_name: str,
    last_name: str,
    map_target: list[str],
    map_custom: list[str],
    map_attribute: list[str],
    segments: list[str],
    removal: str,
    list_prefix: str,
    schedule_kind: str,
    schedule_at: str,
    schedule_days: list[str],
    schedule_hours: str,
    schedule_tz: str,
) -> dict[str, Any]:
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
        "schedule": {
            "kind": schedule_kind,
            "at": schedule_at,
            "days": schedule_days,
            "hours": schedule_hours,
            "tz": schedule_tz,
        },
    }


def _map_texts(values: dict[str, Any]) -> list[str]:
    texts = []
    for row in values["maps"]:
        target, attribute = row["target"], row["attribute"].strip()
        if not target or not attribute:
            raise InputError(
                "more fields: each row needs both an Autopilot field and a profile attribute"
            )
        if target.startswith("custom:"):
            if not row["custom"]:
                raise InputError(f"more fields: give the custom field's name for {target}")
            target = f"{target}:{row['custom']}"
        texts.append(f"{target}={attribute}")
    return texts


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


FormFields = dict[str, Any]


def _fields(
    name: Annotated[str, Form(max_length=200)] = "",
    connection: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=300)] = "",
    first_name: Annotated[str, Form(max_length=300)] = "",
    last_name: Annotated[str, Form(max_length=300)] = "",
    map_target: TextList = [],  # noqa: B006 - FastAPI copies defaults
    map_custom: TextList = [],  # noqa: B006
    map_attribute: TextList = [],  # noqa: B006
    segments: TextList = [],  # noqa: B006
    removal: Annotated[str, Form(max_length=20)] = "mirror",
    list_prefix: Annotated[str, Form(max_length=100)] = "",
    schedule_kind: Annotated[str, Form(max_length=20)] = "with-system",
    schedule_at: Annotated[str, Form(max_length=10)] = "",
    schedule_days: TextList = [],  # noqa: B006
    schedule_hours: Annotated[str, Form(max_length=10)] = "",
    schedule_tz: Annotated[str, Form(max_length=64)] = "",
) -> FormFields:
    return _submitted(
        name, connection, email, first_name, last_name, map_target, map_custom, map_attribute,
        segments, removal, list_prefix, schedule_kind, schedule_at, schedule_days,
        schedule_hours, schedule_tz,
    )  # fmt: skip


FieldsDep = Annotated[FormFields, Depends(_fields)]


# ---------------------------------------------------------------- list


@router.get("")
def list_page(
    request: Request,
    ctx: ContextDep,
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[str, Query(max_length=20)] = "name",
    dir: Annotated[str, Query(max_length=4)] = "asc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """A page of exports (``PAGE_SIZE`` rows); the page links keep the search and sort."""
    if sort not in exports.SORT_COLUMNS:
        sort = "name"
    descending = dir == "desc"
    listed = export_views.page_exports(
        ctx, search=q or None, sort=sort, descending=descending, page=page
    )
    context = {
        "rows": listed.rows,
        "listed": listed,
        "q": q,
        "sort": sort,
        "descending": descending,
        "columns": (
            ("name", "Export"),
            ("connection", "Connection used"),
            ("status", "Status"),
            ("refreshed", "Refreshed"),
        ),
    }
    return render(request, "data/exports.html", context)


# ---------------------------------------------------------------- add, edit, duplicate


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
        record = exports.create_export(
            ctx,
            values["name"],
            values["connection"],
            values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
            maps=_map_texts(values),
            segments=values["segments"],
            removal=values["removal"],
            list_prefix=values["list_prefix"],
            schedule=_schedule(values),
        )
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
    _flash_warnings(request, ctx, record.name)
    return _redirect_export(record.id)


def _flash_warnings(request: Request, ctx: ServiceContext, name: str) -> None:
    for warning in exports.show_export(ctx, name).warnings:
        flash(request, f"Warning: {warning}", "error")


@router.get("/selection")
def selection(
    ctx: ContextDep,
    connection: Annotated[str, Query(max_length=200)] = "",
    segment: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """Live member counts and the contract-limit warning for the form's chosen segments."""
    check = export_forms.selection_check(ctx, connection or None, segment or [])
    return JSONResponse(check.to_dict())


@router.post("/run-all")
def run_all(request: Request, ctx: ContextDep) -> RedirectResponse:
    queued = run_views.enqueue_all(ctx)
    started = [q for q in queued if q.run_id is not None]
    flash(request, f"Run all: {len(started)} export run(s) queued.", "success")
    for item in queued:
        if item.reason:
            flash(request, f"{item.export}: {item.reason}", "error")
    return RedirectResponse("/data/exports", status_code=303)


@router.get("/{export_id}")
def details_page(
    request: Request,
    ctx: ContextDep,
    export_id: RecordId,
    counts: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """The export, read-only. Member counts are those of each segment's last refresh (with
    when); ``?counts=live`` (the "Count now" button without JavaScript) counts them now."""
    record = export_forms.export_by_id(ctx, export_id)
    details = export_views.show_export(ctx, record.name, live_counts=counts == "live")
    history = run_views.run_history(ctx, export_id, per_page=run_views.HISTORY_PAGE)
    groups = connections.usable_connections(ctx) if record.connection_id is None else []
    context = {
        "export": details,
        "ref": export_ref(record),
        "runs": history.runs,
        "history": history,
        "groups": groups,
    }
    return render(request, "data/export_details.html", context)


@router.get("/{export_id}/counts")
def live_counts(ctx: ContextDep, export_id: RecordId) -> JSONResponse:
    """Count now: each segment's member count counted now, the distinct total and the
    warnings (e.g. over the contract limit)."""
    record = export_forms.export_by_id(ctx, export_id)
    details = export_views.show_export(ctx, record.name, live_counts=True)
    data = details.to_dict()
    keys = ("id", "segments", "distinct_total", "contract_limit", "warnings")
    return JSONResponse({key: data[key] for key in keys})


@router.get("/{export_id}/runs")
def runs_page(
    request: Request,
    ctx: ContextDep,
    export_id: RecordId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """The export's whole run history, a page at a time, newest first."""
    record = export_forms.export_by_id(ctx, export_id)
    history = run_views.run_history(ctx, export_id, page=page, per_page=EXPORT_RUNS_PAGE)
    context = {"record": record, "history": history, "runs": history.runs}
    return render(request, "data/exports_runs.html", context)


@router.get("/{export_id}/edit")
def edit_page(request: Request, ctx: ContextDep, export_id: RecordId) -> HTMLResponse:
    record = export_forms.export_by_id(ctx, export_id)
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
    record = export_forms.export_by_id(ctx, export_id)
    require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
    connection = values["connection"]
    try:
        change = exports.edit_export(
            ctx,
            record.name,
            new_name=values["name"] if values["name"] != record.name else None,
            connection=connection if connection and connection != record.connection_name else None,
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
            maps=_map_texts(values),
            segments=values["segments"],
            removal=values["removal"],
            list_prefix=values["list_prefix"],
            schedule=_schedule(values, dict(record.schedule)),
        )
    except InputError as err:
        return _form(
            request, ctx, values, mode="edit", action=f"/data/exports/{export_id}/edit",
            export_id=export_id, error=err.message, status_code=422,
        )  # fmt: skip
    reset = " Its next run sends everyone again." if change.sync_state_reset else ""
    flash(request, f"Export {change.export.name!r} saved.{reset}", "success")
    _flash_warnings(request, ctx, change.export.name)
    return _redirect_export(export_id)


@router.get("/{export_id}/duplicate")
def duplicate_page(request: Request, ctx: ContextDep, export_id: RecordId) -> HTMLResponse:
    require(ctx.actor, Action.CREATE_EXPORT)
    values = _values_of(ctx, export_id)
    values["name"] = f"Copy of {values['name']}"
    return _form(request, ctx, values, mode="duplicate", action="/data/exports/new")


# ---------------------------------------------------------------- one export's actions


def _redirect_export(export_id: RecordId) -> RedirectResponse:
    return RedirectResponse(f"/data/exports/{export_id}", status_code=303)


@router.post("/{export_id}/remove")
def remove(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    record = export_forms.export_by_id(ctx, export_id)
    exports.remove_export(ctx, record.name)
    flash(request, f"Export {record.name!r} removed; its run history stays.", "success")
    return RedirectResponse("/data/exports", status_code=303)


@router.post("/{export_id}/detach")
def detach(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    record = export_forms.export_by_id(ctx, export_id)
    exports.detach_export(ctx, record.name)
    flash(request, f"Export {record.name!r} detached: it shows No connection and never runs.")
    return _redirect_export(export_id)


@router.post("/{export_id}/attach")
def attach(
    request: Request,
    ctx: ContextDep,
    export_id: RecordId,
    connection: Annotated[str, Form(max_length=200)],
) -> RedirectResponse:
    record = export_forms.export_by_id(ctx, export_id)
    change = exports.attach_export(ctx, record.name, connection)
    reset = " Its next run sends everyone again." if change.sync_state_reset else ""
    flash(request, f"Export {record.name!r} attached to {connection!r}.{reset}", "success")
    return _redirect_export(export_id)


def _enqueue(request: Request, ctx: ServiceContext, export_id: RecordId, dry_run: bool) -> Any:
    record = export_forms.export_by_id(ctx, export_id)
    queued = queue.enqueue_run(ctx, record.name, dry_run=dry_run)
    what = "Dry run" if dry_run else "Run"
    flash(request, f"{what} of {record.name!r} queued (run {queued.run.id}).")
    return RedirectResponse(f"/data/runs/{queued.run.id}", status_code=303)


@router.post("/{export_id}/run")
def run(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    result: RedirectResponse = _enqueue(request, ctx, export_id, dry_run=False)
    return result


@router.post("/{export_id}/dry-run")
def dry_run(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    result: RedirectResponse = _enqueue(request, ctx, export_id, dry_run=True)
    return result
