"""Connections to destinations (their encrypted secret) and the consent given for each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class Connection(Base):
    """A destination account. The API key is kept Fernet-encrypted (``secret_ciphertext``) or as
    a reference resolved at run time (``secret_ref``: ``env:NAME`` / ``file:PATH``)."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    shared_with_contributors: Mapped[bool] = mapped_column(default=False)
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_ref: Mapped[str | None] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(Text)
    rate_limit: Mapped[float] = mapped_column(Float)
    contract_limit: Mapped[int] = mapped_column(BigInteger)
    export_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    health: Mapped[str] = mapped_column(String(32), default="unchecked")
    health_message: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[datetime | None]
    instance_id: Mapped[str | None] = mapped_column(String(128))
    """The destination account (Autopilot ``instanceId``) its last successful check reached."""


class Consent(Base):
    """Who agreed to the data-privacy statement for a connection, when, and to which text (C8)."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    connection_name: Mapped[str] = mapped_column(String(200))
    agreed_by: Mapped[str] = mapped_column(String(320))
    agreed_at: Mapped[datetime]
    statement: Mapped[str] = mapped_column(Text)
