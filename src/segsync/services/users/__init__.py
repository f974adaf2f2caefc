"""Users, roles, passwords and API tokens (``manage``); what the edges need to know about who
is acting (``access``).

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

__all__ = [
    "add_user",
    "authenticate",
    "authenticate_token",
    "create_token",
    "init_admin",
    "list_tokens",
    "list_users",
    "remove_user",
    "resolve_actor",
    "revoke_token",
    "set_password",
    "set_role",
]
