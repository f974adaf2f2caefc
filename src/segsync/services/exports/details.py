"""One export's details (E3, E5, E6): its settings, its data matching as lines, each segment's
member count and list, the distinct total and the contract-limit warning."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from segsync.destinations.registry import capabilities
from segsync.domain.hold import HoldRule
from segsync.domain.permissions import Action, decide, require
from segsync.domain.plan import list_title
from segsync.domain.schedule import ExportMode, ExportSchedule, describe
from segsync.domain.segment_definition import parse_definition
from segsync.errors import InputError, SegsyncError
from segsync.services.context import ServiceContext
from segsync.services.exports.audience import audience_warnings, contract_warning
from segsync.services.exports.views import export_row, removal_label
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.export_runs import ExportRunsRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository
from segsync.storage.repositories.verify_schedules import VerifyScheduleRepository

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class MappedField:
    """One line of the data matching: the destination field and the profile attribute."""

    field: str
    attribute: str


@dataclass(frozen=True)
class SegmentLine:
    """A segment of an export: its member count (``None`` when it cannot be counted, or was
    never refreshed), when a stored count was counted (``counted_at``: the segment's last
    refresh; ``None`` for a live count, and for a segment never refreshed), the title of its
    destination list, and the list's id once a run created it (E3, E6)."""

    id: int
    name: str
    members: int | None
    list_title: str
    list_id: str | None
    counted_at: datetime | None = None


@dataclass(frozen=True)
class ExportDetails:
    """Everything ``exports show`` prints. ``destination`` is the display name of the
    connection's type (``None`` when detached); ``contract_limit`` is ``None`` for actors who may
    not see connection settings (R5) and for detached exports."""

    id: int
    name: str
    connection: str
    connection_name: str | None
    connection_type: str | None
    destination: str | None
    mapping: list[MappedField]
    removal_policy: str
    list_prefix: str
    schedule: dict[str, Any]
    schedule_description: str
    verify_schedule: dict[str, Any]
    verify_schedule_description: str
    hold: dict[str, str]
    """The blast-radius hold's thresholds: ``{"removals": "20%", "growth": "3x"}`` (or off)."""
    hold_description: str
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


def _display_name(connection_type: str | None) -> str | None:
    if connection_type is None:
        return None
    try:
        return capabilities(connection_type).display_name
    except InputError:
        return connection_type


def mapping_lines(stored: Mapping[str, Any], connection_type: str | None) -> list[MappedField]:
    """The stored data matching as ``(field, attribute)`` lines, the email first. The email,
    first and last name are labelled with the destination's field names (Autopilot:
    ``Email``, ``FirstName``, ``LastName``), or as ``email``, ``first name``, ``last name`` when
    the export has no connection (or its type is no longer known)."""
    catalogue = None
    if connection_type is not None:
        try:
            catalogue = capabilities(connection_type).catalogue
        except InputError:
            catalogue = None
    email = catalogue.email_key if catalogue else "email"
    first = (catalogue.first_name_key if catalogue else None) or "first name"
    last = (catalogue.last_name_key if catalogue else None) or "last name"
    lines = [MappedField(email, str(stored["email"]))]
    if stored.get("first_name"):
        lines.append(MappedField(first, str(stored["first_name"])))
    if stored.get("last_name"):
        lines.append(MappedField(last, str(stored["last_name"])))
    lines.extend(MappedField(str(target), str(attr)) for target, attr in stored.get("extra") or ())
    return lines


@dataclass
class _Counts:
    members: dict[int, int | None]
    total: int | None
    warnings: list[str]


def _count_selection(ctx: ServiceContext, segments: Sequence[tuple[int, str, str]]) -> _Counts:
    """Live member counts of ``(id, name, definition)`` segments and of their union."""
    from segsync.segments.compiler import compile_segment  # Ibis: imported where it counts
    from segsync.segments.evaluate import count

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


def _stored_counts(segments: Sequence[SegmentRecord]) -> _Counts:
    """Each segment's member count from its last refresh (``None`` if never refreshed); the
    distinct total only when there is one segment (a union needs a live count)."""
    members = {s.id: s.member_count for s in segments}
    total = segments[0].member_count if len(segments) == 1 else None
    return _Counts(members=members, total=total, warnings=[])


def show_export(ctx: ServiceContext, export_id: int, *, live_counts: bool = True) -> ExportDetails:
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
        record = repo.get(export_id)
        lists = repo.lists(record.id)
        runs = ExportRunsRepository(session).run_overview([record.id]).get(record.id)
        connection = (
            repo.connection(record.connection_id) if record.connection_id is not None else None
        )
        segments = [SegmentRepository(session).get(sid) for sid in record.segment_ids]
        verify = ExportSchedule.from_dict(VerifyScheduleRepository(session).get(record.id).schedule)
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
    elif not live_counts:
        warning = contract_warning(at_least, connection, show_limit) if at_least else None
        warnings.extend([warning] if warning else [])
    else:
        found = audience_warnings(ctx, definitions, record.mapping, connection, at_least)
        warnings.extend(warning for warning in found if warning)
    lines = []
    for sid, segment_name, _ in definitions:
        list_id, title = lists.get(sid, (None, list_title(segment_name, record.list_prefix)))
        lines.append(
            SegmentLine(sid, segment_name, counts.members[sid], title, list_id, counted_at[sid])
        )
    row = export_row(ctx, record, runs)
    hold = HoldRule(record.hold_removals, record.hold_growth)
    return ExportDetails(
        id=record.id,
        name=record.name,
        connection=row.connection,
        connection_name=record.connection_name,
        connection_type=record.connection_type,
        destination=_display_name(record.connection_type),
        mapping=mapping_lines(record.mapping, connection.type if connection else None),
        removal_policy=removal_label(record.removal_policy),
        list_prefix=record.list_prefix,
        schedule=dict(record.schedule),
        schedule_description=row.schedule,
        verify_schedule=verify.to_dict(),
        verify_schedule_description=("Off" if verify.mode is ExportMode.OFF else describe(verify)),
        hold=hold.to_dict(),
        hold_description=hold.describe(),
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
