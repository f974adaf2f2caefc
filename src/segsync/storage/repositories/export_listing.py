"""Set-based reads over all exports and their runs, for the export list, the status page and
an export's run history: one query each, whatever the number of exports and runs.

:class:`ExportRepository` loads full export records; this module loads only the few columns
that filtering, sorting and status summaries need, so pages can work over thousands of exports
and load full records for the rows they show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from segsync.domain.permissions import ConnectionRef, ExportRef
from segsync.domain.runs import RunStatus
from segsync.storage.models.connections import Connection
from segsync.storage.models.exports import Export, ExportSegment
from segsync.storage.models.runs import Run
from segsync.storage.models.segments import Segment, SegmentRefresh


@dataclass(frozen=True)
class ExportListing:
    """What the export list filters and sorts on: name, connection name and type (``None``
    when detached), the latest real run's status and when the latest successful real run
    ended ("Refreshed")."""

    id: int
    name: str
    connection_name: str | None
    connection_type: str | None
    latest_status: RunStatus | None
    refreshed_at: datetime | None
    connection_id: int | None = None
    shared_with_contributors: bool = False
    schedule: str = "{}"
    """The stored schedule, as JSON text."""

    @property
    def ref(self) -> ExportRef:
        """What the permission policy needs to know about the export."""
        connection = None
        if self.connection_id is not None:
            connection = ConnectionRef(
                self.connection_id, self.shared_with_contributors, self.connection_name or ""
            )
        return ExportRef(id=self.id, connection=connection, name=self.name)


@dataclass(frozen=True)
class ExportBrief:
    """What the status page needs of an export: its name, connection and schedule."""

    id: int
    name: str
    connection_id: int | None
    connection_name: str | None
    schedule: dict[str, Any]


@dataclass(frozen=True)
class LatestRun:
    """An export's latest real (not dry) run, as the status page shows it."""

    export_id: int
    run_id: int
    status: RunStatus
    queued_at: datetime
    ended_at: datetime | None
    message: str | None


@dataclass(frozen=True)
class LatestRefresh:
    """A segment's latest refresh: when it ended and its error, if it failed."""

    segment_id: int
    ended_at: datetime | None
    error: str | None


def latest_run_ids() -> Select[int | None, int]:
    """``(export_id, run_id)`` of each export's latest real (not dry) run; verifies do not
    count."""
    return (
        select(Run.export_id, func.max(Run.id).label("run_id"))
        .where(Run.export_id.is_not(None), Run.dry_run.is_(False), Run.kind == "sync")
        .group_by(Run.export_id)
    )


def refreshed_ends() -> Select[int | None, datetime | None]:
    """``(export_id, ended_at)``: when each export's latest successful real run ended (verifies
    do not count)."""
    return (
        select(Run.export_id, func.max(Run.ended_at).label("ended_at"))
        .where(
            Run.export_id.is_not(None),
            Run.dry_run.is_(False),
            Run.kind == "sync",
            Run.status == RunStatus.SUCCESSFUL.value,
        )
        .group_by(Run.export_id)
    )


class ExportListingRepository:
    """The set-based reads; see the module docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def listing(self) -> list[ExportListing]:
        """Every export's :class:`ExportListing`, by name."""
        latest = latest_run_ids().subquery()
        run = aliased(Run)
        refreshed = refreshed_ends().subquery()
        query = (
            select(
                Export.id,
                Export.name,
                Connection.name,
                Connection.type,
                run.status,
                refreshed.c.ended_at,
                Connection.id,
                Connection.shared_with_contributors,
                Export.schedule,
            )
            .outerjoin(Connection, Connection.id == Export.connection_id)
            .outerjoin(latest, latest.c.export_id == Export.id)
            .outerjoin(run, run.id == latest.c.run_id)
            .outerjoin(refreshed, refreshed.c.export_id == Export.id)
            .order_by(Export.name)
        )
        return [
            ExportListing(
                id=export_id,
                name=name,
                connection_name=connection_name,
                connection_type=connection_type,
                latest_status=RunStatus(status) if status is not None else None,
                refreshed_at=aware(ended),
                connection_id=connection_id,
                shared_with_contributors=bool(shared),
                schedule=schedule,
            )
            for (
                export_id,
                name,
                connection_name,
                connection_type,
                status,
                ended,
                connection_id,
                shared,
                schedule,
            ) in self.session.execute(query)
        ]

    def segment_names(self, export_ids: Iterable[int]) -> dict[int, list[str]]:
        """The segment names of these exports, each in the order the user chose: one query."""
        ids = set(export_ids)
        names: dict[int, list[str]] = {export_id: [] for export_id in ids}
        if not ids:
            return names
        query = (
            select(ExportSegment.export_id, Segment.name)
            .join(Segment, Segment.id == ExportSegment.segment_id)
            .where(ExportSegment.export_id.in_(ids))
            .order_by(ExportSegment.export_id, ExportSegment.position)
        )
        for export_id, name in self.session.execute(query):
            names[export_id].append(name)
        return names

    def briefs(self) -> list[ExportBrief]:
        """Every export's :class:`ExportBrief`, by name: one query of five columns (no mapping,
        no segments), for pages over all exports."""
        query = (
            select(Export.id, Export.name, Export.connection_id, Connection.name, Export.schedule)
            .outerjoin(Connection, Connection.id == Export.connection_id)
            .order_by(Export.name)
        )
        return [
            ExportBrief(export_id, name, connection_id, connection_name, json.loads(schedule))
            for export_id, name, connection_id, connection_name, schedule in self.session.execute(
                query
            )
        ]

    def refreshed(self) -> dict[int, datetime]:
        """When each export's latest successful real run ended ("Refreshed"), by export id:
        one grouped query read from an index. Exports never refreshed are absent."""
        result: dict[int, datetime] = {}
        for export_id, ended in self.session.execute(refreshed_ends()):
            moment = aware(ended)
            if export_id is not None and moment is not None:
                result[export_id] = moment
        return result

    def latest_runs(self, statuses: Iterable[RunStatus] | None = None) -> dict[int, LatestRun]:
        """Every export's latest real run by export id (only those whose status is one of
        ``statuses``, when given). Exports without runs are absent."""
        latest = latest_run_ids().subquery()
        query = select(
            Run.export_id, Run.id, Run.status, Run.queued_at, Run.ended_at, Run.message
        ).join(latest, latest.c.run_id == Run.id)
        if statuses is not None:
            query = query.where(Run.status.in_([status.value for status in statuses]))
        result: dict[int, LatestRun] = {}
        for export_id, run_id, status, queued_at, ended_at, message in self.session.execute(query):
            if export_id is None:  # not possible: the subquery leaves out runs without export
                continue
            result[export_id] = LatestRun(
                export_id, run_id, RunStatus(status), queued_at, ended_at, message
            )
        return result

    def latest_refreshes(self) -> dict[int, LatestRefresh]:
        """Every segment's latest refresh by segment id. Segments never refreshed are absent."""
        newest_first = func.row_number().over(
            partition_by=SegmentRefresh.segment_id,
            order_by=(SegmentRefresh.started_at.desc(), SegmentRefresh.id.desc()),
        )
        ranked = select(
            SegmentRefresh.segment_id,
            SegmentRefresh.ended_at,
            SegmentRefresh.error,
            newest_first.label("rank"),
        ).subquery()
        query = select(ranked.c.segment_id, ranked.c.ended_at, ranked.c.error).where(
            ranked.c.rank == 1
        )
        return {
            segment_id: LatestRefresh(segment_id, aware(ended_at), error)
            for segment_id, ended_at, error in self.session.execute(query)
        }

    def export_refs(self, export_ids: Iterable[int] | None = None) -> list[ExportRef]:
        """Every export (or those with these ids) as the permission policy sees it: its id, name
        and connection, by name. One query, no full records."""
        query = (
            select(
                Export.id,
                Export.name,
                Connection.id,
                Connection.shared_with_contributors,
                Connection.name,
            )
            .outerjoin(Connection, Connection.id == Export.connection_id)
            .order_by(Export.name)
        )
        if export_ids is not None:
            query = query.where(Export.id.in_(set(export_ids)))
        return [
            ExportRef(
                id=export_id,
                name=name,
                connection=None
                if connection_id is None
                else ConnectionRef(connection_id, bool(shared), connection_name or ""),
            )
            for export_id, name, connection_id, shared, connection_name in self.session.execute(
                query
            )
        ]

    def count_runs(self, export_id: int) -> int:
        """How many runs (dry runs too) the export has."""
        query = select(func.count()).select_from(Run).where(Run.export_id == export_id)
        return int(self.session.scalar(query) or 0)


def aware(moment: datetime | str | None) -> datetime | None:
    """A UTC-aware datetime. Aggregates (``max``) bypass the column type on SQLite, so the value
    may come back as naive text."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromisoformat(str(moment))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
