"""Reading exports (E3, E5, E6, R4): the export list and one export's details with member counts.

:mod:`segsync.services.exports.manage` re-exports :func:`list_exports` and :func:`show_export`; call
them from there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import ibis.expr.types as ir

from segsync.domain.mapping import FieldMapping
from segsync.domain.permissions import (
    Action,
    ConnectionRef,
    ExportRef,
    decide,
    export_permission_label,
    require,
)
from segsync.domain.plan import RemovalPolicy, list_title
from segsync.domain.schedule import ExportSchedule, describe
from segsync.domain.segment_definition import parse_definition
from segsync.errors import InputError, SegsyncError
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import count
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.export_listing import ExportListing, ExportListingRepository
from segsync.storage.repositories.exports import (
    ConnectionSummary,
    ExportRecord,
    ExportRepository,
    RunOverview,
)
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository

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
        data = asdict(self)
        del data["id"]
        data["refreshed_at"] = self.refreshed_at.isoformat() if self.refreshed_at else None
        return data


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


@dataclass(frozen=True)
class MappedField:
    """One line of the data matching: the Autopilot field and the profile attribute."""

    field: str
    attribute: str


@dataclass(frozen=True)
class SegmentLine:
    """A segment of an export: its member count (``None`` when it cannot be counted, or was
    never refreshed), when a stored count was counted (``counted_at``: the segment's last
    refresh; ``None`` for a live count, and for a segment never refreshed), the title of its
    Autopilot list, and the list's id once a run created it (E3, E6)."""

    id: int
    name: str
    members: int | None
    list_title: str
    list_id: str | None
    counted_at: datetime | None = None


@dataclass(frozen=True)
class ExportDetails:
    """Everything ``exports show`` prints. ``contract_limit`` is ``None`` for actors who may
    not see connection settings (R5) and for detached exports."""

    id: int
    name: str
    connection: str
    connection_name: str | None
    connection_type: str | None
    mapping: list[MappedField]
    removal_policy: str
    list_prefix: str
    schedule: dict[str, Any]
    schedule_description: str
    segments: list[SegmentLine]
    distinct_total: int | None
    contract_limit: int | None
    status: str | None
    refreshed_at: datetime | None
    your_permissions: Literal["edit", "view"]
    created_by: str
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = field(default_factory=list)
    live_counts: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("refreshed_at", "created_at", "updated_at"):
            moment = getattr(self, key)
            data[key] = moment.isoformat() if moment else None
        for line in data["segments"]:
            line["counted_at"] = line["counted_at"].isoformat() if line["counted_at"] else None
        return data


def mapping_lines(mapping: FieldMapping) -> list[MappedField]:
    """The data matching as ``(field, attribute)`` lines, Email first."""
    lines = [MappedField("Email", mapping.email)]
    if mapping.first_name:
        lines.append(MappedField("FirstName", mapping.first_name))
    if mapping.last_name:
        lines.append(MappedField("LastName", mapping.last_name))
    lines.extend(MappedField(target, attribute) for target, attribute in mapping.extra)
    return lines


def _row(
    ctx: ServiceContext,
    record: ExportRecord,
    runs: RunOverview | None,
    describe_schedule: Callable[[dict[str, Any]], str] | None = None,
) -> ExportRow:
    return ExportRow(
        name=record.name,
        connection=record.connection_name or NO_CONNECTION,
        connection_name=record.connection_name,
        connection_type=record.connection_type,
        segments=list(record.segment_names),
        schedule=(describe_schedule or _describe)(record.schedule),
        status=runs.latest_status.value if runs and runs.latest_status else None,
        refreshed_at=runs.refreshed_at if runs else None,
        your_permissions=export_permission_label(ctx.actor, export_ref(record)),
        id=record.id,
    )


def _describe(schedule: dict[str, Any]) -> str:
    return describe(ExportSchedule.from_dict(schedule))


def _describer() -> Callable[[dict[str, Any]], str]:
    """:func:`_describe` remembering each distinct schedule: exports often share one."""
    seen: dict[str, str] = {}

    def cached(schedule: dict[str, Any]) -> str:
        key = json.dumps(schedule, sort_keys=True, default=str)
        if key not in seen:
            seen[key] = _describe(schedule)
        return seen[key]

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
    """Full rows for these listings (one query for their records, their segments and
    connections), in the same order."""
    with ctx.db.session() as session:
        records = ExportRepository(session).records([row.id for row in listing])
    by_id = {record.id: record for record in records}
    describe_schedule = _describer()
    rows = []
    for item in listing:
        record = by_id.get(item.id)
        if record is None:  # removed meanwhile
            continue
        runs = RunOverview(None, item.latest_status, item.refreshed_at)
        rows.append(_row(ctx, record, runs, describe_schedule))
    return rows


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


@dataclass
class _Counts:
    members: dict[int, int | None]
    total: int | None
    warnings: list[str]


def _count_selection(ctx: ServiceContext, segments: Sequence[tuple[int, str, str]]) -> _Counts:
    """Live member counts of ``(id, name, definition)`` segments and of their union."""
    result = _Counts(members={sid: None for sid, _, _ in segments}, total=None, warnings=[])
    try:
        cat = catalog(ctx)
    except InputError as err:
        result.warnings.append(f"member counts unavailable: {err.message}")
        return result
    now = ctx.now()
    compiled: list[ir.Table] = []
    for segment_id, name, definition in segments:
        try:
            members = compile_segment(parse_definition(definition), cat, ctx.profiles.table, now)
            result.members[segment_id] = count(members)
        except SegsyncError as err:
            result.warnings.append(f"segment {name!r}: its members cannot be counted: {err}")
            continue
        compiled.append(members)
    if compiled and len(compiled) == len(segments):
        union = functools.reduce(lambda left, right: left.union(right, distinct=True), compiled)
        result.total = count(union) if len(compiled) > 1 else result.members[segments[0][0]]
    return result


def contract_warning(total: int, limit: int, connection_name: str, show_limit: bool) -> str | None:
    """E3: the warning shown when the selection exceeds the connection's contract limit."""
    if total <= limit:
        return None
    amount = f" of {limit:,}" if show_limit else ""
    return (
        f"the selected segments hold {total:,} distinct profiles, more than the contract "
        f"limit{amount} of connection {connection_name!r}: runs will be skipped and send "
        "nothing until the selection fits (or an administrator raises the limit)"
    )


def _stored_counts(segments: Sequence[SegmentRecord]) -> _Counts:
    """Each segment's member count from its last refresh (``None`` if never refreshed); the
    distinct total only when there is one segment (a union needs a live count)."""
    members = {s.id: s.member_count for s in segments}
    total = segments[0].member_count if len(segments) == 1 else None
    return _Counts(members=members, total=total, warnings=[])


def show_export(ctx: ServiceContext, name: str, *, live_counts: bool = True) -> ExportDetails:
    """One export, read-only (E5): its settings, each segment's member count and list title
    (E3, E6), the distinct total across its segments, and a warning when that total exceeds
    the connection's contract limit. Anyone may view an export (R2).

    ``live_counts`` (the default) counts the members now in the profile engine; without it the
    counts are those stored by each segment's last refresh (cheap: no profile engine), each
    with its ``counted_at`` (the refresh's time), and the distinct total is known only for a
    single segment — the contract warning then uses the biggest segment, a lower bound of the
    total."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get_by_name(name)
        lists = repo.lists(record.id)
        runs = repo.run_overview([record.id]).get(record.id)
        connection = (
            repo.connection(record.connection_id) if record.connection_id is not None else None
        )
        segments = [SegmentRepository(session).get(sid) for sid in record.segment_ids]
        definitions = [(s.id, s.name, s.definition) for s in segments]
    if live_counts:
        counts = _count_selection(ctx, definitions)
        counted_at: dict[int, datetime | None] = {s.id: None for s in segments}
        at_least = counts.total
    else:
        counts = _stored_counts(segments)
        counted_at = {s.id: s.last_refreshed_at for s in segments}
        known = [n for n in counts.members.values() if n is not None]
        at_least = counts.total if counts.total is not None else max(known, default=None)
    warnings = list(counts.warnings)
    show_limit = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS).allowed
    if connection is None:
        warnings.append(
            "this export has no connection and never runs; attach one with "
            f"`segsync exports attach {record.name!r} --connection NAME`"
        )
    elif at_least is not None:
        warning = contract_warning(at_least, connection.contract_limit, connection.name, show_limit)
        if warning:
            warnings.append(warning)
    lines = []
    for sid, segment_name, _ in definitions:
        list_id, title = lists.get(sid, (None, list_title(segment_name, record.list_prefix)))
        lines.append(
            SegmentLine(sid, segment_name, counts.members[sid], title, list_id, counted_at[sid])
        )
    row = _row(ctx, record, runs)
    return ExportDetails(
        id=record.id,
        name=record.name,
        connection=row.connection,
        connection_name=record.connection_name,
        connection_type=record.connection_type,
        mapping=mapping_lines(FieldMapping.from_dict(record.mapping)),
        removal_policy=removal_label(record.removal_policy),
        list_prefix=record.list_prefix,
        schedule=dict(record.schedule),
        schedule_description=row.schedule,
        segments=lines,
        distinct_total=counts.total,
        contract_limit=connection.contract_limit if connection and show_limit else None,
        status=row.status,
        refreshed_at=row.refreshed_at,
        your_permissions=row.your_permissions,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
        warnings=warnings,
        live_counts=live_counts,
    )
