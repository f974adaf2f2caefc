"""Users and their API tokens.

Removing a user keeps its row with the role ``removed`` (and no password): connections keep
pointing at their export user (C3) and the audit trail at who acted, so a removed export user can
be reported as such. Adding the same email again brings the row back with the new role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segsync.errors import Conflict, NotFound
from segsync.storage.models.accounts import ApiToken, User

REMOVED_ROLE = "removed"
"""The ``role`` of a removed user's row."""


@dataclass(frozen=True)
class UserRecord:
    """A user. ``role`` is a ``Role`` value or ``"removed"``; the password hash is not here
    (ask :meth:`UserRepository.password_hash`) so records can be shown safely."""

    id: int
    email: str
    role: str
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @property
    def removed(self) -> bool:
        return self.role == REMOVED_ROLE


@dataclass(frozen=True)
class ApiTokenRecord:
    """An API token without its secret: ``hint`` is the masked form (``••••ab12``)."""

    id: int
    user_id: int
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _user(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        role=row.role,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _token(row: ApiToken) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class UserRepository:
    """Users by id or (normalised) email. Lookups of active users skip removed rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self, *, email: str, role: str, password_hash: str | None, now: datetime
    ) -> UserRecord:
        """Add a user, or bring back a removed one with this email (``Conflict`` if active)."""
        row = self.session.scalars(select(User).where(User.email == email)).first()
        if row is not None and row.role != REMOVED_ROLE:
            raise Conflict(f"a user with the email {email!r} already exists")
        if row is None:
            row = User(email=email, created_at=now)
            self.session.add(row)
        row.role = role
        row.password_hash = password_hash
        row.updated_at = now
        self.session.flush()
        return _user(row)

    def get(self, user_id: int) -> UserRecord:
        """The user with this id, removed or not."""
        return _user(self._row(user_id))

    def find_active(self, email: str) -> UserRecord | None:
        row = self.session.scalars(
            select(User).where(User.email == email, User.role != REMOVED_ROLE)
        ).first()
        return None if row is None else _user(row)

    def get_active(self, email: str) -> UserRecord:
        record = self.find_active(email)
        if record is None:
            raise NotFound(f"no user with the email {email!r}")
        return record

    def list_active(self) -> list[UserRecord]:
        query = select(User).where(User.role != REMOVED_ROLE).order_by(User.email)
        return [_user(row) for row in self.session.scalars(query)]

    def count_with_role(self, role: str) -> int:
        return int(self.session.scalar(select(func.count()).where(User.role == role)) or 0)

    def set_role(self, user_id: int, role: str, *, now: datetime) -> UserRecord:
        row = self._row(user_id)
        row.role = role
        row.updated_at = now
        self.session.flush()
        return _user(row)

    def password_hash(self, user_id: int) -> str | None:
        return self._row(user_id).password_hash

    def set_password_hash(self, user_id: int, password_hash: str | None, *, now: datetime) -> None:
        row = self._row(user_id)
        row.password_hash = password_hash
        row.updated_at = now
        self.session.flush()

    def remove(self, user_id: int, *, now: datetime) -> UserRecord:
        """Mark the user removed: role ``removed``, no password (the row stays, see above)."""
        row = self._row(user_id)
        row.role = REMOVED_ROLE
        row.password_hash = None
        row.updated_at = now
        self.session.flush()
        return _user(row)

    def _row(self, user_id: int) -> User:
        row = self.session.get(User, user_id)
        if row is None:
            raise NotFound(f"no user with id {user_id}")
        return row


class ApiTokenRepository:
    """API tokens, found by the SHA-256 hex digest of the token (the token itself is not kept)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self, *, user_id: int, name: str, token_hash: str, hint: str, now: datetime
    ) -> ApiTokenRecord:
        row = ApiToken(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            hint=hint,
            created_at=now,
            last_used_at=None,
            revoked_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return _token(row)

    def get(self, token_id: int) -> ApiTokenRecord:
        row = self.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        return _token(row)

    def find_by_hash(self, token_hash: str) -> ApiTokenRecord | None:
        row = self.session.scalars(
            select(ApiToken).where(ApiToken.token_hash == token_hash)
        ).first()
        return None if row is None else _token(row)

    def list_for_user(self, user_id: int) -> list[ApiTokenRecord]:
        query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        return [_token(row) for row in self.session.scalars(query)]

    def mark_used(self, token_id: int, *, now: datetime) -> None:
        row = self.session.get(ApiToken, token_id)
        if row is not None:
            row.last_used_at = now
            self.session.flush()

    def revoke(self, token_id: int, *, now: datetime) -> ApiTokenRecord:
        row = self.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        if row.revoked_at is None:
            row.revoked_at = now
            self.session.flush()
        return _token(row)

    def revoke_all_for_user(self, user_id: int, *, now: datetime) -> int:
        rows = self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        ).all()
        for row in rows:
            row.revoked_at = now
        self.session.flush()
        return len(rows)
