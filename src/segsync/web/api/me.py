"""``GET /api/v1/me``: who the token belongs to, and what they may do."""

from __future__ import annotations

from typing import Any

from segsync.services.users.access import Action, can
from segsync.web.deps import ApiUser, api_router

router = api_router("/me", tags=["me"])


@router.get("", summary="The token's user and their permissions")
def me(actor: ApiUser) -> dict[str, Any]:
    """Your email, role, and which general actions your role allows (per-export permissions
    are on each export: ``your_permissions``)."""
    general = [a for a in Action if a not in _NEEDS_TARGET]
    return {
        "id": actor.user_id,
        "email": actor.email,
        "role": actor.role.value,
        "permissions": {action.value: can(actor, action) for action in general},
    }


_NEEDS_TARGET = frozenset(
    {
        Action.EDIT_EXPORT,
        Action.RUN_EXPORT,
        Action.SCHEDULE_EXPORT,
        Action.REMOVE_EXPORT,
        Action.CANCEL_RUN,
        Action.USE_CONNECTION,
    }
)
