"""Approve or dismiss a run the blast-radius hold stopped (docs/exports.md "Blast-radius
hold"). Whoever may run the export may do either (``run_export``).

* :func:`approve_run` records who approved which plan (its fingerprint) and puts the run back
  in the queue; a worker (or ``runs approve`` itself, with no worker alive) executes it. The
  run plans again: the same plan is sent as it was shown; a plan that changed with the data
  is judged afresh, and the run says so (:mod:`segsync.services.sync.hold`).
* :func:`dismiss_run` ends the run Canceled: nothing is sent.

Both write an audit event in the same transaction as the run's change.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from segsync.domain.permissions import Action, require
from segsync.domain.runs import RunStatus
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.privacy import audit
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.run_holds import RunHoldRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

__all__ = ["approve_run", "dismiss_run"]


@dataclass(frozen=True)
class _Held:
    run: RunRecord
    export: ExportRecord


def _held(ctx: ServiceContext, session: Session, run_id: int, verb: str) -> _Held:
    run = RunRepository(session).get(run_id)
    if run.export_id is None:
        raise Conflict(f"run {run_id} cannot be {verb}: its export was removed")
    export = ExportRepository(session).get(run.export_id)
    require(ctx.actor, Action.RUN_EXPORT, export_ref(export))
    if run.status is not RunStatus.HELD:
        raise Conflict(
            f"run {run_id} is {run.status.label}, not Held: only a held run can be {verb}"
        )
    return _Held(run, export)


def approve_run(ctx: ServiceContext, run_id: int) -> RunRecord:
    """Approve a Held run: it is queued again and sends the plan it showed (or plans again,
    saying so, when the data changed). ``Conflict`` unless the run is Held."""
    now = ctx.now()
    with ctx.db.session() as session:
        held = _held(ctx, session, run_id, "approved")
        hold = dict(held.run.hold or {})
        fingerprint = hold.get("fingerprint")
        if not fingerprint:
            raise Conflict(f"run {run_id} has no plan on record to approve; run the export again")
        hold["approved"] = {
            "by": ctx.actor.email,
            "at": now.isoformat(),
            "fingerprint": fingerprint,
        }
        record = RunHoldRepository(session).requeue(
            run_id,
            hold=hold,
            message=f"approved by {ctx.actor.email}: queued to send the plan it showed",
            now=now,
        )
        audit.record(
            session,
            at=now,
            actor=ctx.actor,
            action="export.run_approved",
            target_type="export",
            target=held.export.name,
            summary=(
                f"approved held run {run_id} of export {held.export.name!r}: "
                + "; ".join(hold.get("reasons", []))
            ),
            details={"run_id": run_id, "fingerprint": fingerprint, "lists": hold.get("lists")},
        )
    return record


def dismiss_run(ctx: ServiceContext, run_id: int) -> RunRecord:
    """Dismiss a Held run: it ends Canceled and sends nothing. ``Conflict`` unless Held."""
    now = ctx.now()
    with ctx.db.session() as session:
        held = _held(ctx, session, run_id, "dismissed")
        record = RunRepository(session).finish(
            run_id,
            RunStatus.CANCELED,
            now=now,
            message=f"dismissed by {ctx.actor.email}: nothing was sent",
            warnings=held.run.warnings,
            expect=RunStatus.HELD,
        )
        audit.record(
            session,
            at=now,
            actor=ctx.actor,
            action="export.run_dismissed",
            target_type="export",
            target=held.export.name,
            summary=f"dismissed held run {run_id} of export {held.export.name!r}: nothing sent",
            details={"run_id": run_id, "reasons": (held.run.hold or {}).get("reasons", [])},
        )
    return record
