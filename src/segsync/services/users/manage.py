"""Users, roles, passwords and API tokens (R1): who may act, and as whom.

Every change is checked against the permission policy (only administrators manage users) and
recorded in the audit trail in the same transaction. Passwords are hashed with Argon2 and must
have at least :data:`MIN_PASSWORD_LENGTH` characters. Emails are trimmed and lower-cased.

There is always at least one administrator once one exists: removing or demoting the last one is
refused. A removed user's row is kept with the role ``removed`` (see
:mod:`segsync.storage.repositories.accounts`), so the connections that name it as export user
can say so (C3).

API tokens (``/api/v1``) belong to users; :func:`create_token` shows the token once and stores its
SHA-256 only.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from segsync.domain.emails import mask_secret, normalise_email
from segsync.domain.permissions import Action, Actor, Role, require
from segsync.errors import Conflict, InputError, NotFound, PermissionDenied
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.privacy import audit
from segsync.services.users.web_sessions import end_user_sessions
from segsync.storage.repositories.accounts import (
    ApiTokenRecord,
    ApiTokenRepository,
    UserRecord,
    UserRepository,
)

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "ssk_"  # noqa: S105 - a prefix, not a secret
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs what a wrong password costs.


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both cases take as long. Made on first
    use: hashing costs ~0.1 s, which every CLI command would otherwise pay at import."""
    return _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


_SIGN_IN_FAILED = "the email or password is wrong"


@dataclass(frozen=True)
class UserInfo:
    """A user as shown to people: no password hash."""

    id: int
    email: str
    role: Role
    has_password: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role.value,
            "has_password": self.has_password,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class CreatedToken:
    """A new API token. ``token`` is shown this once and never again."""

    id: int
    name: str
    token: str
    hint: str


def _info(record: UserRecord) -> UserInfo:
    return UserInfo(
        record.id, record.email, Role(record.role), record.has_password, record.created_at
    )


def normalise_user_email(email: str) -> str:
    """The stored form of a user's email; ``InputError`` naming the problem if it is invalid."""
    normalised, reason = normalise_email(email)
    if normalised is None:
        raise InputError(f"user email {email!r} is {reason}")
    return normalised


def parse_role(role: str | Role) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InputError(f"role {role!r} is not one of: {known}") from None


def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )
    return _hasher.hash(password)


def add_user(
    ctx: ServiceContext, email: str, role: str | Role, password: str | None = None
) -> UserInfo:
    """Add a user with ``role`` (and a password to sign in to the web UI, optional)."""
    require(ctx.actor, Action.MANAGE_USERS)
    address = normalise_user_email(email)
    chosen = parse_role(role)
    password_hash = None if password is None else _hash_password(password)
    with ctx.db.session() as session:
        record = UserRepository(session).create(
            email=address, role=chosen.value, password_hash=password_hash, now=ctx.now()
        )
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="user.added",
            target_type="user",
            target=address,
            summary=f"Added user {address} as {chosen.value}",
            details={"role": chosen.value, "sign_in_enabled": password is not None},
        )
    return _info(record)


def list_users(ctx: ServiceContext) -> list[UserInfo]:
    """Every user, by email. Administrators only (it is the permissions page)."""
    require(ctx.actor, Action.MANAGE_USERS)
    with ctx.db.session() as session:
        return [_info(record) for record in UserRepository(session).list_active()]


def _refuse_losing_last_admin(repo: UserRepository, user: UserRecord, doing: str) -> None:
    if (
        user.role == Role.ADMINISTRATOR.value
        and repo.count_with_role(Role.ADMINISTRATOR.value) <= 1
    ):
        raise Conflict(
            f"{user.email} is the last administrator; cannot {doing}. Make another user "
            "administrator first"
        )


def set_role(ctx: ServiceContext, email: str, role: str | Role) -> UserInfo:
    """Change a user's role (refused if it would leave no administrator)."""
    require(ctx.actor, Action.MANAGE_USERS)
    address = normalise_user_email(email)
    chosen = parse_role(role)
    with ctx.db.session() as session:
        repo = UserRepository(session)
        user = repo.get_active(address)
        if user.role == chosen.value:
            return _info(user)
        if chosen is not Role.ADMINISTRATOR:
            _refuse_losing_last_admin(repo, user, f"make them {chosen.value}")
        updated = repo.set_role(user.id, chosen.value, now=ctx.now())
        end_user_sessions(session, user.id)  # signs in again with the new role
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="user.role_changed",
            target_type="user",
            target=address,
            summary=f"Changed the role of {address} from {user.role} to {chosen.value}",
            details={"from": user.role, "to": chosen.value},
        )
    return _info(updated)


def set_password(ctx: ServiceContext, email: str, password: str) -> None:
    """Set a user's password: administrators for anyone, every user for themselves."""
    address = normalise_user_email(email)
    if ctx.actor.email != address:
        require(ctx.actor, Action.MANAGE_USERS)
    password_hash = _hash_password(password)
    with ctx.db.session() as session:
        repo = UserRepository(session)
        user = repo.get_active(address)
        repo.set_password_hash(user.id, password_hash, now=ctx.now())
        end_user_sessions(session, user.id)  # every signed-in browser, this one included
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="user.password_set",
            target_type="user",
            target=address,
            summary=f"Set the password of {address}",
        )


def remove_user(ctx: ServiceContext, email: str) -> None:
    """Remove a user (refused for the last administrator); their API tokens are revoked."""
    require(ctx.actor, Action.MANAGE_USERS)
    address = normalise_user_email(email)
    with ctx.db.session() as session:
        repo = UserRepository(session)
        user = repo.get_active(address)
        _refuse_losing_last_admin(repo, user, "remove them")
        repo.remove(user.id, now=ctx.now())
        revoked = ApiTokenRepository(session).revoke_all_for_user(user.id, now=ctx.now())
        end_user_sessions(session, user.id)
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="user.removed",
            target_type="user",
            target=address,
            summary=f"Removed user {address} (was {user.role})",
            details={"role": user.role, "revoked_token_count": revoked},
        )


def init_admin(ctx: ServiceContext, email: str, password: str | None) -> tuple[UserInfo, bool]:
    """``segsync init --admin-email``: create the first administrator.

    Returns the user and whether it was created. Re-running with the same administrator is a
    no-op (its password is left as it is); when another administrator exists it is ``Conflict``.
    """
    address = normalise_user_email(email)
    with ctx.db.session() as session:
        repo = UserRepository(session)
        existing = repo.find_active(address)
        admins = repo.count_with_role(Role.ADMINISTRATOR.value)
    if existing is not None and existing.role == Role.ADMINISTRATOR.value:
        return _info(existing), False
    if admins > 0:
        raise Conflict(
            "an administrator already exists; add more users with `segsync users add EMAIL "
            "--role administrator`"
        )
    if existing is not None:
        return set_role(ctx, address, Role.ADMINISTRATOR), False
    return add_user(ctx, address, Role.ADMINISTRATOR, password), True


def resolve_actor(ctx: ServiceContext, email: str) -> Actor:
    """The :class:`Actor` for a user's email (``--as EMAIL``); ``NotFound`` if there is none.

    ``local-admin`` names the CLI's local administrator."""
    if email.strip() == LOCAL_ADMIN.email:
        return LOCAL_ADMIN
    address = normalise_user_email(email)
    with ctx.db.session() as session:
        user = UserRepository(session).find_active(address)
    if user is None:
        raise NotFound(f"no user with the email {address!r}; list them with `segsync users list`")
    return Actor(user_id=user.id, email=user.email, role=Role(user.role))


def authenticate(ctx: ServiceContext, email: str, password: str) -> Actor:
    """Check a password (web sign-in). ``PermissionDenied`` with one message for every failure;
    an unknown email costs the same hashing time as a wrong password."""
    address, _ = normalise_email(email)
    with ctx.db.session() as session:
        repo = UserRepository(session)
        user = repo.find_active(address) if address else None
        stored = repo.password_hash(user.id) if user is not None else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise PermissionDenied(_SIGN_IN_FAILED) from None
    if user is None or stored is None:
        raise PermissionDenied(_SIGN_IN_FAILED)
    if _hasher.check_needs_rehash(stored):
        with ctx.db.session() as session:
            UserRepository(session).set_password_hash(
                user.id, _hasher.hash(password), now=ctx.now()
            )
    return Actor(user_id=user.id, email=user.email, role=Role(user.role))


# --- API tokens ----------------------------------------------------------------------------


def _token_owner(ctx: ServiceContext) -> int:
    require(ctx.actor, Action.MANAGE_OWN_TOKENS)
    if ctx.actor.user_id is None:
        raise InputError(
            "the local administrator has no user account, and API tokens belong to users; "
            "run the command as a user with --as EMAIL"
        )
    return ctx.actor.user_id


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(ctx: ServiceContext, name: str) -> CreatedToken:
    """A new API token for the acting user; the returned ``token`` is not stored anywhere."""
    user_id = _token_owner(ctx)
    label = name.strip()
    if not label or len(label) > 200:
        raise InputError("the token name must have 1 to 200 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.db.session() as session:
        record = ApiTokenRepository(session).create(
            user_id=user_id,
            name=label,
            token_hash=_hash_token(token),
            hint=mask_secret(token),
            now=ctx.now(),
        )
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="token.created",
            target_type="token",
            target=f"{record.id}",
            summary=f"Created API token {label!r} ({record.hint})",
            details={"token_name": label, "token_hint": record.hint},
        )
    return CreatedToken(record.id, record.name, token, record.hint)


def list_tokens(ctx: ServiceContext) -> list[ApiTokenRecord]:
    """The acting user's tokens (revoked ones included), oldest first."""
    user_id = _token_owner(ctx)
    with ctx.db.session() as session:
        return ApiTokenRepository(session).list_for_user(user_id)


def revoke_token(ctx: ServiceContext, token_id: int) -> ApiTokenRecord:
    """Revoke one of the acting user's tokens (administrators may revoke anyone's)."""
    with ctx.db.session() as session:
        repo = ApiTokenRepository(session)
        record = repo.get(token_id)
        if record.user_id != ctx.actor.user_id:
            if ctx.actor.role is not Role.ADMINISTRATOR:
                raise NotFound(f"you have no API token with id {token_id}")
        else:
            _token_owner(ctx)
        revoked = repo.revoke(token_id, now=ctx.now())
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="token.revoked",
            target_type="token",
            target=f"{token_id}",
            summary=f"Revoked API token {record.name!r} ({record.hint})",
            details={"token_name": record.name, "owner_id": record.user_id},
        )
    return revoked


def authenticate_token(ctx: ServiceContext, token: str) -> Actor:
    """The :class:`Actor` a bearer token stands for; ``PermissionDenied`` if unknown, revoked,
    or its user was removed."""
    with ctx.db.session() as session:
        tokens = ApiTokenRepository(session)
        record = tokens.find_by_hash(_hash_token(token.strip()))
        if record is None or record.revoked_at is not None:
            raise PermissionDenied("the API token is unknown or revoked")
        user = UserRepository(session).get(record.user_id)
        if user.removed:
            raise PermissionDenied("the API token's user was removed")
        tokens.mark_used(record.id, now=ctx.now())
    return Actor(user_id=user.id, email=user.email, role=Role(user.role))
