"""Undo a run (docs/exports.md "Undo a run"): :func:`queue_undo` checks that run ``ID`` can be
undone and queues an undo run (kind ``undo``) — a run like any other, executed by a worker or
followed by ``runs undo``: it plans from the change record (:mod:`segsync.services.sync.undo`),
may be a dry run, is judged by the blast-radius hold, and is audited.

Whoever may run the export may undo its runs. Refused, with the reason, when the run sent
nothing (a dry run, a held or dismissed run, a verify), has not ended, is already undone or
being undone, its change record is gone, or a later run changed the same people since.
"""

from __future__ import annotations

from segsync.domain.permissions import Action, require
from segsync.domain.runs import RunStatus
from segsync.errors import Conflict, InputError
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.privacy import audit
from segsync.services.sync.undo import UNDO_KIND, pruned_message, touched_message
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.run_changes import RunChangeRepository
from segsync.storage.repositories.run_undos import RunUndoRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

__all__ = ["queue_undo"]

UNDOABLE = ("sync", UNDO_KIND)


def queue_undo(ctx: ServiceContext, run_id: int, *, dry_run: bool = False) -> RunRecord:
    """Queue the undo of run ``run_id`` (a dry run: the plan only) and return it."""
    now = ctx.now()
    with ctx.db.session() as session:
        runs = RunRepository(session)
        run = runs.get(run_id)
        if run.export_id is None:
            raise Conflict(f"run {run_id} cannot be undone: its export was removed")
        export = ExportRepository(session).get(run.export_id)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(export))
        _check(run)
        if run.connection_id != export.connection_id:
            raise Conflict(
                f"run {run_id} cannot be undone: the export moved to another connection since"
            )
        changes = RunChangeRepository(session)
        if not changes.has_run(run_id):
            c = run.counts
            if c.added + c.updated + c.removed == 0:
                raise InputError(
                    f"run {run_id} changed nothing in the destination: nothing to undo"
                )
            raise Conflict(pruned_message(run_id, ctx.settings.change_log_runs))
        undos = RunUndoRepository(session)
        if not dry_run:
            pending = undos.open_undo(run_id)
            if pending is not None:
                raise Conflict(
                    f"run {pending.id} is already undoing run {run_id} "
                    f"({pending.status.label}); see `segsync runs show {pending.id}`"
                )
            done = [u for u in undos.undos_of(run_id) if u.status is RunStatus.SUCCESSFUL]
            if done:
                raise Conflict(f"run {run_id} was already undone by run {done[-1].id}")
        emails = {c.email for c in changes.iter_run(run_id) if c.action != "refused"}
        touched = changes.touched_after(run.export_id, run_id, emails)
        if touched:
            raise Conflict(touched_message(run_id, touched))
        undo = runs.create(
            export_id=export.id,
            export_name=export.name,
            connection_id=export.connection_id,
            actor=ctx.actor.email,
            now=now,
            dry_run=dry_run,
            trigger="undo",
            kind=UNDO_KIND,
        )
        undos.mark_undo(undo.id, run_id)
        if not dry_run:
            audit.record(
                session,
                at=now,
                actor=ctx.actor,
                action="export.run_undo_queued",
                target_type="export",
                target=export.name,
                summary=f"queued run {undo.id} to undo run {run_id} of export {export.name!r}",
                details={"run_id": undo.id, "undo_of": run_id},
            )
        return runs.get(undo.id)


def _check(run: RunRecord) -> None:
    if run.dry_run:
        raise InputError(
            f"run {run.id} was a dry run: it sent nothing, so there is nothing to undo"
        )
    if run.kind not in UNDOABLE:
        raise InputError(f"run {run.id} is a {run.kind}: only export runs (and undos) are undone")
    if run.status is RunStatus.HELD:
        raise InputError(
            f"run {run.id} is Held: it sent nothing; dismiss it with `segsync runs dismiss "
            f"{run.id}`"
        )
    if not run.status.is_final:
        raise Conflict(
            f"run {run.id} is {run.status.label}: wait for it to end (or cancel it) first"
        )
