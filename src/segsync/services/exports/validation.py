"""Checking export settings (E1–E3, E6–E8): names, connection, segments, data matching,
removal policy, list prefix and schedule. Each error names the field and what is wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from segsync.destinations.registry import capabilities
from segsync.domain.fields import FieldCatalogue
from segsync.domain.local_time import parse_time, parse_weekdays, parse_zone
from segsync.domain.mapping import FieldMapping, validate_mapping
from segsync.domain.names import did_you_mean
from segsync.domain.permissions import may_use_connection
from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence
from segsync.errors import InputError, NotFound
from segsync.services.connections.views import unknown_connection
from segsync.services.context import ServiceContext
from segsync.services.exports.inputs import DataMatching
from segsync.services.exports.views import connection_ref
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.exports import ConnectionSummary, ExportRepository
from segsync.storage.repositories.segments import SegmentRepository

MAX_NAME = 200
MAX_PREFIX = 100


# ---------------------------------------------------------------- validation


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InputError("name: give the export a name")
    if len(cleaned) > MAX_NAME:
        raise InputError(f"name: {len(cleaned)} characters, at most {MAX_NAME}")
    return cleaned


def check_prefix(prefix: str) -> str:
    if len(prefix) > MAX_PREFIX:
        raise InputError(f"list prefix: {len(prefix)} characters, at most {MAX_PREFIX}")
    if any(not ch.isprintable() for ch in prefix):
        raise InputError("list prefix: must not contain line breaks or control characters")
    return prefix


def resolve_connection(
    ctx: ServiceContext, repo: ExportRepository, connection_id: int
) -> ConnectionSummary:
    """The connection with ``connection_id``; ``NotFound`` names the connections this user may
    use. Whether the user may use it is the caller's to ask."""
    try:
        return repo.connection(connection_id)
    except NotFound:
        pass
    usable = [
        (c.name, c.type)
        for c in repo.connections()
        if may_use_connection(ctx.actor, connection_ref(c))
    ]
    raise unknown_connection(f"with id {connection_id}", usable)


def catalogue_for(connection: ConnectionSummary) -> FieldCatalogue:
    """What an export on ``connection`` may map: its destination type's field catalogue."""
    return capabilities(connection.type).catalogue


def resolve_segments(session: Session, names: Sequence[str]) -> list[int]:
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not wanted:
        raise InputError("segments: choose at least one segment (--segment NAME)")
    repo = SegmentRepository(session)
    ids = []
    for name in wanted:
        record = repo.find_by_name(name)
        if record is None:
            hint = did_you_mean(name, (s.name for s in repo.list()))
            raise NotFound(f"segments: no segment named {name!r}{hint}")
        ids.append(record.id)
    return ids


def build_mapping(
    ctx: ServiceContext, catalogue: FieldCatalogue, matching: DataMatching
) -> FieldMapping:
    """Build the field mapping against the destination's ``catalogue`` and check it against the
    profile table (E1, E2)."""
    mapping = FieldMapping(
        email=matching.email.strip(),
        first_name=(matching.first_name or "").strip() or None,
        last_name=(matching.last_name or "").strip() or None,
        extra=tuple((line.field, line.attribute.strip()) for line in matching.lines),
        catalogue=catalogue,
    )
    validate_mapping(mapping, catalog(ctx).profile.columns)
    return mapping


def mapping_fits(record_mapping: Mapping[str, Any], connection: ConnectionSummary) -> None:
    """Refuse (``InputError``) a connection whose destination cannot take the stored mapping
    (a target it does not know), naming the connection and the field."""
    try:
        FieldMapping.from_dict(record_mapping, catalogue_for(connection))
    except InputError as err:
        raise InputError(
            f"connection: {connection.name!r} cannot take this export's data matching: "
            f"{err.message}; change the data matching first"
        ) from None


def coerce_schedule(schedule: ExportSchedule | Mapping[str, Any] | None) -> ExportSchedule:
    if schedule is None:
        return ExportSchedule()
    if isinstance(schedule, ExportSchedule):
        return schedule
    return ExportSchedule.from_dict(schedule)


_KINDS = ("with-system", "off", "daily", "weekly", "every")


def schedule_from_options(
    kind: str | None,
    *,
    at: str | None = None,
    days: str | None = None,
    hours: int | None = None,
    tz: str | None = None,
    current: ExportSchedule | Mapping[str, Any] | None = None,
) -> ExportSchedule | None:
    """The schedule of the CLI options ``--schedule KIND [--at HH:MM] [--days mon,thu]
    [--hours N] [--tz ZONE]`` (E8); ``None`` when no option is given.

    ``KIND``: ``with-system`` (run with every system refresh), ``off`` (manual runs only),
    ``daily --at``, ``weekly --days --at``, or ``every --hours N [--at]`` (every N hours from the
    ``--at`` time, default 00:00). ``--tz`` defaults to UTC. With ``with-system`` or ``off``,
    the own recurrence of ``current`` is kept for later.
    """
    if kind is None:
        if any(value is not None for value in (at, days, hours, tz)):
            raise InputError("schedule: --at, --days, --hours and --tz need --schedule KIND")
        return None
    chosen = kind.strip().lower().replace("_", "-")
    if chosen not in _KINDS:
        raise InputError(f"schedule: {kind!r} is not one of {', '.join(_KINDS)}")
    base = coerce_schedule(current)
    if chosen in {"with-system", "off"}:
        if any(value is not None for value in (at, days, hours, tz)):
            raise InputError(
                f"schedule: --at, --days, --hours and --tz do not apply to --schedule {chosen}"
            )
        mode = ExportMode.OFF if chosen == "off" else ExportMode.WITH_SYSTEM
        return replace(base, mode=mode)
    if chosen != "weekly" and days is not None:
        raise InputError("schedule: --days applies only to --schedule weekly")
    if chosen != "every" and hours is not None:
        raise InputError("schedule: --hours applies only to --schedule every")
    if chosen in {"daily", "weekly"} and at is None:
        raise InputError(f"schedule: --schedule {chosen} needs --at HH:MM (local time)")
    if chosen == "weekly" and days is None:
        raise InputError("schedule: --schedule weekly needs --days, e.g. --days mon,thu")
    if chosen == "every" and hours is None:
        raise InputError("schedule: --schedule every needs --hours N (1 to 24)")
    zone = tz if tz is not None else "UTC"
    parse_zone(zone, field="schedule --tz")
    recurrence = {
        "daily": Recurrence.DAILY,
        "weekly": Recurrence.WEEKLY,
        "every": Recurrence.EVERY_N_HOURS,
    }[chosen]
    return ExportSchedule(
        mode=ExportMode.OWN,
        recurrence=recurrence,
        weekdays=parse_weekdays(days, field="schedule --days") if days else frozenset(),
        every_hours=hours,
        start=parse_time(at or "00:00", field="schedule --at"),
        tz=zone,
    )
