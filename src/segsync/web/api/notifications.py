"""``/api/v1/notifications`` (T4): the notices to administrators — an export failed for good,
or recovered — with how each channel delivered them; mark them read. Administrators only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from segsync.errors import InputError
from segsync.services import notifications
from segsync.web.deps import MAX_ID, ApiContextDep, api_router

router = api_router("/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    at: str
    kind: str = Field(description="export_failed or export_recovered")
    export_id: int | None
    export: str = Field(description="The export's name.")
    run_id: int | None
    message: str
    delivered: dict[str, dict[str, Any]] = Field(
        description="Per channel: status (sending, ok, error, abandoned), attempts, error."
    )
    read_at: str | None


class MarkRead(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=1000, description="The notices to mark read."
    )
    all: bool = Field(default=False, description="Mark every unread notice read instead.")


class MarkedOut(BaseModel):
    marked_read: int = Field(description="Notices that were unread and are read now.")


@router.get("", summary="List notices, newest first")
def list_notifications(
    ctx: ApiContextDep,
    unread: Annotated[bool, Query(description="Only unread notices.")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000, description="The newest N.")] = 200,
) -> list[NotificationOut]:
    records = notifications.list_notifications(ctx, unread_only=unread, limit=limit)
    return [NotificationOut.model_validate(record.to_dict()) for record in records]


@router.post("/read", summary="Mark notices read (the given ids, or all)")
def mark_read(ctx: ApiContextDep, body: MarkRead) -> MarkedOut:
    """Give ``ids`` or ``"all": true`` (one of the two); unknown ids answer 404."""
    if body.all == bool(body.ids):
        raise InputError("ids: give notification ids, or all: true (one of the two)")
    changed = notifications.mark_read(ctx, "all" if body.all else body.ids)
    return MarkedOut(marked_read=changed)
