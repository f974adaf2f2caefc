"""Export use cases (E1–E8, R2–R4): create, look up, duplicate and edit exports (detach, attach
and remove are in :mod:`segsync.services.exports.lifecycle`). Saving an export never starts a run
(E4).

Exports and connections are addressed by id (:func:`export_id` finds the id of a name); the
settings come typed (:mod:`segsync.services.exports.inputs`). Every function takes the
:class:`ServiceContext` first and asks the permission policy before it acts; refusals raise
:class:`~segsync.errors.PermissionDenied`, bad input :class:`~segsync.errors.InputError` naming
the field. The run engine reads exports through
:class:`segsync.storage.repositories.exports.ExportRepository`.

Sync state and connections: the sync state of an export (what the destination acknowledged,
and the lists made for it) describes one destination. When an export's connection becomes one
its sync state does not describe (an edit of the connection, or ``attach`` to another connection
than the one it last ran on), the sync state is reset and the next run sends everyone again;
re-attaching the same connection after ``detach`` keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from segsync.domain.hold import HoldRule, parse_growth, parse_removals
from segsync.domain.mapping import FieldMapping
from segsync.domain.permissions import Action, require
from segsync.domain.plan import RemovalPolicy
from segsync.errors import Conflict, InputError
from segsync.services.context import ServiceContext
from segsync.services.exports.inputs import (
    UNSET,
    DataMatching,
    ExportEdit,
    ExportSettings,
    MappingLine,
)
from segsync.services.exports.validation import (
    build_mapping,
    catalogue_for,
    check_name,
    check_prefix,
    coerce_schedule,
    mapping_fits,
    resolve_connection,
    resolve_segments,
)
from segsync.services.exports.views import connection_ref, export_ref
from segsync.services.privacy import audit
from segsync.services.sync.compiled import prepare
from segsync.storage.repositories.export_runs import ExportRunsRepository
from segsync.storage.repositories.exports import (
    ConnectionSummary,
    ExportRecord,
    ExportRepository,
)

__all__ = [
    "ExportChange",
    "create_export",
    "duplicate_export",
    "edit_export",
    "export_id",
    "get_export",
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


def audit_export(
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
        "hold": HoldRule(record.hold_removals, record.hold_growth).to_dict(),
    }


def export_id(ctx: ServiceContext, name: str) -> int:
    """The id of the export named ``name`` (one lookup; ``NotFound`` if none)."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return ExportRepository(session).get_by_name(name.strip()).id


def get_export(ctx: ServiceContext, export_id: int) -> ExportRecord:
    """The export with ``export_id`` as stored (``NotFound`` if none). Anyone may view it."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return ExportRepository(session).get(export_id)


# ---------------------------------------------------------------- create & duplicate


def create_export(ctx: ServiceContext, settings: ExportSettings) -> ExportRecord:
    """Save a new export (E1–E3, E6–E8). It is never run by saving (E4).

    The data matching is read against the connection's field catalogue. Contributors may only
    use connections shared with them (R3); viewers may not create exports (R2).
    """
    require(ctx.actor, Action.CREATE_EXPORT)
    name = check_name(settings.name)
    policy = RemovalPolicy.parse(settings.removal)
    prefix = check_prefix(settings.list_prefix)
    chosen_schedule = coerce_schedule(settings.schedule)
    hold_removals = parse_removals(settings.hold_removals)
    hold_growth = parse_growth(settings.hold_growth)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        if repo.find_by_name(name) is not None:
            raise Conflict(f"name: an export named {name!r} already exists; choose another name")
        target = resolve_connection(ctx, repo, settings.connection_id)
        require(ctx.actor, Action.CREATE_EXPORT, connection_ref(target))
        segment_ids = resolve_segments(session, settings.segments)
    mapping = build_mapping(ctx, catalogue_for(target), settings.matching)
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
            hold_removals=hold_removals,
            hold_growth=hold_growth,
        )
        audit_export(
            session,
            ctx,
            "created",
            name,
            f"created export {name!r} on connection {target.name!r}",
            _settings_details(record),
        )
    prepare(ctx, record.id)
    return record


def duplicate_export(
    ctx: ServiceContext, export_id: int, new_name: str, *, connection_id: int | None = None
) -> ExportRecord:
    """Copy an export's settings under ``new_name`` (E5), optionally on another connection
    (whose destination must take its data matching). Its sync state, lists and runs are not
    copied: the duplicate's first run sends everyone."""
    require(ctx.actor, Action.CREATE_EXPORT)
    new_name = check_name(new_name)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        source = repo.get(export_id)
        if repo.find_by_name(new_name) is not None:
            raise Conflict(
                f"name: an export named {new_name!r} already exists; choose another name"
            )
        target_id = source.connection_id
        if connection_id is not None:
            target = resolve_connection(ctx, repo, connection_id)
            require(ctx.actor, Action.CREATE_EXPORT, connection_ref(target))
            mapping_fits(source.mapping, target)
            target_id = target.id
        elif source.connection_id is None:
            # A detached duplicate is as detached as its source: administrators only.
            require(ctx.actor, Action.EDIT_EXPORT, replace(export_ref(source), name=new_name))
        else:
            require(ctx.actor, Action.CREATE_EXPORT, export_ref(source).connection)
        record = repo.create(
            name=new_name,
            connection_id=target_id,
            mapping=source.mapping,
            removal_policy=source.removal_policy,
            list_prefix=source.list_prefix,
            schedule=source.schedule,
            segment_ids=source.segment_ids,
            created_by=ctx.actor.email,
            now=ctx.now(),
            hold_removals=source.hold_removals,
            hold_growth=source.hold_growth,
        )
        audit_export(
            session,
            ctx,
            "duplicated",
            new_name,
            f"duplicated export {source.name!r} as {new_name!r}",
            _settings_details(record),
        )
    prepare(ctx, record.id)
    return record


# ---------------------------------------------------------------- edit


def check_move(session: Session, record: ExportRecord, connection_id: int) -> bool:
    """Refuse while a run is queued or processing; return whether the sync state must reset
    (it describes another connection than ``connection_id``)."""
    runs = ExportRunsRepository(session)
    active = runs.active_runs(record.id)
    if active:
        run_id, status = active[0]
        raise Conflict(
            f"connection: export {record.name!r} has a run {status.label.lower()} (run "
            f"{run_id}); wait for it to end or cancel it with `segsync runs cancel {run_id}`, "
            "then change the connection"
        )
    has_state = ExportRepository(session).has_sync_state(record.id)
    return has_state and runs.state_connection_id(record.id) != connection_id


def _new_mapping(
    ctx: ServiceContext,
    record: ExportRecord,
    edit: ExportEdit,
    connection: ConnectionSummary | None,
) -> dict[str, Any]:
    """The stored mapping after ``edit``, read and checked against ``connection``'s catalogue
    (the export's connection after the edit)."""
    if connection is None:
        raise InputError(
            f"data matching: export {record.name!r} has no connection, and what can be mapped "
            "depends on the destination; attach a connection first"
        )
    catalogue = catalogue_for(connection)
    old = FieldMapping.from_dict(record.mapping, catalogue)
    matching = DataMatching(
        email=old.email if edit.email is UNSET else edit.email,
        first_name=old.first_name if edit.first_name is UNSET else edit.first_name,
        last_name=old.last_name if edit.last_name is UNSET else edit.last_name,
        lines=[MappingLine(t, a) for t, a in old.extra] if edit.lines is UNSET else edit.lines,
    )
    return build_mapping(ctx, catalogue, matching).to_dict()


def edit_export(ctx: ServiceContext, export_id: int, edit: ExportEdit) -> ExportChange:
    """Change the settings ``edit`` gives (:data:`UNSET` ones stay as they are).

    Same validation as :func:`create_export`. Moving the export to another connection resets
    its sync state (it describes the old destination), is refused while a run is queued or
    processing, and needs the new destination to take the data matching. A new list prefix
    applies to lists not created yet.
    """
    given = edit.given()
    if not given:
        raise InputError("nothing to change: give at least one setting, e.g. --segment NAME")
    changes_settings = any(name != "schedule" for name in given)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export_id)
        ref = export_ref(record)
        if changes_settings:
            require(ctx.actor, Action.EDIT_EXPORT, ref)
        if edit.schedule is not UNSET:
            require(ctx.actor, Action.SCHEDULE_EXPORT, ref)
        target = None
        if edit.connection_id is not UNSET:
            target = resolve_connection(ctx, repo, edit.connection_id)
            require(ctx.actor, Action.USE_CONNECTION, connection_ref(target))
        elif record.connection_id is not None and edit.changes_matching():
            target = repo.connection(record.connection_id)
        segment_ids = None if edit.segments is UNSET else resolve_segments(session, edit.segments)
    moving = target is not None and target.id != record.connection_id
    changes: dict[str, Any] = {}
    if edit.name is not UNSET:
        changes["name"] = check_name(edit.name)
    if edit.removal is not UNSET:
        changes["removal_policy"] = RemovalPolicy.parse(edit.removal).value
    if edit.list_prefix is not UNSET:
        changes["list_prefix"] = check_prefix(edit.list_prefix)
    if edit.schedule is not UNSET:
        changes["schedule"] = coerce_schedule(edit.schedule).to_dict()
    if edit.hold_removals is not UNSET:
        changes["hold_removals"] = parse_removals(edit.hold_removals)
    if edit.hold_growth is not UNSET:
        changes["hold_growth"] = parse_growth(edit.hold_growth)
    if segment_ids is not None:
        changes["segment_ids"] = segment_ids
    if edit.changes_matching():
        changes["mapping"] = _new_mapping(ctx, record, edit, target)
    elif moving and target is not None:
        mapping_fits(record.mapping, target)
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        reset = False
        if moving and target is not None:
            reset = check_move(session, record, target.id)
            changes["connection_id"] = target.id
            if reset:
                repo.reset_sync_state(record.id)
        updated = repo.update(record.id, now=ctx.now(), **changes)
        changed = sorted(k.replace("_id", "") for k in changes)
        audit_export(
            session,
            ctx,
            "edited",
            updated.name,
            f"edited export {updated.name!r}: {', '.join(changed)}",
            {**_settings_details(updated), "changed": changed, "sync_state_reset": reset},
        )
    if {"segment_ids", "mapping", "connection_id"} & changes.keys():
        prepare(ctx, record.id)
    return ExportChange(updated, sync_state_reset=reset)
