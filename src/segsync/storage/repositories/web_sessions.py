"""Server-side web sessions and failed sign-ins (the only SQL on their tables)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segsync.storage.models.web_sessions import SignInFailure, WebSessionRow


class WebSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, token_hash: str, user_id: int, *, now: datetime, expires_at: datetime) -> None:
        self.session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
        self.session.add(
            WebSessionRow(
                token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )
        self.session.flush()

    def user_of(self, token_hash: str, *, now: datetime) -> int | None:
        """The user a live session belongs to; None when it ended, expired or never was."""
        row = self.session.get(WebSessionRow, token_hash)
        if row is None or row.expires_at <= now:
            return None
        return row.user_id

    def end(self, token_hash: str) -> None:
        self.session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == token_hash))

    def end_all_for_user(self, user_id: int) -> int:
        """End every session of a user; how many there were."""
        result = self.session.execute(delete(WebSessionRow).where(WebSessionRow.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def count_for_user(self, user_id: int, *, now: datetime) -> int:
        rows = self.session.scalars(
            select(WebSessionRow.token_hash).where(
                WebSessionRow.user_id == user_id, WebSessionRow.expires_at > now
            )
        )
        return len(list(rows))


class SignInFailureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> SignInFailure | None:
        return self.session.get(SignInFailure, key)

    def add_failure(self, key: str, *, now: datetime) -> int:
        """Count one more failure (atomically: every process shares the row); the new count."""
        bumped = self.session.execute(
            update(SignInFailure)
            .where(SignInFailure.key == key)
            .values(failures=SignInFailure.failures + 1, last_failed_at=now)
        )
        if not getattr(bumped, "rowcount", 0):
            try:
                with self.session.begin_nested():
                    self.session.add(
                        SignInFailure(key=key, failures=1, last_failed_at=now, blocked_until=None)
                    )
            except IntegrityError:  # another process inserted it first
                return self.add_failure(key, now=now)
        row = self.session.get(SignInFailure, key, populate_existing=True)
        assert row is not None
        return row.failures

    def block(self, key: str, until: datetime) -> None:
        self.session.execute(
            update(SignInFailure).where(SignInFailure.key == key).values(blocked_until=until)
        )

    def forget(self, key: str) -> None:
        self.session.execute(delete(SignInFailure).where(SignInFailure.key == key))

    def forget_quiet(self, before: datetime) -> None:
        """Drop the rows of keys with no failure since ``before`` and no block in force."""
        self.session.execute(
            delete(SignInFailure).where(
                SignInFailure.last_failed_at < before,
                (SignInFailure.blocked_until.is_(None)) | (SignInFailure.blocked_until < before),
            )
        )
