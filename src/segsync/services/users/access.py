"""What the web UI and the REST API need to know about who is acting (R1–R6, I1, I2).

The edges (``web/``, ``cli/``) may import services only, so this module hands them the one
permission policy of :mod:`segsync.domain.permissions` — to hide the buttons a user cannot use;
every service still refuses on its own — plus the few account questions a web sign-in asks:
is there an administrator yet (the first-run page), and is a signed-in session's user still
active (role changes and removals apply on the next request).
"""

from __future__ import annotations

from dataclasses import replace

from segsync.domain.permissions import (
    Action,
    Actor,
    ConnectionRef,
    Decision,
    ExportRef,
    Role,
    Target,
    decide,
    require,
)
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.users import manage as users
from segsync.storage.repositories.accounts import UserRepository

__all__ = [
    "ANONYMOUS",
    "Action",
    "Actor",
    "ConnectionRef",
    "Decision",
    "ExportRef",
    "Role",
    "Target",
    "can",
    "create_first_admin",
    "decide",
    "needs_first_admin",
    "require",
    "session_actor",
]

ANONYMOUS = Actor(user_id=None, email="anonymous", role=Role.VIEWER)
"""The actor of a request nobody signed in to: services called with it refuse every change."""


def can(actor: Actor | None, action: Action | str, target: Target = None) -> bool:
    """Whether ``actor`` may do ``action`` to ``target`` (``None``: nobody signed in: no)."""
    if actor is None:
        return False
    return decide(actor, Action(action), target).allowed


def needs_first_admin(ctx: ServiceContext) -> bool:
    """True while no active administrator exists: the web UI then offers the first-run page."""
    with ctx.db.session() as session:
        return UserRepository(session).count_with_role(Role.ADMINISTRATOR.value) == 0


def create_first_admin(ctx: ServiceContext, email: str, password: str) -> users.UserInfo:
    """The first-run page: create the first administrator with a password (12+ characters).

    ``Conflict`` once any administrator exists (the page is then gone). The audit trail names
    the new administrator as the actor: nobody else existed to do it.
    """
    if not needs_first_admin(ctx):
        raise Conflict("an administrator already exists; sign in instead")
    address = users.normalise_user_email(email)
    founder = Actor(user_id=None, email=address, role=Role.ADMINISTRATOR)
    return users.add_user(replace(ctx, actor=founder), address, Role.ADMINISTRATOR, password)


def session_actor(ctx: ServiceContext, user_id: int, email: str) -> Actor | None:
    """The actor a signed-in session stands for, with the user's current role; ``None`` when
    the user was removed (or the id no longer belongs to ``email``)."""
    with ctx.db.session() as session:
        user = UserRepository(session).find_active(email)
    if user is None or user.id != user_id:
        return None
    return Actor(user_id=user.id, email=user.email, role=Role(user.role))
