"""``/api/v1/runs`` (X1, X8–X11): start a run or dry run of an export (queued for the
workers; the request returns at once, 202), run all, list (by export), get with progress
(``items_done``, ``items_total``, ``percent``, ``eta_seconds``), cancel, approve or dismiss a
held run (docs/exports.md "Blast-radius hold"), undo a run (docs/exports.md "Undo a run"), and
the rejected
contacts with their reasons as JSON or CSV."""

from __future__ import annotations

import builtins
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.runs import changes as run_changes
from segsync.services.runs import queue
from segsync.services.runs import views as run_views
from segsync.web.api.encode import json_list
from segsync.web.deps import MAX_ID, ApiContextDep, api_router

router = api_router("/runs", tags=["runs"])
RecordId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


class NewRun(BaseModel):
    export_id: int = Field(
        ge=1, le=MAX_ID, description="The export to run (ids: GET /api/v1/exports)."
    )
    dry_run: bool = Field(default=False, description="Compute the plan, send nothing (X11).")


class ProgressOut(BaseModel):
    items_done: int
    items_total: int
    percent: float | None
    eta_seconds: float | None
    elapsed_seconds: float | None
    final: bool


class RunOut(BaseModel):
    id: int
    status: str = Field(
        description="queued, processing, successful, failure, skipped, canceled, held"
    )
    status_label: str
    final: bool
    export_id: int | None
    export_name: str
    trigger: str
    kind: str = Field(default="sync", description="sync (a run), verify, repair or undo")
    actor: str
    dry_run: bool
    counts: dict[str, int]
    queued_at: str
    started_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    message: str | None
    warnings: list[str]
    cancel_requested: bool
    progress: ProgressOut
    rejects: dict[str, int] = Field(description="Rejected members by kind.")
    plan: dict[str, Any] | None = Field(description="The plan (dry runs: samples per list).")
    lists: list[ListResultOut] | None = Field(
        default=None,
        description="Results per list from the change log (one run's answer only; null when "
        "the log is not kept).",
    )
    undo_of: int | None = Field(
        default=None, description="An undo run (kind undo): the id of the run it reverses"
    )
    hold: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The blast-radius hold's verdict on the plan (a held run, a dry run that would be "
            "held, an approved run): per list the size before and after, who would leave and "
            "join (samples), the reasons, and the approval"
        ),
    )


class ListResultOut(BaseModel):
    segment_id: int | None = Field(description="null: contacts updated without a new list.")
    list: str
    added: int
    updated: int
    removed: int
    rejected: int = Field(description="Items the destination refused on this list.")


class ChangeOut(BaseModel):
    id: int
    at: str
    action: str = Field(description="added, updated, removed or refused")
    segment_id: int | None
    list: str | None
    email: str
    profile_id: str | None
    new_contact: bool
    changed_fields: builtins.list[str] = Field(
        description="Fields whose values this change set (custom. prefix for custom fields)."
    )
    values: dict[str, Any] | None = Field(description="The changed fields' values sent.")
    previous_values: dict[str, Any] | None = Field(
        description="Their values before (null for a new contact or unknown)."
    )
    summary: str = Field(description='The change in words: FirstName: "Ann" → "Anna".')


class ChangePageOut(BaseModel):
    run_id: int
    kept: bool = Field(description="False when the run's change log is no longer kept.")
    next_after: int | None = Field(description="Pass as after= for the next page; null: last.")
    items: builtins.list[ChangeOut]


class RejectOut(BaseModel):
    kind: str = Field(description="invalid, merged, rejected or forgotten")
    profile_id: str | None
    email: str | None
    reason: str


class RejectPage(BaseModel):
    run_id: int
    total: int
    page: int
    size: int
    items: list[RejectOut]


class RunAllItem(BaseModel):
    export: str
    run_id: int | None
    reason: str | None


def _run(ctx: ServiceContext, run_id: int) -> RunOut:
    view = run_views.run_view(ctx, run_id)
    results = run_changes.list_results(ctx, view.run)
    lists = None if results is None else [item.to_dict() for item in results]
    return RunOut.model_validate(run_views.run_payload(view) | {"lists": lists})


@router.post("", status_code=202, summary="Run an export now, or a dry run (queued)")
def create_run(ctx: ApiContextDep, body: NewRun) -> RunOut:
    queued = queue.enqueue_run(ctx, body.export_id, dry_run=body.dry_run)
    return _run(ctx, queued.run.id)


@router.post("/run-all", status_code=202, summary="Queue every export whose schedule is on")
def run_all(ctx: ApiContextDep) -> list[RunAllItem]:
    return [RunAllItem.model_validate(item.to_dict()) for item in run_views.enqueue_all(ctx)]


@router.get("", summary="List runs, newest first", response_model=list[RunOut])
def list_runs(
    ctx: ApiContextDep,
    export_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    views = run_views.run_views(ctx, export_id=export_id, limit=limit)
    return json_list(RunOut, [RunOut.model_validate(run_views.run_payload(v)) for v in views])


@router.get("/{run_id}", summary="A run with counts and live progress")
def get_run(ctx: ApiContextDep, run_id: RecordId) -> RunOut:
    return _run(ctx, run_id)


@router.post("/{run_id}/cancel", summary="Cancel a queued or processing run")
def cancel_run(ctx: ApiContextDep, run_id: RecordId) -> RunOut:
    runs.cancel_run(ctx, run_id)
    return _run(ctx, run_id)


@router.post("/{run_id}/approve", summary="Approve a held run: queue it to send its plan")
def approve_run(ctx: ApiContextDep, run_id: RecordId) -> RunOut:
    runs.approve_run(ctx, run_id)
    return _run(ctx, run_id)


@router.post("/{run_id}/dismiss", summary="Dismiss a held run: it ends Canceled, nothing sent")
def dismiss_run(ctx: ApiContextDep, run_id: RecordId) -> RunOut:
    runs.dismiss_run(ctx, run_id)
    return _run(ctx, run_id)


class UndoIn(BaseModel):
    dry_run: bool = Field(default=False, description="Compute the undo's plan, send nothing.")


@router.post("/{run_id}/undo", status_code=202, summary="Undo a run (queued as a run of its own)")
def undo_run(ctx: ApiContextDep, run_id: RecordId, body: UndoIn | None = None) -> RunOut:
    undo = runs.queue_undo(ctx, run_id, dry_run=body is not None and body.dry_run)
    return _run(ctx, undo.id)


@router.get("/{run_id}/rejects", summary="Rejected and set-aside contacts with reasons")
def list_rejects(
    ctx: ApiContextDep,
    run_id: RecordId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectPage:
    items, total = run_views.reject_page(ctx, run_id, page=page, size=size)
    return RejectPage(
        run_id=run_id,
        total=total,
        page=page,
        size=size,
        items=[
            RejectOut(kind=r.kind, profile_id=r.profile_id, email=r.email, reason=r.reason)
            for r in items
        ],
    )


@router.get("/{run_id}/changes", summary="The run's change log, a page at a time")
def list_changes(
    ctx: ApiContextDep,
    run_id: RecordId,
    action: Annotated[str | None, Query(max_length=16)] = None,
    segment_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangePageOut:
    """Who was added, updated (which fields, from what to what), removed or refused, on which
    list; filtered by ``action`` and list (``segment_id``); ``after`` pages by change id."""
    page = run_changes.change_page(
        ctx, run_id, action=action, segment_id=segment_id, after=after, size=size
    )
    return ChangePageOut.model_validate(page.to_dict())


@router.get(
    "/{run_id}/changes.csv",
    summary="The run's change log as CSV",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def changes_csv(
    ctx: ApiContextDep,
    run_id: RecordId,
    action: Annotated[str | None, Query(max_length=16)] = None,
    segment_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> FileResponse:
    return changes_file(ctx, run_id, action, segment_id)


@router.get(
    "/{run_id}/rejects.csv",
    summary="Rejected and set-aside contacts as CSV",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def rejects_csv(ctx: ApiContextDep, run_id: RecordId) -> FileResponse:
    return rejects_file(ctx, run_id)


def rejects_file(ctx: ServiceContext, run_id: int) -> FileResponse:
    """The run's rejects as a CSV download (also used by the run page)."""
    return csv_download(
        f"run-{run_id}-rejects.csv", lambda path: runs.write_rejects_csv(ctx, run_id, path)
    )


def changes_file(
    ctx: ServiceContext, run_id: int, action: str | None, segment_id: int | None
) -> FileResponse:
    """The run's change log as a CSV download (also used by the run page)."""
    return csv_download(
        f"run-{run_id}-changes.csv",
        lambda path: run_changes.write_changes_csv(
            ctx, run_id, path, action=action, segment_id=segment_id
        ),
    )


def csv_download(filename: str, write: Callable[[Path], object]) -> FileResponse:
    """A CSV that ``write`` makes in a private temporary folder, removed once sent."""
    folder = Path(tempfile.mkdtemp(prefix="segsync-csv-"))
    path = folder / filename
    try:
        write(path)
    except BaseException:
        _cleanup(folder)
        raise
    return FileResponse(
        path,
        media_type="text/csv",
        filename=filename,
        background=BackgroundTask(_cleanup, folder),
    )


def _cleanup(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink(missing_ok=True)
    folder.rmdir()
