"""Reading exports (E3, E5, E6, R4): the export list and one export's details with member counts.

:mod:`segsync.services.exports` re-exports :func:`list_exports` and :func:`show_export`; call
them from there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
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
from segsync.services.profiles import catalog
from segsync.storage.repositories.exports import (
    ConnectionSummary,
    ExportRecord,
    ExportRepository,
    RunOverview,
)
from segsync.storage.repositories.segments import SegmentRepository

NO_CONNECTION = "No connection"
SORT_COLUMNS = ("name", "connection", "status", "refreshed")


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["refreshed_at"] = self.refreshed_at.isoformat() if self.refreshed_at else None
        return data


@dataclass(frozen=True)
class MappedField:
    """One line of the data matching: the Autopilot field and the profile attribute."""

    field: str
    attribute: str


@dataclass(frozen=True)
class SegmentLine:
    """A segment of an export: its live member count (``None`` when it cannot be counted), the
    title of its Autopilot list, and the list's id once a run created it (E3, E6)."""

    id: int
    name: str
    members: int | None
    list_title: str
    list_id: str | None


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("refreshed_at", "created_at", "updated_at"):
            moment = getattr(self, key)
            data[key] = moment.isoformat() if moment else None
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


def _row(ctx: ServiceContext, record: ExportRecord, runs: RunOverview | None) -> ExportRow:
    return ExportRow(
        name=record.name,
        connection=record.connection_name or NO_CONNECTION,
        connection_name=record.connection_name,
        connection_type=record.connection_type,
        segments=list(record.segment_names),
        schedule=describe(ExportSchedule.from_dict(record.schedule)),
        status=runs.latest_status.value if runs and runs.latest_status else None,
        refreshed_at=runs.refreshed_at if runs else None,
        your_permissions=export_permission_label(ctx.actor, export_ref(record)),
    )


def _sorted(rows: list[ExportRow], sort: str, descending: bool) -> list[ExportRow]:
    keys: dict[str, Any] = {
        "name": lambda row: row.name.casefold(),
        "connection": lambda row: (row.connection_name or "").casefold(),
        "status": lambda row: row.status,
        "refreshed": lambda row: row.refreshed_at,
    }
    column = sort.strip().lower()
    if column not in keys:
        raise InputError(f"sort: {sort!r} is not one of {', '.join(SORT_COLUMNS)}")
    key = keys[column]
    by_name = sorted(rows, key=lambda row: row.name.casefold())
    present = [row for row in by_name if key(row) not in (None, "")]
    missing = [row for row in by_name if key(row) in (None, "")]
    # Rows without a value (no run yet, no connection) stay last in both directions.
    return sorted(present, key=key, reverse=descending) + missing


def list_exports(
    ctx: ServiceContext,
    search: str | None = None,
    sort: str = "name",
    descending: bool = False,
) -> list[ExportRow]:
    """Every export, optionally filtered by ``search`` (case-insensitive, in the export name,
    the connection name or the connection type) and sorted by ``name``, ``connection``,
    ``status`` or ``refreshed`` (rows without a value last). Anyone may list exports (R2)."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        records = repo.list()
        overview = repo.run_overview(record.id for record in records)
    needle = (search or "").strip().casefold()
    if needle:
        records = [
            record
            for record in records
            if any(
                needle in (text or "").casefold()
                for text in (record.name, record.connection_name, record.connection_type)
            )
        ]
    rows = [_row(ctx, record, overview.get(record.id)) for record in records]
    return _sorted(rows, sort, descending)


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


def show_export(ctx: ServiceContext, name: str) -> ExportDetails:
    """One export, read-only (E5): its settings, each segment's live member count and list
    title (E3, E6), the distinct total across its segments, and a warning when that total
    exceeds the connection's contract limit. Anyone may view an export (R2)."""
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
    counts = _count_selection(ctx, definitions)
    warnings = list(counts.warnings)
    show_limit = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS).allowed
    if connection is None:
        warnings.append(
            "this export has no connection and never runs; attach one with "
            f"`segsync exports attach {record.name!r} --connection NAME`"
        )
    elif counts.total is not None:
        warning = contract_warning(
            counts.total, connection.contract_limit, connection.name, show_limit
        )
        if warning:
            warnings.append(warning)
    lines = []
    for sid, segment_name, _ in definitions:
        list_id, title = lists.get(sid, (None, list_title(segment_name, record.list_prefix)))
        lines.append(SegmentLine(sid, segment_name, counts.members[sid], title, list_id))
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
    )
