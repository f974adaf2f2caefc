"""Web sign-in state in the metadata DB, shared by every ``segsync serve`` process
(docs/security.md, "Web sessions and the sign-in limit").

* **Sessions**: signing in stores a session (the SHA-256 of a random token the cookie carries)
  that lives :data:`SESSION_MAX_AGE` seconds. Sign out deletes it, and a password change, a
  role change or the user's removal deletes all of that user's sessions: a copied cookie stops
  working at once.
* **Sign-in limit**: failures are counted per (email, client address) in the DB, so several
  processes share one count. From the :data:`MAX_SIGN_IN_FAILURES`-th failure in a row, further
  attempts are refused for :data:`FIRST_BLOCK`, doubling with each further failure up to
  :data:`MAX_BLOCK`. A success, or :data:`SIGN_IN_WINDOW` without a failure, starts the count
  again.

Every function takes the time from ``ctx.now`` (tests inject the clock).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from segsync.domain.permissions import Actor, Role
from segsync.services.context import ServiceContext
from segsync.storage.repositories.accounts import UserRepository
from segsync.storage.repositories.web_sessions import (
    SignInFailureRepository,
    WebSessionRepository,
)

SESSION_MAX_AGE = 12 * 3600
MAX_SIGN_IN_FAILURES = 5
SIGN_IN_WINDOW = timedelta(minutes=15)
FIRST_BLOCK = timedelta(minutes=1)
MAX_BLOCK = timedelta(hours=1)
_FORGET_AFTER = timedelta(days=1)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------- sessions


def start_session(ctx: ServiceContext, actor: Actor) -> str:
    """Store a new session for ``actor`` (a user with an id); the token for the cookie."""
    if actor.user_id is None:
        raise ValueError("only users with an account sign in on the web")
    token = secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.db.session() as session:
        WebSessionRepository(session).create(
            _digest(token),
            actor.user_id,
            now=now,
            expires_at=now + timedelta(seconds=SESSION_MAX_AGE),
        )
    return token


def session_actor(ctx: ServiceContext, token: str) -> Actor | None:
    """Who a session token stands for, with their current role; None when the session ended
    (sign out, password or role change, removal) or expired."""
    with ctx.db.session() as session:
        user_id = WebSessionRepository(session).user_of(_digest(token), now=ctx.now())
        if user_id is None:
            return None
        user = UserRepository(session).get(user_id)
    if user.removed:
        return None
    return Actor(user_id=user.id, email=user.email, role=Role(user.role))


def end_session(ctx: ServiceContext, token: str) -> None:
    """Sign out: the session ends for every copy of its cookie."""
    with ctx.db.session() as session:
        WebSessionRepository(session).end(_digest(token))


def end_user_sessions(session: Session, user_id: int) -> int:
    """End every session of a user, in the caller's transaction; how many ended."""
    return WebSessionRepository(session).end_all_for_user(user_id)


# ---------------------------------------------------------------- sign-in limit


def _key(email: str, client: str) -> str:
    return _digest(f"{email.strip().lower()}\n{client}")


def sign_in_wait(ctx: ServiceContext, email: str, client: str) -> int | None:
    """Seconds until ``email`` may try again from ``client``, or None if it may now."""
    now = ctx.now()
    with ctx.db.session() as session:
        row = SignInFailureRepository(session).get(_key(email, client))
        blocked_until = row.blocked_until if row is not None else None
    if blocked_until is None or blocked_until <= now:
        return None
    return max(1, math.ceil((blocked_until - now).total_seconds()))


def sign_in_failed(ctx: ServiceContext, email: str, client: str) -> None:
    """Count a failure; from the limit on, block further attempts for a growing time."""
    now = ctx.now()
    key = _key(email, client)
    with ctx.db.session() as session:
        repo = SignInFailureRepository(session)
        row = repo.get(key)
        quiet = row is not None and row.last_failed_at <= now - SIGN_IN_WINDOW
        if quiet and row is not None and (row.blocked_until is None or row.blocked_until <= now):
            repo.forget(key)  # quiet for a whole window: count again from zero
            session.flush()
        failures = repo.add_failure(key, now=now)
        if failures >= MAX_SIGN_IN_FAILURES:
            block = FIRST_BLOCK * 2 ** min(failures - MAX_SIGN_IN_FAILURES, 16)
            repo.block(key, now + min(block, MAX_BLOCK))
        repo.forget_quiet(now - _FORGET_AFTER)


def sign_in_succeeded(ctx: ServiceContext, email: str, client: str) -> None:
    with ctx.db.session() as session:
        SignInFailureRepository(session).forget(_key(email, client))
