"""Undo runs on the ``runs`` table (docs/exports.md "Undo a run"): which run an undo reverses,
the undos of a run, and the values the sync state last acknowledged for the people an undo
adds back to lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from segsync.domain.runs import RunStatus
from segsync.storage.models.runs import Run
from segsync.storage.models.sync import SyncContact
from segsync.storage.repositories.driver import in_lists
from segsync.storage.repositories.run_records import RunRecord, record_of

UNDO_KIND = "undo"


class RunUndoRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def mark_undo(self, run_id: int, undo_of: int) -> None:
        """Record that run ``run_id`` (kind ``undo``) reverses run ``undo_of``."""
        self.session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(undo_of=undo_of)
            .execution_options(synchronize_session=False)
        )

    def undos_of(self, run_id: int) -> list[RunRecord]:
        """The undo runs of ``run_id`` (real ones; dry runs aside), oldest first."""
        rows = self.session.scalars(
            select(Run)
            .where(Run.undo_of == run_id, Run.kind == UNDO_KIND, Run.dry_run.is_(False))
            .order_by(Run.id)
        )
        return [record_of(row) for row in rows]

    def open_undo(self, run_id: int) -> RunRecord | None:
        """An undo of ``run_id`` that has not ended (queued, processing, or held)."""
        for undo in self.undos_of(run_id):
            if not undo.status.is_final or undo.status is RunStatus.HELD:
                return undo
        return None

    def payloads(self, export_id: int, emails: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """email → the mapped values last acknowledged (``None`` when unknown)."""
        wanted = list(dict.fromkeys(emails))
        found: dict[str, dict[str, Any] | None] = {}
        for _, chunk in in_lists(wanted):
            rows = self.session.execute(
                select(SyncContact.email, SyncContact.payload).where(
                    SyncContact.export_id == export_id, SyncContact.email.in_(chunk)
                )
            )
            for email, payload in rows:
                found[email] = None if payload is None else dict(orjson.loads(payload))
        return found
