"""Export use cases (E1–E8, C7, R2–R4, P2): create, list, show, edit, duplicate, detach,
attach and remove exports. Saving an export never starts a run (E4).

Every function takes the :class:`ServiceContext` first and asks the permission policy before it
acts; refusals raise :class:`~segsync.errors.PermissionDenied`, bad input
:class:`~segsync.errors.InputError` naming the field. The run engine reads exports through
:class:`segsync.storage.repositories.exports.ExportRepository`.

Sync state and connections: the sync state of an export (what the destination acknowledged,
and the lists made for it) describes one destination. When an export's connection becomes one
its sync state does not describe (``edit --connection``, or ``attach`` to another connection
than the one it last ran on), the sync state is reset and the next run sends everyone again;
re-attaching the same connection after ``detach`` keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from segsync.domain.mapping import FieldMapping, parse_map_option
from segsync.domain.permissions import Action, require
from segsync.domain.plan import RemovalPolicy
from segsync.domain.schedule import ExportSchedule
from segsync.errors import Conflict, InputError
from segsync.services.context import ServiceContext
from segsync.services.exports.validation import (
    build_mapping,
    check_name,
    check_prefix,
    coerce_schedule,
    resolve_connection,
    resolve_segments,
    schedule_from_options,
)
from segsync.services.exports.views import (
    NO_CONNECTION,
    SORT_COLUMNS,
    ExportDetails,
    ExportRow,
    MappedField,
    SegmentLine,
    connection_ref,
    export_ref,
    list_exports,
    show_export,
)
from segsync.services.privacy import audit
from segsync.storage.repositories.exports import ExportRecord, ExportRepository

__all__ = [
    "NO_CONNECTION",
    "SORT_COLUMNS",
    "ExportChange",
    "ExportDetails",
    "ExportRow",
    "MappedField",
    "SegmentLine",
    "attach_export",
    "create_export",
    "detach_export",
    "duplicate_export",
    "edit_export",
    "get_export",
    "list_exports",
    "remove_export",
    "schedule_from_options",
    "show_export",
]


@dataclass(frozen=True)
class ExportChange:
    """What an edit, attach, detach or remove did. ``export`` is the export after the change
    (for a removal: as it was). ``sync_state_reset``: the next run sends everyone again.
    ``canceled_runs``: queued runs canceled; ``stop_requested``: processing runs asked to stop
    after their batch in flight."""

    export: ExportRecord
    sync_state_reset: bool = False
    canceled_runs: list[int] = field(default_factory=list)
    stop_requested: list[int] = field(default_factory=list)


def _audit(
    session: Session,
    ctx: ServiceContext,
    verb: str,
    export: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit event (P3) in the change's own transaction."""
    audit.record(
        session,
        at=ctx.now(),
        actor=ctx.actor,
        action=f"export.{verb}",
        target_type="export",
        target=export,
        summary=summary,
        details=details,
    )


def _settings_details(record: ExportRecord) -> dict[str, Any]:
    return {
        "connection_name": record.connection_name,
        "segments": record.segment_names,
        "mapping": record.mapping,
        "removal_policy": record.removal_policy,
        "list_prefix": record.list_prefix,
        "schedule": record.schedule,
    }


def get_export(ctx: ServiceContext, name: str) -> ExportRecord:
    """The export named ``name`` as stored (``NotFound`` if none). Anyone may view it."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return ExportRepository(session).get_by_name(name)


# ---------------------------------------------------------------- create & duplicate


def create_export(
    ctx: ServiceContext,
    name: str,
    connection: str,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    maps: Sequence[str] = (),
    segments: Sequence[str] = (),
    removal: str = "mirror",
    list_prefix: str = "",
    schedule: ExportSchedule | Mapping[str, Any] | None = None,
) -> ExportRecord:
    """Save a new export (E1–E3, E6–E8). It is never run by saving (E4).

    ``maps`` are ``FIELD=ATTRIBUTE`` texts (standard Autopilot fields or
    ``custom:<type>:<Name>``). Contributors may only use connections shared with them (R3);
    viewers may not create exports (R2).
    """
    require(ctx.actor, Action.CREATE_EXPORT)
    name = check_name(name)
    extra = [parse_map_option(text) for text in maps]
    policy = RemovalPolicy.parse(removal)
    prefix = check_prefix(list_prefix)
    chosen_schedule = coerce_schedule(schedule)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        if repo.find_by_name(name) is not None:
            raise Conflict(f"name: an export named {name!r} already exists; choose another name")
        target = resolve_connection(ctx, repo, connection)
        require(ctx.actor, Action.CREATE_EXPORT, connection_ref(target))
        segment_ids = resolve_segments(session, segments)
    mapping = build_mapping(ctx, email, first_name, last_name, extra)
    with ctx.db.session() as session:
        record = ExportRepository(session).create(
            name=name,
            connection_id=target.id,
            mapping=mapping.to_dict(),
            removal_policy=policy.value,
            list_prefix=prefix,
            schedule=chosen_schedule.to_dict(),
            segment_ids=segment_ids,
            created_by=ctx.actor.email,
            now=ctx.now(),
        )
        _audit(
            session,
            ctx,
            "created",
            name,
            f"created export {name!r} on connection {target.name!r}",
            _settings_details(record),
        )
    return record


def duplicate_export(
    ctx: ServiceContext, name: str, new_name: str, *, connection: str | None = None
) -> ExportRecord:
    """Copy an export's settings under ``new_name`` (E5), optionally on another connection. Its
    sync state, lists and runs are not copied: the duplicate's first run sends everyone."""
    require(ctx.actor, Action.CREATE_EXPORT)
    new_name = check_name(new_name)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        source = repo.get_by_name(name)
        if repo.find_by_name(new_name) is not None:
            raise Conflict(
                f"name: an export named {new_name!r} already exists; choose another name"
            )
        connection_id = source.connection_id
        if connection is not None:
            target = resolve_connection(ctx, repo, connection)
            require(ctx.actor, Action.CREATE_EXPORT, connection_ref(target))
            connection_id = target.id
        elif source.connection_id is None:
            # A detached duplicate is as detached as its source: administrators only.
            require(ctx.actor, Action.EDIT_EXPORT, replace(export_ref(source), name=new_name))
        else:
            require(ctx.actor, Action.CREATE_EXPORT, export_ref(source).connection)
        record = repo.create(
            name=new_name,
            connection_id=connection_id,
            mapping=source.mapping,
            removal_policy=source.removal_policy,
            list_prefix=source.list_prefix,
            schedule=source.schedule,
            segment_ids=source.segment_ids,
            created_by=ctx.actor.email,
            now=ctx.now(),
        )
        _audit(
            session,
            ctx,
            "duplicated",
            new_name,
            f"duplicated export {name!r} as {new_name!r}",
            _settings_details(record),
        )
    return record


# ---------------------------------------------------------------- edit


def _move(repo: ExportRepository, record: ExportRecord, connection_id: int) -> bool:
    """Refuse while a run is queued or processing; return whether the sync state must reset."""
    active = repo.active_runs(record.id)
    if active:
        run_id, status = active[0]
        raise Conflict(
            f"connection: export {record.name!r} has a run {status.label.lower()} (run "
            f"{run_id}); wait for it to end or cancel it with `segsync runs cancel {run_id}`, "
            "then change the connection"
        )
    return repo.has_sync_state(record.id) and repo.state_connection_id(record.id) != connection_id


def edit_export(
    ctx: ServiceContext,
    name: str,
    *,
    new_name: str | None = None,
    connection: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    maps: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    removal: str | None = None,
    list_prefix: str | None = None,
    schedule: ExportSchedule | Mapping[str, Any] | None = None,
) -> ExportChange:
    """Change an export's settings; ``None`` leaves a setting as it is, ``""`` clears first
    name, last name or the list prefix, and ``maps``/``segments`` replace the whole set.

    Same validation as :func:`create_export`. Moving the export to another connection resets
    its sync state (it describes the old destination) and is refused while a run is queued or
    processing. A new list prefix applies to lists not created yet.
    """
    changes_settings = any(
        value is not None
        for value in (
            new_name,
            connection,
            email,
            first_name,
            last_name,
            maps,
            segments,
            removal,
            list_prefix,
        )
    )
    if not changes_settings and schedule is None:
        raise InputError("nothing to change: give at least one setting, e.g. --segment NAME")
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get_by_name(name)
        ref = export_ref(record)
        if changes_settings:
            require(ctx.actor, Action.EDIT_EXPORT, ref)
        if schedule is not None:
            require(ctx.actor, Action.SCHEDULE_EXPORT, ref)
        target = None
        if connection is not None:
            target = resolve_connection(ctx, repo, connection)
            require(ctx.actor, Action.USE_CONNECTION, connection_ref(target))
        segment_ids = resolve_segments(session, segments) if segments is not None else None
    changes: dict[str, Any] = {}
    if new_name is not None:
        changes["name"] = check_name(new_name)
    if removal is not None:
        changes["removal_policy"] = RemovalPolicy.parse(removal).value
    if list_prefix is not None:
        changes["list_prefix"] = check_prefix(list_prefix)
    if schedule is not None:
        changes["schedule"] = coerce_schedule(schedule).to_dict()
    if segment_ids is not None:
        changes["segment_ids"] = segment_ids
    if any(value is not None for value in (email, first_name, last_name, maps)):
        old = FieldMapping.from_dict(record.mapping)
        extra = [parse_map_option(text) for text in maps] if maps is not None else old.extra
        changes["mapping"] = build_mapping(
            ctx,
            email if email is not None else old.email,
            first_name if first_name is not None else old.first_name,
            last_name if last_name is not None else old.last_name,
            extra,
        ).to_dict()
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        reset = False
        if target is not None and target.id != record.connection_id:
            reset = _move(repo, record, target.id)
            changes["connection_id"] = target.id
            if reset:
                repo.reset_sync_state(record.id)
        updated = repo.update(record.id, now=ctx.now(), **changes)
        changed = sorted(k.replace("_id", "") for k in changes)
        _audit(
            session,
            ctx,
            "edited",
            updated.name,
            f"edited export {updated.name!r}: {', '.join(changed)}",
            {**_settings_details(updated), "changed": changed, "sync_state_reset": reset},
        )
    return ExportChange(updated, sync_state_reset=reset)


# ---------------------------------------------------------------- detach, attach, remove


def detach_export(ctx: ServiceContext, name: str) -> ExportChange:
    """Set the export to "No connection" (C7): it keeps its settings and sync state and never
    runs until a connection is attached. Its queued runs are canceled and a processing run
    stops after its batch in flight."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get_by_name(name)
        require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
        if record.connection_id is None:
            return ExportChange(record)
        canceled = repo.cancel_runs(
            record.id, now=ctx.now(), reason="canceled: the export was detached from its connection"
        )
        updated = repo.detach(record.id, now=ctx.now())
        _audit(
            session,
            ctx,
            "detached",
            record.name,
            f"detached export {record.name!r} from connection {record.connection_name!r}",
            {"canceled_runs": canceled.canceled, "stop_requested": canceled.stop_requested},
        )
    return ExportChange(
        updated, canceled_runs=canceled.canceled, stop_requested=canceled.stop_requested
    )


def attach_export(ctx: ServiceContext, name: str, connection: str) -> ExportChange:
    """Attach an export to ``connection`` (C7). The sync state is kept when it describes this
    connection (the one the export last ran on) and reset otherwise."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get_by_name(name)
        require(ctx.actor, Action.EDIT_EXPORT, export_ref(record))
        target = resolve_connection(ctx, repo, connection)
        require(ctx.actor, Action.USE_CONNECTION, connection_ref(target))
        if record.connection_id == target.id:
            return ExportChange(record)
        reset = _move(repo, record, target.id)
        if reset:
            repo.reset_sync_state(record.id)
        updated = repo.attach(record.id, target.id, now=ctx.now())
        _audit(
            session,
            ctx,
            "attached",
            record.name,
            f"attached export {record.name!r} to connection {target.name!r}",
            {"connection_name": target.name, "sync_state_reset": reset},
        )
    return ExportChange(updated, sync_state_reset=reset)


def remove_export(ctx: ServiceContext, name: str) -> ExportChange:
    """Remove an export with its sync state and lists (E5, P2); its run history stays. Queued
    runs are canceled; a processing run stops after its batch in flight. Asking for
    confirmation is the caller's job."""
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get_by_name(name)
        require(ctx.actor, Action.REMOVE_EXPORT, export_ref(record))
        canceled = repo.cancel_runs(
            record.id, now=ctx.now(), reason="canceled: the export was removed"
        )
        repo.delete(record.id)
        _audit(
            session,
            ctx,
            "removed",
            record.name,
            f"removed export {record.name!r}",
            {"canceled_runs": canceled.canceled, "stop_requested": canceled.stop_requested},
        )
    return ExportChange(
        record, canceled_runs=canceled.canceled, stop_requested=canceled.stop_requested
    )
