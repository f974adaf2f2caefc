"""What the connection use cases hand to the CLI, the web UI and the API.

Two shapes, by who is asking (R5): everyone may get a :class:`ConnectionSummary` (display name and
type); administrators get :class:`ConnectionDetails` (every setting, never the key: only its
masked hint, or the secret reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from segsync.destinations.registry import capabilities
from segsync.domain.names import did_you_mean
from segsync.domain.permissions import ConnectionRef, Role
from segsync.errors import InputError, NotFound
from segsync.storage.repositories.accounts import UserRepository
from segsync.storage.repositories.connections import ConnectionRecord, ConnectionRepository

LOCAL_ADMIN_LABEL = "local administrator"


@dataclass(frozen=True)
class ConnectionSummary:
    """A connection as everyone may see it."""

    id: int
    name: str
    type: str
    type_display: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type}


@dataclass(frozen=True)
class ConsentInfo:
    """Who agreed to which statement text, when (C8)."""

    agreed_by: str
    agreed_at: datetime
    statement: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreed_by": self.agreed_by,
            "agreed_at": self.agreed_at.isoformat(),
            "statement": self.statement,
        }


@dataclass(frozen=True)
class ConnectionDetails(ConnectionSummary):
    """A connection as administrators see it. ``secret_hint`` is ``••••3f9a`` for a stored key
    or the reference (``env:NAME``); ``export_user`` is an email, ``local administrator``, or an
    email with a note when that user was removed or lost the administrator role (C3);
    ``exports`` the names of the exports using it, ``export_ids`` their ids (same order)."""

    shared_with_contributors: bool
    secret_hint: str
    secret_ref: str | None
    base_url: str
    rate_limit: float
    contract_limit: int
    export_user: str
    export_user_ok: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    health: str
    health_message: str | None
    health_checked_at: datetime | None
    exports: tuple[str, ...] = ()
    export_ids: tuple[int, ...] = ()
    consent: ConsentInfo | None = field(default=None)

    @property
    def export_items(self) -> list[tuple[str, int]]:
        """``(name, id)`` of each export using the connection."""
        return list(zip(self.exports, self.export_ids, strict=True))

    @property
    def who_may_use(self) -> str:
        return (
            "administrators and contributors"
            if self.shared_with_contributors
            else ("administrators only")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "shared_with_contributors": self.shared_with_contributors,
            "who_may_use": self.who_may_use,
            "secret": {
                "kind": "reference" if self.secret_ref else "stored",
                "hint": self.secret_hint,
                "reference": self.secret_ref,
            },
            "base_url": self.base_url,
            "rate_limit": self.rate_limit,
            "contract_limit": self.contract_limit,
            "export_user": self.export_user,
            "export_user_ok": self.export_user_ok,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "health": {
                "status": self.health,
                "message": self.health_message,
                "checked_at": (
                    self.health_checked_at.isoformat() if self.health_checked_at else None
                ),
            },
            "exports": {"count": len(self.exports), "names": list(self.exports)},
            "consent": self.consent.to_dict() if self.consent else None,
        }


@dataclass(frozen=True)
class ConnectionGroup:
    """Connections of one destination type, for the export forms (E1)."""

    type: str
    type_display: str
    connections: list[ConnectionSummary]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of Connect on a saved connection (``segsync connections test``)."""

    name: str
    health: str
    message: str
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.health == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "health": self.health,
            "message": self.message,
            "checked_at": self.checked_at.isoformat(),
        }


def unknown_connection(
    what: str, usable: Sequence[tuple[str, str]], *, name: str | None = None
) -> NotFound:
    """The error for a connection not found by ``what`` (``named 'X'``, ``with id 3``), naming
    the ``(name, type)`` of the connections the user may use, or saying there is none. A
    ``name`` close to one of those gets a "did you mean" (never one the user may not use)."""
    if not usable:
        return NotFound(
            f"connection: there is no connection {what}, and there is no connection you may use "
            "(an administrator adds one with `segsync connections add`, and shares it with "
            "contributors with --share-with-contributors)"
        )
    hint = "" if name is None else did_you_mean(name, (usable_name for usable_name, _ in usable))
    names = ", ".join(f"{usable_name} ({kind})" for usable_name, kind in usable)
    return NotFound(f"connection: there is no connection {what}{hint}; you may use: {names}")


def connection_ref(record: ConnectionRecord) -> ConnectionRef:
    """What the permission policy needs to know about a connection."""
    return ConnectionRef(record.id, record.shared_with_contributors, record.name)


def type_display(type_name: str) -> str:
    """The destination type's display name (``Autopilot``), or the type name if unknown."""
    try:
        return capabilities(type_name).display_name or type_name
    except InputError:
        return type_name


def summary_of(record: ConnectionRecord) -> ConnectionSummary:
    return ConnectionSummary(record.id, record.name, record.type, type_display(record.type))


def _export_user_label(session: Session, record: ConnectionRecord) -> tuple[str, bool]:
    if record.export_user_id is None:
        return LOCAL_ADMIN_LABEL, True
    user = UserRepository(session).get(record.export_user_id)
    if user.removed:
        return f"{user.email} (removed)", False
    if user.role != Role.ADMINISTRATOR.value:
        return f"{user.email} (no longer an administrator)", False
    return user.email, True


def details_of(
    session: Session,
    record: ConnectionRecord,
    exports: Sequence[tuple[int, str]],
    *,
    consent: bool,
) -> ConnectionDetails:
    """The administrators' view; with ``consent``, the latest consent record too."""
    export_user, export_user_ok = _export_user_label(session, record)
    latest = None
    if consent:
        consents = ConnectionRepository(session).consents(record.id)
        if consents:
            last = consents[-1]
            latest = ConsentInfo(last.agreed_by, last.agreed_at, last.statement)
    return ConnectionDetails(
        id=record.id,
        name=record.name,
        type=record.type,
        type_display=type_display(record.type),
        shared_with_contributors=record.shared_with_contributors,
        secret_hint=record.secret_hint,
        secret_ref=record.secret_ref,
        base_url=record.base_url,
        rate_limit=record.rate_limit,
        contract_limit=record.contract_limit,
        export_user=export_user,
        export_user_ok=export_user_ok,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
        health=record.health,
        health_message=record.health_message,
        health_checked_at=record.health_checked_at,
        exports=tuple(name for _, name in exports),
        export_ids=tuple(export_id for export_id, _ in exports),
        consent=latest,
    )
