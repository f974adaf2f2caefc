"""Data > Segments (S2–S8): the list, the builder (new / edit) with the estimated size, quick
segments, the details page (definition, count history, preview, CSV, Refresh, Manage exports)
and delete. Segments are addressed by id in URLs; the services take names.

The builder is progressive: the form's one ``definition`` field holds YAML or JSON. Without
JavaScript it is a textarea; ``static/data.js`` builds the rules visually and writes the JSON
definition into it, and asks ``POST /data/segments/estimate`` for the size as the user edits.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.background import BackgroundTask

from segsync.errors import InputError, SegsyncError
from segsync.services import exports, profiles, segments
from segsync.services.context import ServiceContext
from segsync.services.exports import forms as export_forms
from segsync.services.segments import builder as segment_builder
from segsync.services.segments import members as segment_members
from segsync.services.users.access import Action, can, require
from segsync.web.api.schema import builder_schema
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/data/segments")
RecordId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

MAX_DEFINITION = segment_builder.MAX_DEFINITION_CHARS
EXAMPLE = """name: Lisbon customers
description: optional text
rules:
  - conditions:
      all:
        - {attribute: City, op: equals, value: Lisbon}
"""


def _schema_json(ctx: ServiceContext) -> str:
    return json.dumps(builder_schema(ctx, counts=False), default=str)


def _builder(
    request: Request,
    ctx: ServiceContext,
    *,
    definition: str,
    segment: Any = None,
    initial: dict[str, Any] | None = None,
    error: str | None = None,
    errors: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "definition": definition,
        "segment": segment,
        "error": error,
        "errors": errors or [],
        "schema_json": _schema_json(ctx),
        "initial_json": json.dumps(initial) if initial else "",
        "example": EXAMPLE,
    }
    return render(request, "data/segment_builder.html", context, status_code=status_code)


def _errors(err: SegsyncError) -> list[tuple[str, str]]:
    found = getattr(err, "errors", None)
    return list(found) if isinstance(found, list) else []


@router.get("")
def list_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    rows = segments.list_segments(ctx)
    return render(request, "data/segments.html", {"segments": rows})


@router.get("/new")
def new_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    require(ctx.actor, Action.CREATE_SEGMENT)
    return _builder(request, ctx, definition="")


@router.post("/new", response_model=None)
def create(
    request: Request,
    ctx: ContextDep,
    definition: Annotated[str, Form(max_length=MAX_DEFINITION)] = "",
) -> HTMLResponse | RedirectResponse:
    try:
        record = segments.create_segment(ctx, definition)
    except InputError as err:
        return _builder(
            request, ctx, definition=definition, error=err.message, errors=_errors(err),
            status_code=422,
        )  # fmt: skip
    flash(request, f"Segment {record.name!r} saved as a draft; refresh it to compute members.")
    return RedirectResponse(f"/data/segments/{record.id}", status_code=303)


@router.post("/estimate")
async def estimate(request: Request, ctx: ContextDep) -> JSONResponse:
    """The builder's estimated size: JSON ``{"definition": ...}`` (data or YAML/JSON text)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    definition = body.get("definition") if isinstance(body, dict) else None
    if not isinstance(definition, str | dict):
        problem = {"path": "", "message": 'send JSON {"definition": ...} (text or data)'}
        return JSONResponse({"ok": False, "count": None, "errors": [problem]}, 422)
    return JSONResponse(segment_builder.estimate_definition(ctx, definition).to_dict())


@router.get("/quick")
def quick_page(
    request: Request,
    ctx: ContextDep,
    attribute: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    report = profiles.schema(ctx, counts=False)  # the attribute list shows no row counts
    suggestion = segment_members.suggest(ctx, attribute).to_dict() if attribute else None
    return render(
        request,
        "data/segment_quick.html",
        {"schema": report, "attribute": attribute, "suggestion": suggestion},
    )


@router.post("/quick", response_model=None)
def quick_create(
    request: Request,
    ctx: ContextDep,
    attribute: Annotated[str, Form(max_length=300)],
    pick: Annotated[str, Form(max_length=10_000)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    """``pick`` is ``"<op> <JSON value>"`` (the clicked button's value)."""
    op, _, value_json = pick.strip().partition(" ")
    try:
        value = json.loads(value_json)
    except ValueError:
        raise InputError("value: not valid JSON") from None
    shown = "" if value is None else f" {value}"
    label = name.strip() or f"{attribute} {op.replace('_', ' ')}{shown}"
    text = segment_builder.quick_definition(label, attribute, op, value)
    record = segments.create_segment(ctx, text, "json")
    flash(request, f"Segment {record.name!r} saved as a draft; refresh it to compute members.")
    return RedirectResponse(f"/data/segments/{record.id}", status_code=303)


@router.get("/{segment_id}")
def details_page(
    request: Request,
    ctx: ContextDep,
    segment_id: RecordId,
    preview: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """The segment from the metadata DB alone: it opens without waiting for the profile engine.
    The member preview is read from the profiles when asked: by the page's script
    (``preview.json``), or with ``?preview=live`` (the "Show the first 100 members" link
    without JavaScript)."""
    record = segment_builder.segment_by_id(ctx, segment_id)
    details = segments.show_segment(ctx, record.name)
    members = None
    preview_error = None
    if preview == "live":
        try:
            members = segment_members.preview_segment(ctx, record.name)
        except SegsyncError as err:
            preview_error = err.message
    ids, editable = export_forms.export_links(ctx)
    using = [(name, ids.get(name)) for name in details.exports]
    used = set(details.exports)
    addable = [(name, export_id) for name, export_id in editable if name not in used]
    context = {
        "segment": record,
        "details": details,
        "definition_text": details.definition_text("yaml"),
        "preview": members,
        "preview_error": preview_error,
        "using": using,
        "addable": addable,
        "may_create_export": can(ctx.actor, Action.CREATE_EXPORT),
    }
    return render(request, "data/segment_details.html", context)


@router.get("/{segment_id}/preview.json")
def preview_json(ctx: ContextDep, segment_id: RecordId) -> JSONResponse:
    """The first 100 members now, for the details page's script: ``key``, ``columns`` and
    ``rows``; or ``error`` (422) when they cannot be read (e.g. an attribute was removed)."""
    record = segment_builder.segment_by_id(ctx, segment_id)
    try:
        members = segment_members.preview_segment(ctx, record.name)
    except SegsyncError as err:
        return JSONResponse({"error": err.message}, 422)
    return JSONResponse(members.to_dict())


@router.get("/{segment_id}/members.csv")
def members_csv(ctx: ContextDep, segment_id: RecordId) -> FileResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    folder = Path(tempfile.mkdtemp(prefix="segsync-members-"))
    path = folder / "members.csv"
    try:
        segment_members.export_members_csv(ctx, record.name, path)
    except BaseException:
        _cleanup(folder)
        raise
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in record.name)[:80]
    return FileResponse(
        path,
        media_type="text/csv",
        filename=f"segment-{safe or segment_id}-members.csv",
        background=BackgroundTask(_cleanup, folder),
    )


def _cleanup(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink(missing_ok=True)
    folder.rmdir()


@router.get("/{segment_id}/edit")
def edit_page(request: Request, ctx: ContextDep, segment_id: RecordId) -> HTMLResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    details = segments.show_segment(ctx, record.name)
    require(ctx.actor, Action.EDIT_SEGMENT)
    return _builder(
        request,
        ctx,
        definition=details.definition_text("yaml"),
        segment=record,
        initial=details.to_dict()["definition"],
    )


@router.post("/{segment_id}/edit", response_model=None)
def edit(
    request: Request,
    ctx: ContextDep,
    segment_id: RecordId,
    definition: Annotated[str, Form(max_length=MAX_DEFINITION)] = "",
) -> HTMLResponse | RedirectResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    try:
        report = segments.update_segment(ctx, record.name, definition)
    except InputError as err:
        return _builder(
            request, ctx, definition=definition, segment=record, error=err.message,
            errors=_errors(err), status_code=422,
        )  # fmt: skip
    note = " Refresh it to update its members." if report.members_stale else ""
    flash(request, f"Segment {report.segment.name!r} saved.{note}", "success")
    return RedirectResponse(f"/data/segments/{segment_id}", status_code=303)


@router.post("/{segment_id}/refresh")
def refresh(request: Request, ctx: ContextDep, segment_id: RecordId) -> RedirectResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    outcome = segments.refresh_segments(ctx, [record.name])[0]
    if outcome.ok:
        flash(
            request,
            f"Segment {outcome.name!r} refreshed: {outcome.member_count or 0:,} members "
            f"({outcome.entered or 0:,} entered, {outcome.left or 0:,} left).",
            "success",
        )
    else:
        flash(request, f"Segment {outcome.name!r} failed to refresh: {outcome.error}", "error")
    return RedirectResponse(f"/data/segments/{segment_id}", status_code=303)


@router.post("/{segment_id}/delete")
def delete(request: Request, ctx: ContextDep, segment_id: RecordId) -> RedirectResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    segments.delete_segment(ctx, record.name)
    flash(request, f"Segment {record.name!r} deleted.", "success")
    return RedirectResponse("/data/segments", status_code=303)


@router.post("/{segment_id}/add-to-export")
def add_to_export(
    request: Request,
    ctx: ContextDep,
    segment_id: RecordId,
    export_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
) -> RedirectResponse:
    record = segment_builder.segment_by_id(ctx, segment_id)
    export = exports.get_export(ctx, export_id)
    wanted = [*export.segment_names, record.name]
    exports.edit_export(ctx, export_id, exports.ExportEdit(segments=wanted))
    flash(request, f"Segment {record.name!r} added to export {export.name!r}.", "success")
    return RedirectResponse(f"/data/segments/{segment_id}", status_code=303)
