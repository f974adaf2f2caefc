"""The run engine's plan stage for an undo run (docs/exports.md "Undo a run"): instead of
reading the segments, :func:`undo_plan` reads the change record of the run being undone and
plans what reverses it (:func:`segsync.domain.undo.build_undo_plan`). The rest of the pipeline
— the hold, send, checkpoint, remove, finish — is the one every run goes through, so an undo
has a plan, a dry run, the hold rule, its own change record and its audit entry.

It refuses (``Conflict``, the run ends Failure saying why) when the change record is gone, or
when a later run changed any of the same people (other than this undo's own earlier
attempts). Erased people are never sent again: they are left out, and the run says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segsync.destinations.registry import capabilities
from segsync.domain.emails import email_digest
from segsync.domain.plan import SyncPlan
from segsync.domain.sync_state import SyncStateView
from segsync.domain.undo import Change, build_undo_plan
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.sync.store import RunStore
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.run_changes import RunChangeRepository
from segsync.storage.repositories.run_undos import UNDO_KIND, RunUndoRepository
from segsync.storage.repositories.runs import RunRecord

__all__ = ["UNDO_KIND", "pruned_message", "touched_message", "undo_plan"]

SHOWN = 5


@dataclass
class _Record:
    changes: list[Change] = field(default_factory=list)
    current: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    erased: int = 0


def pruned_message(run_id: int, keep: int) -> str:
    return (
        f"run {run_id} cannot be undone: its change record is gone (segsync keeps it for the "
        f"last {keep} runs of each export, SEGSYNC_CHANGE_LOG_RUNS)"
    )


def touched_message(run_id: int, touched: set[str]) -> str:
    shown = ", ".join(sorted(touched)[:SHOWN])
    more = f" and {len(touched) - SHOWN:,} more" if len(touched) > SHOWN else ""
    return (
        f"run {run_id} cannot be undone: a later run changed {len(touched):,} of the same "
        f"people since ({shown}{more}); undo the later runs first, newest first"
    )


def _read(ctx: ServiceContext, run: RunRecord, export_id: int) -> _Record:
    undone = run.undo_of
    assert undone is not None
    with ctx.db.session() as session:
        repo = RunChangeRepository(session)
        if not repo.has_run(undone):
            raise Conflict(pruned_message(undone, ctx.settings.change_log_runs))
        suppressed = ErasureRepository(session).suppressed_digests()
        record = _Record()
        for row in repo.iter_run(undone):
            if suppressed and email_digest(row.email) in suppressed:
                record.erased += 1
                continue
            segment = None if row.segment_id is None else str(row.segment_id)
            record.changes.append(
                Change(row.action, row.email, segment, row.fields, row.previous, row.profile_id)
            )
        emails = {c.email for c in record.changes if c.action != "refused"}
        touched = repo.touched_after(export_id, undone, emails, exclude_run=run.id)
        if touched:
            raise Conflict(touched_message(undone, touched))
        added_back = {c.email for c in record.changes if c.action == "removed"}
        record.current = RunUndoRepository(session).payloads(export_id, added_back)
    return record


async def undo_plan(
    store: RunStore,
    run: RunRecord,
    target: RunTarget,
    state: SyncStateView,
    warnings: list[str],
) -> SyncPlan:
    """The plan that reverses run ``run.undo_of``, against ``state`` (warnings added)."""
    record = await store.call(_read, store.ctx, run, target.export_id)
    undo = build_undo_plan(
        record.changes,
        state,
        segments=[s.key for s in target.segments],
        current=record.current,
        max_batch=capabilities(target.connection_type).max_batch_size,
    )
    if record.erased:
        warnings.append(
            f"left out: {record.erased:,} change(s) of people erased with `segsync forget` "
            "since; they are never sent again"
        )
    if undo.other_lists:
        warnings.append(
            f"left out: {undo.other_lists:,} change(s) on lists of segments no longer in the export"
        )
    if undo.unknown_previous:
        warnings.append(
            f"left as they are: {len(undo.unknown_previous):,} contact(s) whose values before "
            f"run {run.undo_of} are unknown"
        )
    return undo.plan
