"""What the export forms of the web UI and the API need (E1–E3, E8).

* :func:`mapping_choices` — what a destination type lets an export map: its standard fields
  and custom field types, from its field catalogue (E2); :func:`connection_fields` the same for
  a connection.
* :func:`matching_of` — an export's stored data matching, typed, for the form.
* :func:`selection_check` — live member counts of chosen segments, their distinct total, and
  the warning when it exceeds the contract limit of the chosen connection (E3).
* :func:`schedule_choice` — an export's stored schedule as the form's fields (E8).
* :func:`export_ids` — exports are addressed by id in URLs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from segsync.destinations.registry import capabilities, destination_types
from segsync.domain.hold import growth_text, removals_text
from segsync.domain.local_time import Weekday
from segsync.domain.permissions import Action, decide, may_use_connection, require
from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence
from segsync.domain.segment_definition import parse_definition
from segsync.errors import InputError, PermissionDenied, SegsyncError
from segsync.services.context import ServiceContext
from segsync.services.exports.audience import audience_warnings, contract_warning
from segsync.services.exports.inputs import DataMatching, MappingLine
from segsync.services.exports.validation import schedule_from_options
from segsync.services.exports.views import connection_ref
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.export_listing import ExportListingRepository
from segsync.storage.repositories.exports import ConnectionSummary, ExportRecord, ExportRepository
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "SCHEDULE_KINDS",
    "WEEKDAYS",
    "MappingChoices",
    "SelectionCheck",
    "all_mapping_choices",
    "connection_fields",
    "export_ids",
    "mapping_choices",
    "matching_of",
    "schedule_choice",
    "schedule_from_form",
    "selection_check",
]

#: The schedule choices of the form (E8): value and label.
SCHEDULE_KINDS: tuple[tuple[str, str], ...] = (
    ("with-system", "With every system refresh"),
    ("daily", "Own recurrence: daily"),
    ("weekly", "Own recurrence: weekly"),
    ("every", "Own recurrence: every N hours"),
    ("off", "Off (manual runs only)"),
)
WEEKDAYS: tuple[tuple[str, str], ...] = tuple(
    (day.value, day.value.capitalize()) for day in Weekday
)


def schedule_from_form(
    kind: str,
    *,
    at: str | None = None,
    days: Sequence[str] = (),
    hours: int | None = None,
    tz: str | None = None,
    current: Mapping[str, Any] | None = None,
) -> ExportSchedule | None:
    """The schedule a form or API body chose (E8). Fields that do not apply to ``kind`` are
    ignored (a form sends them all), so ``with-system``/``off`` keep the current recurrence."""
    chosen = kind.strip().lower()
    own = chosen in {"daily", "weekly", "every"}
    return schedule_from_options(
        chosen,
        at=(at or None) if own else None,
        days=",".join(days) if chosen == "weekly" and days else None,
        hours=hours if chosen == "every" else None,
        tz=(tz or None) if own else None,
        current=current,
    )


@dataclass(frozen=True)
class MappingChoices:
    """What an export on one destination type may map (E2): the labels of the email, first and
    last name fields (``None``: the destination has no such field), the standard fields as
    ``(key, label, value type)``, and the custom field types (``custom:<type>:<Name>``)."""

    type: str
    destination: str
    email: str
    first_name: str | None
    last_name: str | None
    standard: list[tuple[str, str, str]]
    custom_types: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "destination": self.destination,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "standard": [key for key, _, _ in self.standard],
            "fields": [
                {"key": key, "label": label, "value_type": kind}
                for key, label, kind in self.standard
            ],
            "custom_types": self.custom_types,
        }


def mapping_choices(type_name: str) -> MappingChoices:
    """What an export on a connection of ``type_name`` may map, from its field catalogue."""
    caps = capabilities(type_name)
    fields = caps.catalogue
    return MappingChoices(
        type=caps.name,
        destination=fields.destination,
        email=fields.email_key,
        first_name=fields.first_name_key,
        last_name=fields.last_name_key,
        standard=[(item.key, item.label, item.value_type) for item in fields.standard],
        custom_types=list(fields.custom_types),
    )


def all_mapping_choices() -> dict[str, MappingChoices]:
    """:func:`mapping_choices` of every type users may choose, by type name."""
    return {name: mapping_choices(name) for name in destination_types(listed_only=True)}


def connection_fields(ctx: ServiceContext, connection_id: int) -> MappingChoices:
    """What an export on the connection ``connection_id`` may map. Those who may see the
    connection may ask: administrators, and everyone for a connection shared with contributors
    (any other id is refused alike, existing or not)."""
    require(ctx.actor, Action.VIEW)
    settings = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        connection = (
            repo.connection(connection_id)
            if settings.allowed
            else repo.find_connection(connection_id)
        )
    if connection is None or not (settings.allowed or connection.shared_with_contributors):
        raise PermissionDenied(
            f"this connection is not shared with contributors; {settings.reason}"
        )
    return mapping_choices(connection.type)


def matching_of(record: ExportRecord) -> DataMatching:
    """The export's stored data matching, typed (as the export form shows it)."""
    stored = record.mapping
    return DataMatching(
        email=str(stored.get("email") or ""),
        first_name=stored.get("first_name") or None,
        last_name=stored.get("last_name") or None,
        lines=[MappingLine(str(t), str(a)) for t, a in stored.get("extra") or ()],
    )


def export_ids(ctx: ServiceContext) -> dict[str, int]:
    """Every export's name → id (for links), in one query of two columns. Anyone may view
    exports."""
    return export_links(ctx)[0]


def editable_exports(ctx: ServiceContext) -> list[tuple[str, int]]:
    """``(name, id)`` of every export the actor may edit, by name (as the export list sorts):
    one query, whatever the number of exports (no full records)."""
    return export_links(ctx)[1]


def export_links(ctx: ServiceContext) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """:func:`export_ids` and :func:`editable_exports` from one query."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        refs = ExportListingRepository(session).export_refs()
    ids = {ref.name: int(ref.id) for ref in refs}
    refs.sort(key=lambda ref: ref.name.casefold())
    editable = [
        (ref.name, int(ref.id)) for ref in refs if decide(ctx.actor, Action.EDIT_EXPORT, ref)
    ]
    return ids, editable


def hold_choice(removals: float | None, growth: float | None) -> dict[str, str]:
    """An export's hold thresholds as the form shows them: ``hold_removals`` (``20%``) and
    ``hold_growth`` (``3x``), either ``off``."""
    return {"hold_removals": removals_text(removals), "hold_growth": growth_text(growth)}


def schedule_choice(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """A stored export schedule as the form shows it: ``kind`` (one of
    :data:`SCHEDULE_KINDS`), ``at`` (HH:MM), ``days`` (weekday values), ``hours``, ``tz``."""
    parsed = ExportSchedule.from_dict(schedule)
    kind = {ExportMode.WITH_SYSTEM: "with-system", ExportMode.OFF: "off"}.get(parsed.mode)
    if kind is None:
        kind = {
            Recurrence.DAILY: "daily",
            Recurrence.WEEKLY: "weekly",
            Recurrence.EVERY_N_HOURS: "every",
        }[parsed.recurrence]
    return {
        "kind": kind,
        "at": parsed.start.strftime("%H:%M"),
        "days": sorted(day.value for day in parsed.weekdays),
        "hours": parsed.every_hours,
        "tz": parsed.tz,
    }


@dataclass(frozen=True)
class SelectionCheck:
    """Chosen segments' member counts (``None``: cannot be counted, or never refreshed), their
    distinct total, and ``warnings`` (above the contract limit, or why counting failed).

    ``live`` counts are counted now; stored ones are each segment's last refresh, and then
    ``total`` is ``at_least`` profiles (the biggest segment; exact for a single segment)."""

    members: dict[str, int | None]
    total: int | None
    over_limit: bool = False
    warnings: list[str] = field(default_factory=list)
    live: bool = True

    @property
    def at_least(self) -> int | None:
        """A lower bound of the distinct total: the total, or else the biggest known count."""
        if self.total is not None:
            return self.total
        return max((n for n in self.members.values() if n is not None), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "total": self.total,
            "over_limit": self.over_limit,
            "warnings": self.warnings,
            "live": self.live,
        }


def selection_check(
    ctx: ServiceContext,
    connection_id: int | None,
    segments: Sequence[str],
    *,
    live: bool = True,
    email: str | None = None,
) -> SelectionCheck:
    """Count the chosen ``segments`` now and warn when their distinct total exceeds the contract
    limit of the connection ``connection_id`` (when given, existing and usable by the actor) —
    E3. Nothing is stored; the limit itself is named only to those who may see connection
    settings (R5).

    Without ``live`` nothing is counted: the counts are those of each segment's last refresh
    (no profile engine), and the warning is given when the biggest one alone exceeds the
    limit. With the ``email`` attribute chosen, a live check counts the distinct valid emails
    as a run does when the profiles exceed the limit, and warns when that attribute mostly
    holds no email (:func:`~segsync.services.exports.audience.audience_warnings`)."""
    require(ctx.actor, Action.VIEW)
    names = list(dict.fromkeys(n.strip() for n in segments if n.strip()))
    members: dict[str, int | None] = {name: None for name in names}
    warnings: list[str] = []
    with ctx.db.session() as session:
        repo = SegmentRepository(session)
        found = [(name, repo.find_by_name(name)) for name in names]
        target = ExportRepository(session).find_connection(connection_id) if connection_id else None
    if target is not None and not may_use_connection(ctx.actor, connection_ref(target)):
        target = None
    if not names:
        return SelectionCheck(members, None, live=live)
    if not live:
        return _stored_check(ctx, found, target)
    from segsync.segments.compiler import compile_segment  # Ibis: imported where it counts
    from segsync.segments.evaluate import count

    try:
        cat = catalog(ctx)
    except InputError as err:
        return SelectionCheck(members, None, warnings=[f"member counts unavailable: {err}"])
    compiled: list[ir.Table] = []
    for name, record in found:
        if record is None:
            warnings.append(f"segment {name!r} does not exist")
            continue
        try:
            table = compile_segment(
                parse_definition(record.definition), cat, ctx.profiles.table, ctx.now()
            )
            members[name] = count(table)
            compiled.append(table)
        except SegsyncError as err:
            warnings.append(f"segment {name!r}: its members cannot be counted: {err}")
    total: int | None = None
    if compiled and len(compiled) == len(names):
        union = functools.reduce(lambda a, b: a.union(b, distinct=True), compiled)
        total = count(union) if len(compiled) > 1 else members[names[0]]
    check = SelectionCheck(members, total, warnings=warnings)
    if email and target is not None and total is not None:
        chosen = [(r.id, name, r.definition) for name, r in found if r is not None]
        limit, mostly_not = audience_warnings(ctx, chosen, {"email": email}, target, total)
        said = [warning for warning in (limit, mostly_not) if warning]
        return replace(check, over_limit=limit is not None, warnings=[*said, *warnings])
    return _with_limit(ctx, check, target)


def _stored_check(
    ctx: ServiceContext,
    found: Sequence[tuple[str, SegmentRecord | None]],
    target: ConnectionSummary | None,
) -> SelectionCheck:
    members = {name: record.member_count if record else None for name, record in found}
    warnings = [f"segment {name!r} does not exist" for name, record in found if record is None]
    total = members[found[0][0]] if len(found) == 1 else None
    check = SelectionCheck(members, total, warnings=warnings, live=False)
    return _with_limit(ctx, check, target)


def _with_limit(
    ctx: ServiceContext, check: SelectionCheck, target: ConnectionSummary | None
) -> SelectionCheck:
    """``check`` with the contract-limit warning first, when (at least) its total exceeds the
    limit of ``target``."""
    if check.at_least is None or target is None:
        return check
    if check.live and check.total is None:
        return check
    show = decide(ctx.actor, Action.VIEW_CONNECTION_SETTINGS).allowed
    warning = contract_warning(check.at_least, target, show)
    if not warning:
        return check
    return replace(check, over_limit=True, warnings=[warning, *check.warnings])
