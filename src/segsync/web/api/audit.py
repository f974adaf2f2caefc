"""``/api/v1/audit``: the audit trail (P3). Administrators only."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import PlainTextResponse

from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.web.deps import ApiContextDep, api_router

router = api_router("/audit", tags=["audit"])

Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Events at or after: 30m, 24h, 7d, 2w, an ISO date or an ISO date-time.",
    ),
]


def _since(ctx: ServiceContext, since: str | None) -> Any:
    return audit.parse_since(since, ctx.now()) if since else None


@router.get("", summary="Read audit events, oldest first")
def list_events(
    ctx: ApiContextDep,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="The newest N events.")] = 500,
) -> list[dict[str, Any]]:
    return [event.to_dict() for event in audit.list_events(ctx, _since(ctx, since), limit)]


@router.get(
    "/export",
    summary="Export audit events as JSON lines",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_events(ctx: ApiContextDep, since: Since = None) -> PlainTextResponse:
    out = io.StringIO()
    audit.export_jsonl(ctx, out, _since(ctx, since))
    return PlainTextResponse(out.getvalue(), media_type="application/x-ndjson")
