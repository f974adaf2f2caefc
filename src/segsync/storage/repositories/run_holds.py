"""The blast-radius hold on the ``runs`` table (docs/exports.md "Blast-radius hold"): a run's
hold record (``runs.hold``, JSON), putting an approved Held run back in the queue, and
dismissing the older Held runs of an export a newer one supersedes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from segsync.domain.runs import RunStatus, check_transition
from segsync.errors import Conflict, NotFound
from segsync.storage.models.runs import Run
from segsync.storage.repositories.run_records import RunRecord, record_of


class RunHoldRepository:
    """Hold records and the moves out of Held (``Conflict`` when the run is not Held)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def set_hold(self, run_id: int, hold: dict[str, Any] | None) -> None:
        """Replace the run's hold record (``None`` clears it)."""
        self.session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(hold=None if hold is None else json.dumps(hold, default=str))
            .execution_options(synchronize_session=False)
        )

    def requeue(
        self, run_id: int, *, hold: dict[str, Any], message: str, now: datetime
    ) -> RunRecord:
        """Move a Held run back to Queued (approved), with its new hold record: a worker
        claims it and it plans again. A compare-and-set on Held, so two approvals (or an
        approval and a dismissal) never both win."""
        row = self._row(run_id)
        check_transition(RunStatus(row.status), RunStatus.QUEUED, run_id)
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.HELD.value)
            .values(
                status=RunStatus.QUEUED.value,
                hold=json.dumps(hold, default=str),
                message=message,
                queued_at=now,
                ended_at=None,
                cancel_requested=False,
                lease_owner=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        self.session.expire(row)
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            status = RunStatus(self._row(run_id).status)
            raise Conflict(f"run {run_id} is {status.label} now; it was not approved")
        return record_of(self._row(run_id))

    def supersede(self, newer_run_id: int, *, now: datetime) -> list[int]:
        """End the older Held runs of the same export and kind (a sync run's, an undo of the
        same run's) Canceled: the newer run's plan replaces theirs. Returns their ids."""
        newer = self._row(newer_run_id)
        older = list(
            self.session.scalars(
                select(Run.id).where(
                    Run.export_id == newer.export_id,
                    Run.kind == newer.kind,
                    Run.undo_of.is_(None)
                    if newer.undo_of is None
                    else Run.undo_of == newer.undo_of,
                    Run.status == RunStatus.HELD.value,
                    Run.id < newer_run_id,
                )
            )
        )
        if older:
            self.session.execute(
                update(Run)
                .where(Run.id.in_(older), Run.status == RunStatus.HELD.value)
                .values(
                    status=RunStatus.CANCELED.value,
                    ended_at=now,
                    message=(
                        f"dismissed: superseded by run {newer_run_id}, held with a newer plan; "
                        "nothing was sent"
                    ),
                )
                .execution_options(synchronize_session=False)
            )
        return older

    def _row(self, run_id: int) -> Run:
        row = self.session.get(Run, run_id)
        if row is None:
            raise NotFound(f"no run with id {run_id}; see `segsync runs list`")
        return row
