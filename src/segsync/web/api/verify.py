"""``/api/v1/exports/{id}/verify`` and ``/verify-schedule`` (docs/api.md "Verify"): queue a
verify (or, with ``repair``, a repair) of an export — 202 with the run and its expected request
cost; the run's ``plan`` holds the drift report when it ends — and show or set the export's
verify schedule. Whoever may run the export may verify and repair it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from segsync.services.exports import verify as verify_service
from segsync.services.exports import verify_schedule as schedule_service
from segsync.services.runs import views as run_views
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/exports", tags=["exports"])
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class VerifyIn(BaseModel):
    repair: bool = Field(
        default=False,
        description="Fix the drift: add missing members, remove orphans, remake deleted lists.",
    )


class EstimateOut(BaseModel):
    lists: int
    pages: int
    requests: int = Field(description="1 look at the lists + one request per page.")


class VerifyOut(BaseModel):
    run: dict[str, Any] = Field(description="The run (GET /api/v1/runs/{id} follows it).")
    estimate: EstimateOut


class VerifyScheduleIn(BaseModel):
    kind: Literal["off", "daily", "weekly", "every"]
    at: str | None = Field(default=None, max_length=5, description="HH:MM local time.")
    days: list[str] = Field(default_factory=list, max_length=7, description="weekly: mon, thu…")
    hours: int | None = Field(default=None, ge=1, le=24, description="every: hours between.")
    tz: str | None = Field(default=None, max_length=64, description="Time zone (default UTC).")


@router.post("/{export_id}/verify", status_code=202, summary="Verify (or repair) an export")
def verify_export(ctx: ApiContextDep, export_id: RecordId, body: VerifyIn) -> VerifyOut:
    queued = verify_service.enqueue_verify(ctx, export_id, repair=body.repair)
    run = run_views.run_payload(run_views.run_view(ctx, queued.run.id))
    return VerifyOut(run=run, estimate=EstimateOut(**queued.estimate.to_dict()))


@router.get("/{export_id}/verify-schedule", summary="An export's verify schedule")
def get_verify_schedule(ctx: ApiContextDep, export_id: RecordId) -> dict[str, Any]:
    return schedule_service.show_verify_schedule(ctx, export_id).to_dict()


@router.put("/{export_id}/verify-schedule", summary="Set an export's verify schedule")
def set_verify_schedule(
    ctx: ApiContextDep, export_id: RecordId, body: VerifyScheduleIn
) -> dict[str, Any]:
    chosen = schedule_service.verify_schedule_from_options(
        body.kind, at=body.at, days=",".join(body.days) or None, hours=body.hours, tz=body.tz
    )
    return schedule_service.set_verify_schedule(ctx, export_id, chosen).to_dict()
