"""Connections (with their encrypted secret or secret reference) and consents."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from segsync.errors import Conflict, NotFound
from segsync.storage.models.connections import Connection, Consent
from segsync.storage.models.exports import Export
from segsync.storage.repositories.changes import UNSET, Unset, apply_changes


@dataclass(frozen=True)
class ConnectionRecord:
    """A connection. ``secret_ciphertext`` is Fernet-encrypted (never the key in clear) and is
    left out of ``repr``; exactly one of it and ``secret_ref`` is set."""

    id: int
    name: str
    type: str
    shared_with_contributors: bool
    secret_ciphertext: bytes | None = field(repr=False)
    secret_ref: str | None
    secret_hint: str
    base_url: str
    rate_limit: float
    contract_limit: int
    export_user_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    health: str
    health_message: str | None
    health_checked_at: datetime | None
    instance_id: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    id: int
    connection_id: int | None
    connection_name: str
    agreed_by: str
    agreed_at: datetime
    statement: str


def _connection(row: Connection) -> ConnectionRecord:
    return ConnectionRecord(
        id=row.id,
        name=row.name,
        type=row.type,
        shared_with_contributors=row.shared_with_contributors,
        secret_ciphertext=row.secret_ciphertext,
        secret_ref=row.secret_ref,
        secret_hint=row.secret_hint,
        base_url=row.base_url,
        rate_limit=row.rate_limit,
        contract_limit=row.contract_limit,
        export_user_id=row.export_user_id,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        health=row.health,
        health_message=row.health_message,
        health_checked_at=row.health_checked_at,
        instance_id=row.instance_id,
    )


def _consent(row: Consent) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        connection_id=row.connection_id,
        connection_name=row.connection_name,
        agreed_by=row.agreed_by,
        agreed_at=row.agreed_at,
        statement=row.statement,
    )


class ConnectionRepository:
    """CRUD for connections; names are unique (``Conflict``), missing ones raise ``NotFound``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        name: str,
        type_name: str,
        shared_with_contributors: bool,
        secret_ciphertext: bytes | None,
        secret_ref: str | None,
        secret_hint: str,
        base_url: str,
        rate_limit: float,
        contract_limit: int,
        export_user_id: int | None,
        created_by: str,
        now: datetime,
        health: str = "unchecked",
        health_message: str | None = None,
        instance_id: str | None = None,
    ) -> ConnectionRecord:
        self._check_name_free(name)
        row = Connection(
            name=name,
            type=type_name,
            shared_with_contributors=shared_with_contributors,
            secret_ciphertext=secret_ciphertext,
            secret_ref=secret_ref,
            secret_hint=secret_hint,
            base_url=base_url,
            rate_limit=rate_limit,
            contract_limit=contract_limit,
            export_user_id=export_user_id,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            health=health,
            health_message=health_message,
            health_checked_at=now if health != "unchecked" else None,
            instance_id=instance_id,
        )
        self.session.add(row)
        self.session.flush()
        return _connection(row)

    def get(self, connection_id: int) -> ConnectionRecord:
        return _connection(self._row(connection_id))

    def find(self, connection_id: int) -> ConnectionRecord | None:
        row = self.session.get(Connection, connection_id)
        return None if row is None else _connection(row)

    def find_by_name(self, name: str) -> ConnectionRecord | None:
        row = self.session.scalars(select(Connection).where(Connection.name == name)).first()
        return None if row is None else _connection(row)

    def get_by_name(self, name: str) -> ConnectionRecord:
        record = self.find_by_name(name)
        if record is None:
            raise NotFound(f"no connection named {name!r}")
        return record

    def list(self) -> builtins.list[ConnectionRecord]:
        """Every connection, by type then name."""
        query = select(Connection).order_by(Connection.type, Connection.name)
        return [_connection(row) for row in self.session.scalars(query)]

    def update(
        self,
        connection_id: int,
        *,
        now: datetime,
        name: str | Literal[Unset.UNSET] = UNSET,
        shared_with_contributors: bool | Literal[Unset.UNSET] = UNSET,
        secret_ciphertext: bytes | Literal[Unset.UNSET] | None = UNSET,
        secret_ref: str | Literal[Unset.UNSET] | None = UNSET,
        secret_hint: str | Literal[Unset.UNSET] = UNSET,
        base_url: str | Literal[Unset.UNSET] = UNSET,
        rate_limit: float | Literal[Unset.UNSET] = UNSET,
        contract_limit: int | Literal[Unset.UNSET] = UNSET,
        export_user_id: int | Literal[Unset.UNSET] | None = UNSET,
    ) -> ConnectionRecord:
        """Change the given fields (the others stay); ``updated_at`` becomes ``now``."""
        row = self._row(connection_id)
        if name is not UNSET and name != row.name:
            self._check_name_free(name)
        apply_changes(
            row,
            {
                "name": name,
                "shared_with_contributors": shared_with_contributors,
                "secret_ciphertext": secret_ciphertext,
                "secret_ref": secret_ref,
                "secret_hint": secret_hint,
                "base_url": base_url,
                "rate_limit": rate_limit,
                "contract_limit": contract_limit,
                "export_user_id": export_user_id,
            },
        )
        row.updated_at = now
        self.session.flush()
        return _connection(row)

    def set_health(
        self,
        connection_id: int,
        health: str,
        message: str | None,
        *,
        at: datetime,
        instance_id: str | None = None,
    ) -> ConnectionRecord:
        """Record the outcome of a credentials check or a run's finding (``updated_at`` stays);
        a successful check also records the account it reached (``instance_id``)."""
        row = self._row(connection_id)
        if instance_id is not None:
            row.instance_id = instance_id
        row.health = health
        row.health_message = message
        row.health_checked_at = at
        self.session.flush()
        return _connection(row)

    def set_ciphertext(self, connection_id: int, ciphertext: bytes) -> None:
        """Replace the encrypted secret only (key rotation; nothing else changes)."""
        row = self._row(connection_id)
        row.secret_ciphertext = ciphertext
        self.session.flush()

    def delete(self, connection_id: int) -> None:
        self.session.delete(self._row(connection_id))
        self.session.flush()

    def exports_using(self, connection_id: int) -> builtins.list[tuple[int, str]]:
        """``(id, name)`` of the exports attached to the connection, by name."""
        query = (
            select(Export.id, Export.name)
            .where(Export.connection_id == connection_id)
            .order_by(Export.name)
        )
        return [(export_id, name) for export_id, name in self.session.execute(query)]

    def exports_by_connection(self) -> dict[int, builtins.list[tuple[int, str]]]:
        """``(id, name)`` of every attached export, by connection id (by name)."""
        query = (
            select(Export.connection_id, Export.id, Export.name)
            .where(Export.connection_id.is_not(None))
            .order_by(Export.name)
        )
        found: dict[int, builtins.list[tuple[int, str]]] = {}
        for connection_id, export_id, name in self.session.execute(query):
            if connection_id is not None:
                found.setdefault(connection_id, []).append((export_id, name))
        return found

    def add_consent(
        self,
        *,
        connection_id: int,
        connection_name: str,
        agreed_by: str,
        at: datetime,
        statement: str,
    ) -> ConsentRecord:
        row = Consent(
            connection_id=connection_id,
            connection_name=connection_name,
            agreed_by=agreed_by,
            agreed_at=at,
            statement=statement,
        )
        self.session.add(row)
        self.session.flush()
        return _consent(row)

    def consents(self, connection_id: int) -> builtins.list[ConsentRecord]:
        """The consents given for the connection, oldest first."""
        query = (
            select(Consent)
            .where(Consent.connection_id == connection_id)
            .order_by(Consent.agreed_at, Consent.id)
        )
        return [_consent(row) for row in self.session.scalars(query)]

    def _row(self, connection_id: int) -> Connection:
        row = self.session.get(Connection, connection_id)
        if row is None:
            raise NotFound(f"no connection with id {connection_id}")
        return row

    def _check_name_free(self, name: str) -> None:
        if self.find_by_name(name) is not None:
            raise Conflict(f"a connection named {name!r} already exists; choose another name")
