"""The finish stage of a run: its final status, counts and warnings, the audit event of what
left the system (P3) — one transaction — and then the notification of how it ended (T4)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from segsync.domain.plan import list_title
from segsync.domain.runs import RunCounts, RunStatus, duration_seconds
from segsync.services.context import ServiceContext
from segsync.services.notifications.manage import on_run_finished
from segsync.services.privacy import audit
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.runs import RunRecord, RunRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEnd:
    """How one run ended: what :func:`record_run_end` writes."""

    run: RunRecord
    target: RunTarget
    status: RunStatus
    message: str
    counts: RunCounts
    warnings: list[str] = field(default_factory=list)
    sent_anything: bool = False
    items_done: int | None = None
    """The items the counts stand for (the last saved progress may be older: a commit that
    failed, e.g. because the export was removed, counted its batch but saved nothing)."""


def record_run_end(session: Session, end: RunEnd, *, owner: str, now: datetime) -> RunRecord:
    """End the run held by ``owner`` and, for a real run, write the audit event of what was
    sent where. ``Conflict`` if another process holds the run now, or it already ended."""
    run, target, counts = end.run, end.target, end.counts
    record = RunRepository(session).finish(
        run.id,
        end.status,
        now=now,
        message=end.message,
        warnings=end.warnings,
        counts=counts,
        owner=owner,
        items_done=end.items_done,
    )
    if not run.dry_run:
        fields = ["Email", *(spec.spec for _, _, spec in target.mapping.targets())]
        lists = [list_title(s.name, target.list_prefix) for s in target.segments]
        audit.record(
            session,
            at=now,
            actor=run.actor,
            action="export.run",
            target_type="export",
            target=target.export_name,
            summary=(
                f"run {run.id} of export {target.export_name!r} ended {end.status.label}: "
                f"{counts.added:,} added, {counts.updated:,} updated, {counts.removed:,} "
                f"removed from lists, sent to {target.connection_type} connection "
                f"{target.connection_name!r}"
            ),
            details={
                "run_id": run.id,
                "status": end.status.value,
                "destination": target.connection_type,
                "connection": target.connection_name,
                "connection_id": target.connection_id,
                "lists": lists,
                "fields": fields,
                "counts": counts.to_dict(),
                "duration_seconds": duration_seconds(record.started_at, record.ended_at),
                "sent_anything": end.sent_anything,
            },
        )
    log.info(
        "run %s of export %r ended %s: %s",
        run.id,
        target.export_name,
        end.status.label,
        end.message,
    )
    return record


def notify_run_end(ctx: ServiceContext, run: RunRecord) -> None:
    """Tell :func:`segsync.services.notifications.manage.on_run_finished` that a real run
    ended (T4). Every path that ends a run calls this once (the engine, and a worker that could
    not start a run). Never raises: a failure here is logged and the run's outcome stands."""
    if run.dry_run or not run.status.is_final or run.export_id is None:
        return
    try:
        on_run_finished(
            ctx,
            export_id=run.export_id,
            export_name=run.export_name,
            run_id=run.id,
            status=run.status.value,
            message=run.message,
        )
    except Exception:
        log.exception("could not notify the end of run %s", run.id)
