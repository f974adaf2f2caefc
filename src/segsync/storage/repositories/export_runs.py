"""An export's runs as the export use cases need them: the latest run and the "Refreshed" time
(the export list), the runs still queued or processing (a move to another connection waits for
them), the connection the sync state describes, and canceling what is queued."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from segsync.domain.runs import RunStatus
from segsync.storage.models.runs import Run


@dataclass(frozen=True)
class RunOverview:
    """An export's latest run (dry runs left out) and its "Refreshed" time: when its latest
    successful run ended."""

    latest_run_id: int | None = None
    latest_status: RunStatus | None = None
    refreshed_at: datetime | None = None


@dataclass(frozen=True)
class CanceledRuns:
    """What :meth:`ExportRunsRepository.cancel_runs` did: ids of queued runs now canceled, and of
    processing runs asked to stop after their batch in flight."""

    canceled: list[int]
    stop_requested: list[int]


class ExportRunsRepository:
    """Reads and cancels the runs of exports (run history itself is in :mod:`.runs`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def run_overview(self, export_ids: Iterable[int]) -> dict[int, RunOverview]:
        """Per export: its latest run that is not a dry run (nor a verify), and when its latest
        successful run ended. Exports without runs are absent."""
        ids = list(set(export_ids))
        if not ids:
            return {}
        real = (Run.export_id.in_(ids), Run.dry_run.is_(False), Run.kind == "sync")
        latest_ids = select(func.max(Run.id)).where(*real).group_by(Run.export_id).scalar_subquery()
        latest = {
            row.export_id: (row.id, RunStatus(row.status))
            for row in self.session.execute(
                select(Run.export_id, Run.id, Run.status).where(Run.id.in_(latest_ids))
            )
        }
        refreshed = {
            export_id: ended
            for export_id, ended in self.session.execute(
                select(Run.export_id, func.max(Run.ended_at))
                .where(*real, Run.status == RunStatus.SUCCESSFUL.value)
                .group_by(Run.export_id)
            )
        }
        result: dict[int, RunOverview] = {}
        for export_id in ids:
            run_id, status = latest.get(export_id, (None, None))
            ended = refreshed.get(export_id)
            if run_id is None and ended is None:
                continue
            result[export_id] = RunOverview(run_id, status, _aware(ended))
        return result

    def active_runs(self, export_id: int) -> list[tuple[int, RunStatus]]:
        """The export's queued and processing runs: ``(run id, status)``, oldest first."""
        query = (
            select(Run.id, Run.status)
            .where(
                Run.export_id == export_id,
                Run.status.in_([RunStatus.QUEUED.value, RunStatus.PROCESSING.value]),
            )
            .order_by(Run.id)
        )
        return [(run_id, RunStatus(status)) for run_id, status in self.session.execute(query)]

    def state_connection_id(self, export_id: int) -> int | None:
        """The connection the export's latest started (non-dry) run sent to: the destination its
        sync state describes. ``None`` if no run has started."""
        query = (
            select(Run.connection_id)
            .where(
                Run.export_id == export_id,
                Run.dry_run.is_(False),
                Run.started_at.is_not(None),
            )
            .order_by(Run.id.desc())
            .limit(1)
        )
        return self.session.scalar(query)

    def cancel_runs(self, export_id: int, *, now: datetime, reason: str) -> CanceledRuns:
        """Cancel the export's queued runs (status Canceled, ``reason`` as message) and ask its
        processing runs to stop after their batch in flight (``cancel_requested``; P2)."""
        active = self.active_runs(export_id)
        queued = [run_id for run_id, status in active if status is RunStatus.QUEUED]
        processing = [run_id for run_id, status in active if status is RunStatus.PROCESSING]
        if queued:
            self.session.execute(
                update(Run)
                .where(Run.id.in_(queued), Run.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.CANCELED.value, ended_at=now, message=reason)
            )
        if processing:
            self.session.execute(
                update(Run).where(Run.id.in_(processing)).values(cancel_requested=True)
            )
        return CanceledRuns(canceled=queued, stop_requested=processing)


def _aware(moment: datetime | None) -> datetime | None:
    # Aggregates (max) bypass the column type on SQLite, so the value may come back naive text.
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromisoformat(str(moment))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
