"""Web sign-in state shared by every process: server-side sessions and failed sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class WebSessionRow(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
    copy of the DB signs nobody in. Deleting the row ends the session at once."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignInFailure(Base):
    """Failed sign-ins of one (email, client address): how many in a row, and until when
    further attempts are refused."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int]
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
    blocked_until: Mapped[datetime | None]
