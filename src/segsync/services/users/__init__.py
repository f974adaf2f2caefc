"""Users, roles, passwords and API tokens (``manage``); what the edges need to know about who
is acting (``access``); web sessions and the sign-in limit, in the DB (``web_sessions``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.users.manage import (
    add_user,
    authenticate,
    authenticate_token,
    create_token,
    init_admin,
    list_tokens,
    list_users,
    remove_user,
    resolve_actor,
    revoke_token,
    set_password,
    set_role,
)
from segsync.services.users.web_sessions import (
    end_session,
    session_actor,
    sign_in_failed,
    sign_in_succeeded,
    sign_in_wait,
    start_session,
)

__all__ = [
    "add_user",
    "authenticate",
    "authenticate_token",
    "create_token",
    "end_session",
    "init_admin",
    "list_tokens",
    "list_users",
    "remove_user",
    "resolve_actor",
    "revoke_token",
    "session_actor",
    "set_password",
    "set_role",
    "sign_in_failed",
    "sign_in_succeeded",
    "sign_in_wait",
    "start_session",
]
