"""Read models of runs for the edges: list and show runs, a run's record and duration.

Kept apart from :mod:`segsync.services.runs.manage` (which starts and follows runs, so imports
the run engine) so that ``segsync runs list`` and ``runs show`` load only the metadata DB.
"""

from __future__ import annotations

from typing import Any

from segsync.domain.permissions import Action, require
from segsync.domain.runs import duration_seconds, run_record
from segsync.services.context import ServiceContext
from segsync.storage.repositories.runs import RunRecord, RunRepository

__all__ = ["duration", "get_run", "list_runs", "run_json"]


def list_runs(
    ctx: ServiceContext, *, export: str | None = None, limit: int = 50
) -> list[RunRecord]:
    """Runs newest first, optionally of one export (by name)."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        export_id = None
        if export is not None:
            # Imported here: the plain list (`segsync runs list`) reads the runs table only.
            from segsync.storage.repositories.exports import ExportRepository

            export_id = ExportRepository(session).get_by_name(export).id
        return RunRepository(session).list(export_id=export_id, limit=limit)


def get_run(ctx: ServiceContext, run_id: int) -> RunRecord:
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return RunRepository(session).get(run_id)


def run_json(run: RunRecord) -> dict[str, Any]:
    """The run record of docs/requirements.md (``exports run --json``)."""
    return run_record(run.id, run.status, run.counts, run.started_at, run.ended_at, run.message)


def duration(run: RunRecord) -> float | None:
    """Seconds the run took (``None`` while it runs)."""
    return duration_seconds(run.started_at, run.ended_at)
