"""Verify an export (docs/exports.md "Verify"): queue a verify (or a repair) run and follow it.

A verify reads the export's lists back from the destination and reports the drift per list;
a repair also fixes it. Both are runs (kind ``verify`` or ``repair``), queued like any run and
executed by a worker — or, with no worker alive, by the caller (``exports verify``). Whoever
may run the export may verify it and repair it (the same permission, checked here).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segsync.domain.drift import VerifyEstimate, estimate
from segsync.domain.permissions import Action, require
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.runs.queue import lease_lapsed
from segsync.services.runs.worker import FOLLOW_POLL_SECONDS, follow_run
from segsync.services.sync.engine import ConfigTuner
from segsync.services.sync.target import load_target
from segsync.services.sync.verify import REPAIR, VERIFY, expected_members
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

__all__ = ["QueuedVerify", "enqueue_verify", "verify_exit_code", "verify_export", "verify_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedVerify:
    """A verify run to follow, and what it is expected to cost (printed before it starts)."""

    run: RunRecord
    created: bool
    estimate: VerifyEstimate


def enqueue_verify(
    ctx: ServiceContext, export: int | str, *, repair: bool = False, trigger: str = "manual"
) -> QueuedVerify:
    """Queue a verify (or, with ``repair``, a repair) of the export, by id or name, acting as
    ``ctx.actor``, who must be allowed to run it. A queued verify of the same kind is reused, as
    is one whose process died. Raises ``NotFound``, ``PermissionDenied``, ``InputError``
    (detached export, no segments) and ``Conflict`` (one is in progress)."""
    kind = REPAIR if repair else VERIFY
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export) if isinstance(export, int) else repo.get_by_name(export)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(record))
        target = load_target(session, record)
        runs = RunRepository(session)
        run: RunRecord | None = runs.processing_run(record.id, kind=kind)
        if run is not None and not lease_lapsed(run.lease_owner, run.lease_expires_at, ctx.now()):
            raise Conflict(
                f"a {kind} of this export is already in progress (run {run.id}); follow it "
                f"with `segsync runs show {run.id}`"
            )
        created = False
        run = run or runs.queued_run(record.id, dry_run=False, kind=kind)
        if run is None:
            created = True
            run = runs.create(
                export_id=record.id,
                export_name=record.name,
                connection_id=record.connection_id,
                actor=ctx.actor.email,
                now=ctx.now(),
                trigger=trigger,
                kind=kind,
            )
    keys = [source.key for source in target.segments]
    cost = estimate(expected_members(ctx, record.id, keys))
    log.info("%s run %s of export %r queued", kind, run.id, record.name)
    return QueuedVerify(run, created, cost)


def verify_export(
    ctx: ServiceContext,
    export: int | str,
    *,
    repair: bool = False,
    on_estimate: Callable[[QueuedVerify], None] | None = None,
    tune: ConfigTuner | None = None,
    poll_interval: float = FOLLOW_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Queue a verify (or repair) and follow it to its end; ``on_estimate`` is told its
    expected cost before it starts. With no worker alive it runs in this process."""
    queued = enqueue_verify(ctx, export, repair=repair)
    if on_estimate is not None:
        on_estimate(queued)
    return follow_run(ctx, queued.run.id, tune=tune, poll_interval=poll_interval, sleep=sleep)


def verify_report(run: RunRecord) -> dict[str, Any]:
    """The machine-readable report of a verify or repair run (``exports verify --json``)."""
    plan = run.plan or {}
    return {
        "run": run.id,
        "export": run.export_name,
        "kind": run.kind,
        "status": run.status.value,
        "message": run.message,
        "warnings": run.warnings,
        "estimate": plan.get("estimate"),
        "requests": run.counts.requests,
        "drift": plan.get("drift"),
        "totals": plan.get("totals"),
        "repaired": plan.get("repaired"),
        "lists": plan.get("lists", []),
        "exit_code": verify_exit_code(run),
    }


def verify_exit_code(run: RunRecord) -> int:
    """0 when no drift was found (or a repair fixed it all), 1 when drift remains or the
    verify failed."""
    if run.status.value != "successful":
        return 1
    plan = run.plan or {}
    drift = int(plan.get("drift") or 0)
    if not drift:
        return 0
    repaired = plan.get("repaired")
    if not isinstance(repaired, dict):
        return 1
    return 1 if int(repaired.get("rejected") or 0) else 0
