"""Data > Exports (E3–E8, C7, R2–R4, X1): the list with search and sortable columns, the
read-only view with run history, Remove, Detach, Attach, Run, Dry run and Run all (the form of
Add destination, Edit and Create duplicate is in :mod:`segsync.web.routes.data_export_form`).
Run queues a run for the workers and goes to the run page at once. Exports and connections are
addressed by id in URLs and in what is passed to the services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from segsync.services import connections, exports
from segsync.services.context import ServiceContext
from segsync.services.exports import forms as export_forms
from segsync.services.exports import views as export_views
from segsync.services.exports.views import export_ref
from segsync.services.runs import queue
from segsync.services.runs import views as run_views
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/data/exports")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

EXPORT_RUNS_PAGE = 50


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


@router.get("/selection")
def selection(
    ctx: ContextDep,
    connection_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    segment: Annotated[list[str] | None, Query()] = None,
    email: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """Live member counts and the warnings (contract limit, email attribute) for the form's
    chosen segments and email attribute."""
    check = export_forms.selection_check(ctx, connection_id, segment or [], email=email)
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
    record = exports.get_export(ctx, export_id)
    details = exports.show_export(ctx, export_id, live_counts=counts == "live")
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
    details = exports.show_export(ctx, export_id, live_counts=True)
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
    record = exports.get_export(ctx, export_id)
    history = run_views.run_history(ctx, export_id, page=page, per_page=EXPORT_RUNS_PAGE)
    context = {"record": record, "history": history, "runs": history.runs}
    return render(request, "data/exports_runs.html", context)


# ---------------------------------------------------------------- one export's actions


def _redirect_export(export_id: RecordId) -> RedirectResponse:
    return RedirectResponse(f"/data/exports/{export_id}", status_code=303)


@router.post("/{export_id}/remove")
def remove(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    removed = exports.remove_export(ctx, export_id).export
    flash(request, f"Export {removed.name!r} removed; its run history stays.", "success")
    return RedirectResponse("/data/exports", status_code=303)


@router.post("/{export_id}/detach")
def detach(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    detached = exports.detach_export(ctx, export_id).export
    flash(request, f"Export {detached.name!r} detached: it shows No connection and never runs.")
    return _redirect_export(export_id)


@router.post("/{export_id}/attach")
def attach(
    request: Request,
    ctx: ContextDep,
    export_id: RecordId,
    connection: Annotated[int, Form(ge=1, le=2**63 - 1)],
) -> RedirectResponse:
    change = exports.attach_export(ctx, export_id, connection)
    attached = change.export
    reset = " Its next run sends everyone again." if change.sync_state_reset else ""
    where = attached.connection_name
    flash(request, f"Export {attached.name!r} attached to {where!r}.{reset}", "success")
    return _redirect_export(export_id)


def _enqueue(request: Request, ctx: ServiceContext, export_id: RecordId, dry_run: bool) -> Any:
    queued = queue.enqueue_run(ctx, export_id, dry_run=dry_run)
    what = "Dry run" if dry_run else "Run"
    flash(request, f"{what} of {queued.run.export_name!r} queued (run {queued.run.id}).")
    return RedirectResponse(f"/data/runs/{queued.run.id}", status_code=303)


@router.post("/{export_id}/run")
def run(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    result: RedirectResponse = _enqueue(request, ctx, export_id, dry_run=False)
    return result


@router.post("/{export_id}/dry-run")
def dry_run(request: Request, ctx: ContextDep, export_id: RecordId) -> RedirectResponse:
    result: RedirectResponse = _enqueue(request, ctx, export_id, dry_run=True)
    return result
