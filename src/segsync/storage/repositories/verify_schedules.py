"""Each export's verify schedule (the ``exports.verify_schedule`` column, an export schedule as
JSON; off by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from segsync.errors import NotFound
from segsync.storage.models.exports import Export


@dataclass(frozen=True)
class VerifySchedule:
    """An export's verify schedule as stored (``schedule``: the export-schedule dict)."""

    export_id: int
    export_name: str
    connection_id: int | None
    schedule: dict[str, Any]


class VerifyScheduleRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, export_id: int) -> VerifySchedule:
        row = self.session.get(Export, export_id)
        if row is None:
            raise NotFound(f"no export with id {export_id}; see `segsync exports list`")
        return _record(row)

    def set(self, export_id: int, schedule: dict[str, Any]) -> VerifySchedule:
        row = self.session.get(Export, export_id)
        if row is None:
            raise NotFound(f"no export with id {export_id}; see `segsync exports list`")
        row.verify_schedule = json.dumps(schedule)
        self.session.flush()
        return _record(row)

    def scheduled(self) -> list[VerifySchedule]:
        """Every export whose verify schedule is not off, by id."""
        rows = self.session.scalars(select(Export).order_by(Export.id))
        return [
            record
            for record in (_record(row) for row in rows)
            if record.schedule.get("mode", "off") != "off"
        ]


def _record(row: Export) -> VerifySchedule:
    value = json.loads(row.verify_schedule or "{}")
    schedule = value if isinstance(value, dict) else {}
    return VerifySchedule(row.id, row.name, row.connection_id, schedule or {"mode": "off"})
