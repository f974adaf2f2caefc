"""Reading exports (E5, R4): the export list, a page of it, and what the permission policy
needs to know about an export (one export's details are in
:mod:`segsync.services.exports.details`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from segsync.domain.permissions import (
    Action,
    ConnectionRef,
    ExportRef,
    export_permission_label,
    require,
)
from segsync.domain.plan import RemovalPolicy
from segsync.domain.schedule import ExportSchedule, describe
from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.storage.repositories.export_listing import ExportListing, ExportListingRepository
from segsync.storage.repositories.export_runs import RunOverview
from segsync.storage.repositories.exports import (
    ConnectionSummary,
    ExportRecord,
)

NO_CONNECTION = "No connection"
SORT_COLUMNS = ("name", "connection", "status", "refreshed")
PAGE_SIZE = 50
"""Rows per page of the export list (:func:`page_exports`)."""
MAX_PAGE_SIZE = 1000


def export_ref(record: ExportRecord) -> ExportRef:
    """What the permission policy needs to know about ``record``."""
    connection = None
    if record.connection_id is not None:
        connection = ConnectionRef(
            id=record.connection_id,
            shared_with_contributors=record.shared_with_contributors,
            name=record.connection_name or "",
        )
    return ExportRef(id=record.id, connection=connection, name=record.name)


def connection_ref(summary: ConnectionSummary) -> ConnectionRef:
    return ConnectionRef(summary.id, summary.shared_with_contributors, summary.name)


def removal_label(value: str) -> str:
    """``mirror`` or ``add-only``, as users write it."""
    return RemovalPolicy(value).value.replace("_", "-")


@dataclass(frozen=True)
class ExportRow:
    """One row of the export list (E5, R4, X9). ``status`` is the latest run's status value
    (``None`` before the first run); ``refreshed_at`` when the latest successful run ended."""

    name: str
    connection: str
    connection_name: str | None
    connection_type: str | None
    segments: list[str]
    schedule: str
    status: str | None
    refreshed_at: datetime | None
    your_permissions: Literal["edit", "view"]
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON (as ``exports list --json`` prints it: without ``id``)."""
        # Field by field, not dataclasses.asdict: its deep copy was most of a 1,000-row list.
        return {
            "name": self.name,
            "connection": self.connection,
            "connection_name": self.connection_name,
            "connection_type": self.connection_type,
            "segments": list(self.segments),
            "schedule": self.schedule,
            "status": self.status,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "your_permissions": self.your_permissions,
        }


@dataclass(frozen=True)
class ExportPage:
    """One page of the export list: its ``rows``, how many exports match in all (``total``),
    the page number (from 1) and size."""

    rows: list[ExportRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def export_row(
    ctx: ServiceContext,
    record: ExportRecord,
    runs: RunOverview | None,
) -> ExportRow:
    return ExportRow(
        name=record.name,
        connection=record.connection_name or NO_CONNECTION,
        connection_name=record.connection_name,
        connection_type=record.connection_type,
        segments=list(record.segment_names),
        schedule=_describe(record.schedule),
        status=runs.latest_status.value if runs and runs.latest_status else None,
        refreshed_at=runs.refreshed_at if runs else None,
        your_permissions=export_permission_label(ctx.actor, export_ref(record)),
        id=record.id,
    )


def _describe(schedule: dict[str, Any]) -> str:
    return describe(ExportSchedule.from_dict(schedule))


def _describer() -> Callable[[str], str]:
    """The description of a stored schedule (JSON text), remembering each distinct one:
    exports often share one."""
    seen: dict[str, str] = {}

    def cached(schedule: str) -> str:
        if schedule not in seen:
            seen[schedule] = _describe(json.loads(schedule))
        return seen[schedule]

    return cached


def _sort_key(column: str) -> Callable[[ExportListing], Any]:
    keys: dict[str, Callable[[ExportListing], Any]] = {
        "name": lambda row: row.name.casefold(),
        "connection": lambda row: (row.connection_name or "").casefold(),
        "status": lambda row: row.latest_status.value if row.latest_status else None,
        "refreshed": lambda row: row.refreshed_at,
    }
    if column not in keys:
        raise InputError(f"sort: {column!r} is not one of {', '.join(SORT_COLUMNS)}")
    return keys[column]


def _matching(
    ctx: ServiceContext, search: str | None, sort: str, descending: bool
) -> list[ExportListing]:
    """Every export's listing, filtered by ``search`` and sorted (see :func:`list_exports`):
    one query, whatever the number of exports and runs."""
    require(ctx.actor, Action.VIEW)
    key = _sort_key(sort.strip().lower())
    with ctx.db.session() as session:
        listing = ExportListingRepository(session).listing()
    needle = (search or "").strip().casefold()
    if needle:
        listing = [
            row
            for row in listing
            if any(
                needle in (text or "").casefold()
                for text in (row.name, row.connection_name, row.connection_type)
            )
        ]
    by_name = sorted(listing, key=lambda row: row.name.casefold())
    present = [row for row in by_name if key(row) not in (None, "")]
    missing = [row for row in by_name if key(row) in (None, "")]
    # Rows without a value (no run yet, no connection) stay last in both directions.
    return sorted(present, key=key, reverse=descending) + missing


def _rows(ctx: ServiceContext, listing: Sequence[ExportListing]) -> list[ExportRow]:
    """Rows for these listings, in the same order: one more query (their segment names); no
    full records."""
    with ctx.db.session() as session:
        segments = ExportListingRepository(session).segment_names(row.id for row in listing)
    describe_schedule = _describer()
    return [
        ExportRow(
            name=item.name,
            connection=item.connection_name or NO_CONNECTION,
            connection_name=item.connection_name,
            connection_type=item.connection_type,
            segments=segments[item.id],
            schedule=describe_schedule(item.schedule),
            status=item.latest_status.value if item.latest_status else None,
            refreshed_at=item.refreshed_at,
            your_permissions=export_permission_label(ctx.actor, item.ref),
            id=item.id,
        )
        for item in listing
    ]


def list_exports(
    ctx: ServiceContext,
    search: str | None = None,
    sort: str = "name",
    descending: bool = False,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[ExportRow]:
    """Every export, optionally filtered by ``search`` (case-insensitive, in the export name,
    the connection name or the connection type) and sorted by ``name``, ``connection``,
    ``status`` or ``refreshed`` (rows without a value last; ties by name). ``limit`` and
    ``offset`` pick a slice of that order. Anyone may list exports (R2)."""
    if limit is not None and limit < 0:
        raise InputError(f"limit: {limit} is negative; give 0 or more")
    if offset < 0:
        raise InputError(f"offset: {offset} is negative; give 0 or more")
    listing = _matching(ctx, search, sort, descending)
    end = None if limit is None else offset + limit
    return _rows(ctx, listing[offset:end])


def page_exports(
    ctx: ServiceContext,
    search: str | None = None,
    sort: str = "name",
    descending: bool = False,
    *,
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> ExportPage:
    """Page ``page`` (from 1; past the last page gives the last) of :func:`list_exports`, with
    the number of matching exports. Loads full records only for the page's rows."""
    if not 1 <= per_page <= MAX_PAGE_SIZE:
        raise InputError(f"per_page: {per_page} is not between 1 and {MAX_PAGE_SIZE}")
    listing = _matching(ctx, search, sort, descending)
    pages = max(1, -(-len(listing) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    rows = _rows(ctx, listing[start : start + per_page])
    return ExportPage(rows=rows, total=len(listing), page=page, per_page=per_page)
