"""The run page (X8–X11): live progress with ETA, counts, times, message, warnings, the plan of
a dry run, the blast-radius hold's verdict, the results per list and the change log (paged,
filtered by action and list) with its CSV, rejected contacts with reasons (paged) and their CSV,
Cancel, Approve or Dismiss for a held run, and Undo (or its dry run) for a run that changed
something. Messages and warnings name the page or button to use, never a CLI command.

``static/data.js`` polls ``/data/runs/{id}.json`` (the session's view of
``GET /api/v1/runs/{id}``: pages carry no API token) every second while the run is not final
and updates the progress bar and counts; without JavaScript the page offers a Refresh link.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from segsync.services import runs
from segsync.services.runs import changes as run_changes
from segsync.services.runs import queue
from segsync.services.runs import views as run_views
from segsync.web.api.runs import changes_file, rejects_file
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/data/runs")
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ActionFilter = Annotated[str, Query(max_length=16)]
SegmentFilter = Annotated[str, Query(max_length=19, pattern=r"^[0-9]*$")]

COUNT_LABELS = (
    ("members", "Members"),
    ("invalid", "Invalid emails"),
    ("duplicates", "Duplicates"),
    ("added", "Added"),
    ("updated", "Updated"),
    ("unchanged", "Unchanged"),
    ("removed", "Removed"),
    ("rejected", "Rejected"),
    ("requests", "Requests"),
)


@router.get("/{run_id}.json")
def run_json(ctx: ContextDep, run_id: RecordId) -> JSONResponse:
    return JSONResponse(run_views.run_payload(run_views.run_view(ctx, run_id)))


@router.get("/{run_id}/rejects.csv")
def rejects_csv(ctx: ContextDep, run_id: RecordId) -> FileResponse:
    return rejects_file(ctx, run_id)


@router.get("/{run_id}/changes.csv")
def changes_csv(
    ctx: ContextDep,
    run_id: RecordId,
    action: ActionFilter = "",
    segment: SegmentFilter = "",
) -> FileResponse:
    return changes_file(ctx, run_id, action or None, int(segment) if segment else None)


@router.get("/{run_id}")
def run_page(
    request: Request,
    ctx: ContextDep,
    run_id: RecordId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    action: ActionFilter = "",
    segment: SegmentFilter = "",
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> HTMLResponse:
    view = run_views.run_view(ctx, run_id)
    rejects, total = run_views.reject_page(ctx, run_id, page=page)
    pages = max(1, -(-total // run_views.REJECTS_PAGE))
    filters = {"action": action, "segment": segment}
    context = {
        "view": view,
        "run": view.run,
        "counts": [(key, label, getattr(view.run.counts, key)) for key, label in COUNT_LABELS],
        "message": run_views.for_pages(view.run.message or ""),
        "warnings": [run_views.for_pages(w) for w in view.run.warnings],
        "rejects": rejects,
        "rejects_total": total,
        "page": page,
        "pages": pages,
        "waiting": queue.waiting_reason(ctx, view.run),
        "results": run_changes.list_results(ctx, view.run),
        "changes": run_changes.change_page(
            ctx,
            run_id,
            action=action or None,
            segment_id=int(segment) if segment else None,
            after=after,
        ),
        "change_actions": run_changes.CHANGE_ACTIONS,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "after": after,
        "keep_runs": ctx.settings.change_log_runs,
    }
    return render(request, "data/run.html", context)


@router.post("/{run_id}/cancel")
def cancel(request: Request, ctx: ContextDep, run_id: RecordId) -> RedirectResponse:
    run = runs.cancel_run(ctx, run_id)
    if run.status.is_final:
        flash(request, f"Run {run_id} canceled.", "success")
    else:
        flash(request, f"Run {run_id} stops after the batch in flight.")
    return RedirectResponse(f"/data/runs/{run_id}", status_code=303)


@router.post("/{run_id}/approve")
def approve(request: Request, ctx: ContextDep, run_id: RecordId) -> RedirectResponse:
    runs.approve_run(ctx, run_id)
    flash(request, f"Run {run_id} approved: it is queued to send its plan.", "success")
    return RedirectResponse(f"/data/runs/{run_id}", status_code=303)


@router.post("/{run_id}/undo")
def undo(
    request: Request,
    ctx: ContextDep,
    run_id: RecordId,
    dry_run: Annotated[bool, Form()] = False,
) -> RedirectResponse:
    queued = runs.queue_undo(ctx, run_id, dry_run=dry_run)
    what = "A dry run of its undo" if dry_run else "Its undo"
    flash(request, f"{what} is queued as run {queued.id} (undoing run {run_id}).", "success")
    return RedirectResponse(f"/data/runs/{queued.id}", status_code=303)


@router.post("/{run_id}/dismiss")
def dismiss(request: Request, ctx: ContextDep, run_id: RecordId) -> RedirectResponse:
    runs.dismiss_run(ctx, run_id)
    flash(request, f"Run {run_id} dismissed: nothing was sent.", "success")
    return RedirectResponse(f"/data/runs/{run_id}", status_code=303)
