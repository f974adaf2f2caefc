"""Runs: the queue entry, the checkpointed progress and the record of each export run, and the
members each run set aside (rejects)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from segsync.domain.runs import RunCounts, RunStatus, check_transition
from segsync.errors import Conflict, NotFound
from segsync.storage.models.runs import Run, RunReject
from segsync.storage.repositories.driver import bind_value, execute, execute_many, select_rows
from segsync.storage.repositories.run_records import RejectRecord, RunRecord, record_of

_SAVE_PROGRESS = (
    "UPDATE runs SET counts = ?, items_done = ?, items_total = ?, lease_expires_at = ? "
    "WHERE id = ? AND status = ? AND lease_owner = ?"
)
_CANCEL_OR_GONE = "SELECT cancel_requested, export_id FROM runs WHERE id = ?"
_LEASE_EXPIRES = Run.__table__.c.lease_expires_at
_ADD_REJECT = (
    "INSERT INTO run_rejects (run_id, kind, profile_id, email, reason) VALUES (?, ?, ?, ?, ?)"
)
_RUN_COLUMNS = tuple(getattr(Run, column.key) for column in Run.__table__.columns)
"""Every column of ``runs`` as the mapped attribute (a select of these returns plain rows)."""

__all__ = ["HOLD_PREFIX", "RejectRecord", "RunRecord", "RunRepository", "claimable"]


def claimable(now: datetime) -> ColumnElement[bool]:
    """The condition every claim of a Queued run must respect: the run is Queued and not
    *held*. The scheduler holds the runs of a system refresh while their segments refresh by
    setting ``lease_owner`` (``hold:...``) and ``lease_expires_at`` on the Queued row; a hold
    ends when it is released (both NULL) or expires (``lease_expires_at <= now``), so a
    scheduler that died mid-refresh never blocks its runs for good."""
    return and_(
        Run.status == RunStatus.QUEUED.value,
        or_(Run.lease_expires_at.is_(None), Run.lease_expires_at <= now),
    )


HOLD_PREFIX = "hold:"
"""``lease_owner`` of a Queued run the scheduler holds (see :func:`claimable`)."""


class RunRepository:
    """Create, claim, checkpoint, finish and list runs. Missing runs raise ``NotFound``; status
    changes follow :func:`segsync.domain.runs.check_transition` (``Conflict`` otherwise)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        export_id: int,
        export_name: str,
        connection_id: int | None,
        actor: str,
        now: datetime,
        dry_run: bool = False,
        trigger: str = "manual",
        status: RunStatus = RunStatus.QUEUED,
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
        due_at: datetime | None = None,
        kind: str = "sync",
    ) -> RunRecord:
        """A new run (``kind``: sync, verify or repair); with ``status=PROCESSING`` it starts
        at once, held by ``lease_owner``. A Queued run given a ``lease_owner`` is held (by the
        scheduler, :data:`HOLD_PREFIX`) until ``lease_expires_at``."""
        processing = status is RunStatus.PROCESSING
        held = lease_owner is not None
        row = Run(
            export_id=export_id,
            export_name=export_name,
            connection_id=connection_id,
            status=status.value,
            trigger=trigger,
            kind=kind,
            actor=actor,
            dry_run=dry_run,
            due_at=due_at,
            queued_at=now,
            started_at=now if processing else None,
            ended_at=None,
            counts=json.dumps(RunCounts().to_dict()),
            items_total=0,
            items_done=0,
            warnings="[]",
            cancel_requested=False,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at if held else None,
            attempts=1 if processing else 0,
        )
        self.session.add(row)
        self.session.flush()
        return record_of(row)

    def get(self, run_id: int) -> RunRecord:
        return record_of(self._row(run_id))

    def list(
        self, *, export_id: int | None = None, limit: int = 50, offset: int = 0
    ) -> builtins.list[RunRecord]:
        """Runs newest first, optionally of one export, a page at a time: one query, read as
        rows of columns (not ORM objects: a 500-run list spent a third of its time building
        them; still flushed first, as an ORM query is)."""
        query = select(*_RUN_COLUMNS).order_by(Run.id.desc()).limit(limit).offset(offset)
        if export_id is not None:
            query = query.where(Run.export_id == export_id)
        return [record_of(row) for row in self.session.execute(query)]

    def processing_run(self, export_id: int, *, kind: str = "sync") -> RunRecord | None:
        """The export's (real, not dry) run of ``kind`` in Processing, if any: the one a new
        run resumes."""
        query = (
            select(Run)
            .where(
                Run.export_id == export_id,
                Run.status == RunStatus.PROCESSING.value,
                Run.dry_run.is_(False),
                Run.kind == kind,
            )
            .order_by(Run.id.desc())
            .limit(1)
        )
        row = self.session.scalars(query).first()
        return None if row is None else record_of(row)

    def queued_run(self, export_id: int, *, dry_run: bool, kind: str = "sync") -> RunRecord | None:
        """The export's oldest Queued run (of that kind), if any."""
        query = (
            select(Run)
            .where(
                Run.export_id == export_id,
                Run.status == RunStatus.QUEUED.value,
                Run.dry_run.is_(dry_run),
                Run.kind == kind,
            )
            .order_by(Run.id)
            .limit(1)
        )
        row = self.session.scalars(query).first()
        return None if row is None else record_of(row)

    def claim_queued(self, run_id: int, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Start a Queued run under ``owner``'s lease (False if it is no longer queued, or is
        held by the scheduler: see :func:`claimable`)."""
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, claimable(now))
            .values(
                status=RunStatus.PROCESSING.value,
                started_at=now,
                lease_owner=owner,
                lease_expires_at=expires_at,
                attempts=Run.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def claim(
        self, run_id: int, *, previous_owner: str | None, owner: str, expires_at: datetime
    ) -> bool:
        """Take over the lease of a Processing run whose holder is ``previous_owner``
        (compare-and-set: False if someone else claimed it first). Counts one more attempt."""
        result = self.session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status == RunStatus.PROCESSING.value,
                (Run.lease_owner == previous_owner)
                if previous_owner is not None
                else Run.lease_owner.is_(None),
            )
            .values(lease_owner=owner, lease_expires_at=expires_at, attempts=Run.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def heartbeat(self, run_id: int, *, owner: str, expires_at: datetime) -> bool:
        """Extend the lease of a Processing run held by ``owner``; False if it is not (any
        more) theirs, e.g. another process resumed it after the lease expired."""
        result = self.session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status == RunStatus.PROCESSING.value,
                Run.lease_owner == owner,
            )
            .values(lease_expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def save_progress(
        self,
        run_id: int,
        *,
        owner: str,
        expires_at: datetime,
        counts: RunCounts,
        items_done: int,
        items_total: int,
    ) -> tuple[bool, bool]:
        """Save progress and extend the lease in one statement, if ``owner`` still holds the
        run. Returns ``(held, cancel_requested)``; a removed export counts as a cancel.

        Plain driver SQL, not the ORM's: a run saves its progress with every commit (over
        1,000 times in a 100k first run), and the ORM's update and select cost about a
        millisecond of the run's database thread each time."""
        self.session.flush()  # as the ORM's statements would (autoflush)
        stamp = bind_value(self.session, _LEASE_EXPIRES, expires_at)
        result = execute(
            self.session, _SAVE_PROGRESS, json.dumps(counts.to_dict()), items_done, items_total,
            stamp, run_id, RunStatus.PROCESSING.value, owner,
        )  # fmt: skip
        if getattr(result, "rowcount", 0) != 1:
            return False, True
        return True, self.is_cancel_requested(run_id)

    def set_plan(self, run_id: int, plan: dict[str, Any]) -> None:
        row = self._row(run_id)
        row.plan = json.dumps(plan, default=str)
        self.session.flush()

    def finish(
        self,
        run_id: int,
        status: RunStatus,
        *,
        now: datetime,
        message: str | None,
        warnings: Iterable[str] = (),
        counts: RunCounts | None = None,
        owner: str | None = None,
        expect: RunStatus | None = None,
        items_done: int | None = None,
    ) -> RunRecord:
        """End the run (a final status); the lease is released. With ``owner`` (the engine),
        a Processing run another process holds now is left to it (``Conflict``). With
        ``expect``, the run is ended only if it still has that status (``Conflict`` otherwise):
        the write is a compare-and-set, so a run another process moved meanwhile is kept."""
        row = self._row(run_id)
        if expect is not None and row.status != expect.value:
            raise Conflict(f"run {run_id} is {RunStatus(row.status).label} now, not {expect.label}")
        if (
            owner is not None
            and row.status == RunStatus.PROCESSING.value
            and row.lease_owner != owner
        ):
            raise Conflict(f"run {run_id} is held by another process now; it carries the run on")
        seen = expect.value if expect is not None else row.status
        check_transition(RunStatus(seen), status, run_id)
        if not status.is_final:
            raise Conflict(f"run {run_id}: {status.label} is not a final status")
        values: dict[str, Any] = {
            "status": status.value,
            "ended_at": now,
            "started_at": row.started_at or now,
            "message": message,
            "warnings": json.dumps(list(warnings)),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if counts is not None:
            values["counts"] = json.dumps(counts.to_dict())
        if items_done is not None:  # with the counts, so the progress agrees with them
            values["items_done"] = items_done
        # Compare-and-set on the status read above: another process (a worker claiming a queued
        # run, the scheduler releasing a held one) may have moved the run meanwhile.
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == seen)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self.session.expire(row)
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            now_status = RunStatus(self._row(run_id).status)
            raise Conflict(
                f"run {run_id} changed to {now_status.label} meanwhile; it was not ended here"
            )
        return record_of(self._row(run_id))

    def request_cancel(self, run_id: int, *, now: datetime) -> RunRecord:
        """Ask a Processing run to stop after its batch in flight; a Queued run is Canceled at
        once. ``Conflict`` if the run already ended."""
        row = self._row(run_id)
        status = RunStatus(row.status)
        if status is RunStatus.QUEUED:
            try:
                return self.finish(
                    run_id,
                    RunStatus.CANCELED,
                    now=now,
                    message="canceled before start",
                    expect=RunStatus.QUEUED,
                )
            except Conflict:  # a worker claimed it meanwhile: ask it to stop instead
                row = self._row(run_id)
                status = RunStatus(row.status)
        if status.is_final:
            raise Conflict(f"run {run_id} already ended ({status.label}); nothing to cancel")
        row.cancel_requested = True
        self.session.flush()
        return record_of(row)

    def is_cancel_requested(self, run_id: int) -> bool:
        """True when a cancel was asked for, or the run's export was removed (P2). (Driver SQL:
        asked with every progress save.)"""
        self.session.flush()
        rows = list(select_rows(self.session, _CANCEL_OR_GONE, run_id))
        return not rows or bool(rows[0][0]) or rows[0][1] is None

    # -- rejects ---------------------------------------------------------------------------

    def add_rejects(self, run_id: int, rejects: Iterable[RejectRecord]) -> int:
        """Record what the run set aside (through the driver: a run with a few thousand invalid
        emails records them all on every run, 5x faster than through the ORM's bulk insert)."""
        rows = [(run_id, r.kind, r.profile_id, r.email, r.reason) for r in rejects]
        execute_many(self.session, _ADD_REJECT, rows)
        return len(rows)

    def clear_rejects(self, run_id: int) -> None:
        """Forget what a run set aside (a resumed run finds it all again)."""
        self.session.execute(delete(RunReject).where(RunReject.run_id == run_id))

    def rejects(
        self, run_id: int, *, limit: int | None = None, offset: int = 0
    ) -> Iterator[RejectRecord]:
        """The run's rejects in the order they were recorded (``limit`` of them from
        ``offset``, when given: a page read by the database, not skipped over here)."""
        self._row(run_id)
        query = (
            select(RunReject.kind, RunReject.profile_id, RunReject.email, RunReject.reason)
            .where(RunReject.run_id == run_id)
            .order_by(RunReject.id)
            .execution_options(yield_per=1000)
        )
        if limit is not None:
            query = query.limit(limit).offset(offset)
        for kind, profile_id, email, reason in self.session.execute(query):
            yield RejectRecord(kind, profile_id, email, reason)

    def count_rejects(self, run_id: int) -> dict[str, int]:
        query = (
            select(RunReject.kind, func.count())
            .where(RunReject.run_id == run_id)
            .group_by(RunReject.kind)
        )
        return {str(kind): int(n) for kind, n in self.session.execute(query)}

    def reject_counts(self, run_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        """Rejects by kind of each of these runs, in one query (runs without any are absent)."""
        ids = builtins.list(set(run_ids))
        if not ids:
            return {}
        query = (
            select(RunReject.run_id, RunReject.kind, func.count())
            .where(RunReject.run_id.in_(ids))
            .group_by(RunReject.run_id, RunReject.kind)
        )
        result: dict[int, dict[str, int]] = {}
        for run_id, kind, n in self.session.execute(query):
            result.setdefault(int(run_id), {})[str(kind)] = int(n)
        return result

    def _row(self, run_id: int) -> Run:
        row = self.session.get(Run, run_id)
        if row is None:
            raise NotFound(f"no run with id {run_id}; see `segsync runs list`")
        return row
