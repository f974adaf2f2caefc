"""``/api/v1/status`` (T3): every task — data source, segment, export — with its latest status,
last update and next due time, and the system schedule with its latest refresh. Anyone signed
in may read it. History and details: ``/api/v1/runs?export_id=`` and ``/api/v1/segments/{id}``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Response
from pydantic import BaseModel, Field

from segsync.services.system import status
from segsync.web.api.encode import json_model
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/status", tags=["status"])

Kind = Literal["data_source", "segment", "export"]


class SystemOut(BaseModel):
    schedule: str = Field(description="The system schedule in words.")
    enabled: bool
    next_due: str | None
    last_refresh_due: str | None
    last_refresh_state: str | None
    last_refresh_ended: str | None


class TaskOut(BaseModel):
    """One task. The fields after ``next_due`` depend on its kind (null for the others)."""

    kind: Kind
    name: str
    status: str = Field(
        description="data sources: imported, changed, missing, generated; segments: draft, "
        "active, failed; exports: the latest run's status, or `never run`"
    )
    last_update: str | None
    next_due: str | None
    rows: int | None = Field(default=None, description="Data sources: rows imported.")
    file: str | None = Field(default=None, description="Data sources: the file read.")
    profile_table: bool | None = Field(default=None, description="Data sources.")
    members: int | None = Field(default=None, description="Segments: members now.")
    error: str | None = Field(default=None, description="Segments: the last refresh's error.")
    schedule: str | None = Field(default=None, description="Exports: the schedule in words.")
    connection: str | None = Field(default=None, description="Exports: the connection used.")
    latest_run: int | None = Field(default=None, description="Exports: the latest run's id.")
    message: str | None = Field(default=None, description="Exports: the latest run's message.")
    refreshed_at: str | None = Field(default=None, description="Exports: last refreshed.")


class StatusOut(BaseModel):
    generated_at: str
    system: SystemOut
    tasks: list[TaskOut] = Field(description="Data sources, then segments, then exports.")


@router.get(
    "", summary="The status of every data source, segment and export", response_model=StatusOut
)
def get_status(
    ctx: ApiContextDep,
    kind: Annotated[Kind | None, Query(description="Only tasks of this kind.")] = None,
) -> Response:
    report = StatusOut.model_validate(status.status(ctx).to_dict())
    if kind is not None:
        report.tasks = [task for task in report.tasks if task.kind == kind]
    return json_model(report)
