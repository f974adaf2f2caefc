"""``/api/v1/tokens``: your own API tokens. The token itself is returned once, at creation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from segsync.services import users
from segsync.web.deps import ApiContextDep, ObjectId, api_router

router = api_router("/tokens", tags=["tokens"])


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="What the token is for.")


def _token(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "hint": record.hint,
        "created_at": record.created_at.isoformat(),
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@router.get("", summary="List your API tokens")
def list_tokens(ctx: ApiContextDep) -> list[dict[str, Any]]:
    return [_token(record) for record in users.list_tokens(ctx)]


@router.post("", status_code=201, summary="Create an API token (shown once)")
def create_token(ctx: ApiContextDep, body: NewToken) -> dict[str, Any]:
    created = users.create_token(ctx, body.name)
    return {"id": created.id, "name": created.name, "token": created.token, "hint": created.hint}


@router.delete("/{token_id}", summary="Revoke an API token")
def revoke_token(ctx: ApiContextDep, token_id: ObjectId) -> dict[str, Any]:
    return _token(users.revoke_token(ctx, token_id))
