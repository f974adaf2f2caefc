"""System-wide values kept as JSON (the system refresh schedule, the scheduler's marks).

:meth:`SystemSettingRepository.compare_and_set` is the DB-level guard two schedulers rely on:
it changes a value only if it still is what the caller read, so exactly one of them wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from segsync.storage.models.operations import SystemSetting


def encode(value: dict[str, Any]) -> str:
    """The stored text of ``value`` (canonical: sorted keys), as compare-and-set compares it."""
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class SettingRecord:
    """A stored value: ``value`` parsed, ``raw`` the text to pass back to compare-and-set."""

    key: str
    value: dict[str, Any]
    raw: str
    updated_at: datetime


class SystemSettingRepository:
    """Read and write system settings by key."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> SettingRecord | None:
        row = self.session.get(SystemSetting, key)
        if row is None:
            return None
        value = json.loads(row.value or "{}")
        return SettingRecord(
            key, value if isinstance(value, dict) else {}, row.value, row.updated_at
        )

    def put(self, key: str, value: dict[str, Any], *, now: datetime) -> SettingRecord:
        """Insert or replace ``key`` (last writer wins)."""
        text = encode(value)
        row = self.session.get(SystemSetting, key)
        if row is None:
            row = SystemSetting(key=key, value=text, updated_at=now)
            self.session.add(row)
        else:
            row.value = text
            row.updated_at = now
        self.session.flush()
        return SettingRecord(key, value, text, now)

    def compare_and_set(
        self, key: str, expected_raw: str | None, value: dict[str, Any], *, now: datetime
    ) -> bool:
        """Set ``key`` to ``value`` only if its stored text is still ``expected_raw`` (``None``:
        only if the key does not exist yet). Returns whether this call won.

        Run it as the first statement of its own unit of work: an insert that loses the race
        raises ``IntegrityError`` when the session commits, which the caller treats as lost.
        """
        text = encode(value)
        if expected_raw is None:
            exists = self.session.scalar(select(SystemSetting.key).where(SystemSetting.key == key))
            if exists is not None:
                return False
            self.session.add(SystemSetting(key=key, value=text, updated_at=now))
            self.session.flush()
            return True
        result = self.session.execute(
            update(SystemSetting)
            .where(SystemSetting.key == key, SystemSetting.value == expected_raw)
            .values(value=text, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
