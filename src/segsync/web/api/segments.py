"""``/api/v1/segments`` (S2–S8): list, get, create and update from the segment definition format
(the JSON body *is* the definition), delete, refresh, count, preview, estimate a definition
without saving it, and quick-segment suggestions. Segments are addressed by id."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Body, Path, Query, Response
from pydantic import BaseModel, Field

from segsync.services import segments
from segsync.services.context import ServiceContext
from segsync.services.segments import builder as segment_builder
from segsync.services.segments import members as segment_members
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/segments", tags=["segments"])
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

DEFINITION_EXAMPLE: dict[str, Any] = {
    "name": "Lisbon big spenders",
    "rules": [{"conditions": {"all": [{"attribute": "City", "op": "equals", "value": "Lisbon"}]}}],
}
DefinitionBody = Annotated[
    dict[str, Any],
    Body(
        description="A segment definition (name, description, rules), as in docs/segments.md.",
        examples=[DEFINITION_EXAMPLE],
    ),
]


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str | None
    status: str = Field(description="draft, active or failed")
    member_count: int | None
    last_refreshed_at: str | None
    created_at: str | None
    updated_at: str | None
    created_by: str | None


class RefreshOut(BaseModel):
    name: str
    status: str
    member_count: int | None
    entered: int | None
    left: int | None
    error: str | None


class CountOut(BaseModel):
    name: str
    count: int


class EstimateError(BaseModel):
    path: str = Field(description="Where in the definition, e.g. rules[0].conditions.all[1]")
    message: str


class EstimateOut(BaseModel):
    ok: bool
    count: int | None
    name: str | None
    errors: list[EstimateError]


def _json(definition: dict[str, Any]) -> str:
    return json.dumps(definition, ensure_ascii=False, default=str)


def _out(ctx: ServiceContext, segment_id: int) -> str:
    return segment_builder.segment_by_id(ctx, segment_id).name


def _row(record: Any) -> SegmentOut:
    return SegmentOut(id=record.id, **segments.segment_to_dict(record))


@router.get("", summary="List segments")
def list_segments(ctx: ApiContextDep) -> list[SegmentOut]:
    return [_row(record) for record in segments.list_segments(ctx)]


@router.post("", status_code=201, summary="Create a segment (a draft) from a definition")
def create_segment(ctx: ApiContextDep, definition: DefinitionBody) -> SegmentOut:
    return _row(segments.create_segment(ctx, _json(definition), "json"))


@router.post("/estimate", summary="Validate a definition and count its members, not saving it")
def estimate(ctx: ApiContextDep, definition: DefinitionBody) -> EstimateOut:
    return EstimateOut.model_validate(
        segment_builder.estimate_definition(ctx, definition).to_dict()
    )


@router.get("/suggest", summary="Quick segment: top values or percentiles of an attribute")
def suggest(
    ctx: ApiContextDep,
    attribute: Annotated[str, Query(min_length=1, max_length=300)],
) -> dict[str, Any]:
    return segment_members.suggest(ctx, attribute).to_dict()


@router.get("/{segment_id}", summary="A segment with its definition, history and exports")
def get_segment(ctx: ApiContextDep, segment_id: RecordId) -> dict[str, Any]:
    details = segments.show_segment(ctx, _out(ctx, segment_id))
    return {"id": segment_id, **details.to_dict()}


@router.put("/{segment_id}", summary="Replace a segment's definition")
def update_segment(
    ctx: ApiContextDep, segment_id: RecordId, definition: DefinitionBody
) -> dict[str, Any]:
    report = segments.update_segment(ctx, _out(ctx, segment_id), _json(definition), "json")
    return {
        **_row(report.segment).model_dump(),
        "renamed_from": report.renamed_from,
        "rules_changed": report.rules_changed,
        "members_stale": report.members_stale,
    }


@router.delete("/{segment_id}", status_code=204, summary="Delete a segment (refused if used)")
def delete_segment(ctx: ApiContextDep, segment_id: RecordId) -> Response:
    segments.delete_segment(ctx, _out(ctx, segment_id))
    return Response(status_code=204)


@router.post("/{segment_id}/refresh", summary="Refresh a segment: compute and store members")
def refresh_segment(ctx: ApiContextDep, segment_id: RecordId) -> RefreshOut:
    outcome = segments.refresh_segments(ctx, [_out(ctx, segment_id)])[0]
    return RefreshOut(
        name=outcome.name,
        status=outcome.status.value,
        member_count=outcome.member_count,
        entered=outcome.entered,
        left=outcome.left,
        error=outcome.error,
    )


@router.get("/{segment_id}/count", summary="Count a segment's members now")
def count_segment(ctx: ApiContextDep, segment_id: RecordId) -> CountOut:
    name = _out(ctx, segment_id)
    return CountOut(name=name, count=segment_members.count_segment(ctx, name))


@router.get("/{segment_id}/preview", summary="The first members with their attributes")
def preview_segment(
    ctx: ApiContextDep,
    segment_id: RecordId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return segment_members.preview_segment(ctx, _out(ctx, segment_id), limit).to_dict()
