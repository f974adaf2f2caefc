"""Detach, attach and remove exports (C7, E5, P2): where an export sends, and its end.

A detached export shows "No connection", keeps its settings and sync state, and never runs until
a connection is attached; attaching keeps the sync state when it describes that connection.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from segsync.domain.permissions import Action, require
from segsync.services.context import ServiceContext
from segsync.services.exports.manage import ExportChange, audit_export, check_move
from segsync.services.exports.validation import mapping_fits, resolve_connection
from segsync.services.exports.views import connection_ref, export_ref
from segsync.storage.repositories.export_runs import CanceledRuns, ExportRunsRepository
from segsync.storage.repositories.exports import ExportRecord, ExportRepository

__all__ = ["attach_export", "detach_export", "remove_export"]


def _cancel_runs(
    session: Session,
    ctx: ServiceContext,
    record: ExportRecord,
    verb: str,
    summary: str,
    *,
    reason: str,
) -> CanceledRuns:
    """Cancel the export's queued runs (``reason``), ask its processing runs to stop after
    their batch in flight, and audit the change (``export.<verb>``)."""
    canceled = ExportRunsRepository(session).cancel_runs(record.id, now=ctx.now(), reason=reason)
    details = {"canceled_runs": canceled.canceled, "stop_requested": canceled.stop_requested}
    audit_export(session, ctx, verb, record.name, summary, details)
    return canceled


def detach_export(ctx: ServiceContext, export_id: int) -> ExportChange:
    """Set the export to "No connection" (C7): it keeps its settings and sync state and never
    runs until a connection is attached. Its queued runs are canceled and a processing run
    stops after its batch in flight."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export_id)
        require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
        if record.connection_id is None:
            return ExportChange(record)
        canceled = _cancel_runs(
            session,
            ctx,
            record,
            "detached",
            f"detached export {record.name!r} from connection {record.connection_name!r}",
            reason="canceled: the export was detached from its connection",
        )
        updated = repo.detach(record.id, now=ctx.now())
    return ExportChange(
        updated, canceled_runs=canceled.canceled, stop_requested=canceled.stop_requested
    )


def attach_export(ctx: ServiceContext, export_id: int, connection_id: int) -> ExportChange:
    """Attach an export to the connection ``connection_id`` (C7), whose destination must take
    its data matching. The sync state is kept when it describes this connection (the one the
    export last ran on) and reset otherwise."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export_id)
        require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
        target = resolve_connection(ctx, repo, connection_id)
        require(ctx.actor, Action.USE_CONNECTION, connection_ref(target))
        if record.connection_id == target.id:
            return ExportChange(record)
        mapping_fits(record.mapping, target)
        reset = check_move(session, record, target.id)
        if reset:
            repo.reset_sync_state(record.id)
        updated = repo.attach(record.id, target.id, now=ctx.now())
        audit_export(
            session,
            ctx,
            "attached",
            record.name,
            f"attached export {record.name!r} to connection {target.name!r}",
            {"connection_name": target.name, "sync_state_reset": reset},
        )
    return ExportChange(updated, sync_state_reset=reset)


def remove_export(ctx: ServiceContext, export_id: int) -> ExportChange:
    """Remove an export with its sync state and lists (E5, P2); its run history stays. Queued
    runs are canceled; a processing run stops after its batch in flight. Asking for
    confirmation is the caller's job."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export_id)
        require(ctx.actor, Action.REMOVE_EXPORT, export_ref(record))
        canceled = _cancel_runs(
            session,
            ctx,
            record,
            "removed",
            f"removed export {record.name!r}",
            reason="canceled: the export was removed",
        )
        repo.delete(record.id)
    return ExportChange(
        record, canceled_runs=canceled.canceled, stop_requested=canceled.stop_requested
    )
