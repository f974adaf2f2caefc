"""``/api/v1/users``: users and roles (R1). Administrators only; others get 403."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from segsync.errors import NotFound
from segsync.services import users
from segsync.services.context import ServiceContext
from segsync.web.deps import ApiContextDep, ObjectId, api_router

router = api_router("/users", tags=["users"])


class NewUser(BaseModel):
    email: str = Field(max_length=320, description="The user's email (their sign-in name).")
    role: str = Field(description="viewer, contributor or administrator")
    password: str | None = Field(
        default=None,
        max_length=1024,
        description="At least 12 characters; without one the user cannot sign in to the web UI.",
    )


class RoleChange(BaseModel):
    role: str = Field(description="viewer, contributor or administrator")


def _email_of(ctx: ServiceContext, user_id: ObjectId) -> str:
    for user in users.list_users(ctx):
        if user.id == user_id:
            return user.email
    raise NotFound(f"there is no user with id {user_id}")


@router.get("", summary="List users and their roles")
def list_users(ctx: ApiContextDep) -> list[dict[str, Any]]:
    return [user.to_dict() for user in users.list_users(ctx)]


@router.post("", status_code=201, summary="Add a user with a role")
def add_user(ctx: ApiContextDep, body: NewUser) -> dict[str, Any]:
    return users.add_user(ctx, body.email, body.role, body.password).to_dict()


@router.patch("/{user_id}", summary="Change a user's role")
def set_role(ctx: ApiContextDep, user_id: ObjectId, body: RoleChange) -> dict[str, Any]:
    """Refused (409) when it would leave no administrator."""
    return users.set_role(ctx, _email_of(ctx, user_id), body.role).to_dict()


@router.delete("/{user_id}", status_code=204, summary="Remove a user")
def remove_user(ctx: ApiContextDep, user_id: ObjectId) -> Response:
    """Their API tokens are revoked. Refused (409) for the last administrator."""
    users.remove_user(ctx, _email_of(ctx, user_id))
    return Response(status_code=204)
