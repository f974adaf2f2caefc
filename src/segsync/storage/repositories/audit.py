"""The audit trail: append-only events (P3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from segsync.storage.models.operations import AuditEvent


@dataclass(frozen=True)
class AuditRecord:
    """One event: who (``actor``), did what (``action``, e.g. ``connection.added``), to which
    ``target_type``/``target``, when (``at``), in a sentence (``summary``) and as JSON details."""

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target: str
    summary: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target_type": self.target_type,
            "target": self.target,
            "summary": self.summary,
            "details": self.details,
        }


def _record(row: AuditEvent) -> AuditRecord:
    try:
        details = json.loads(row.details or "{}")
    except ValueError:
        details = {"raw": row.details}
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target_type=row.target_type,
        target=row.target,
        summary=row.summary,
        details=details if isinstance(details, dict) else {"value": details},
    )


class AuditRepository:
    """Appends events and reads them back in the order they happened."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        target_type: str,
        target: str,
        summary: str,
        details: dict[str, Any],
    ) -> AuditRecord:
        row = AuditEvent(
            at=at,
            actor=actor[:320],
            action=action[:64],
            target_type=target_type[:32],
            target=target[:300],
            summary=summary,
            details=json.dumps(details, default=str, sort_keys=True, ensure_ascii=False),
        )
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def list(self, *, since: datetime | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Events at or after ``since``, oldest first; with ``limit``, only the newest ``limit``."""
        query = select(AuditEvent)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        if limit is not None:
            newest = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
            return [_record(row) for row in reversed(self.session.scalars(newest).all())]
        query = query.order_by(AuditEvent.at, AuditEvent.id)
        return [_record(row) for row in self.session.scalars(query)]

    def iterate(self, *, since: datetime | None = None, chunk: int = 1000) -> Iterator[AuditRecord]:
        """Every event at or after ``since``, oldest first, read ``chunk`` rows at a time."""
        last_id = 0
        while True:
            query = select(AuditEvent).where(AuditEvent.id > last_id)
            if since is not None:
                query = query.where(AuditEvent.at >= since)
            rows = self.session.scalars(query.order_by(AuditEvent.id).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            last_id = rows[-1].id
