"""Segment use cases (S4–S8): create, update, list, show, delete and refresh segments.

Lifecycle (S4): a saved segment is an inactive **draft** with no members. A refresh evaluates
its definition on the profile engine, makes it **active**, stores its member count, refresh time
and a history row with how many profiles entered and left since the previous refresh, and keeps
the member snapshot (profile ids) the next refresh is compared with. A refresh that fails marks
the segment **failed** (the last good count and snapshot stay) and does not stop the others.

Reading members (count, preview, CSV download, quick-segment suggestions) lives in
:mod:`segsync.services.segments.members`. Every use case checks the acting user's permission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segsync.domain.permissions import Action, require
from segsync.domain.segment_definition import (
    DefinitionFormat,
    SegmentDefinition,
    definition_to_dict,
    dump_definition,
    parse_definition,
)
from segsync.domain.segment_validation import validate_definition
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.profiles.manage import catalog
from segsync.services.segments.refresh import RefreshOutcome, RefreshProgress, refresh_segments
from segsync.storage.models.segments import RefreshStatus
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.segments import (
    RefreshRecord,
    SegmentRecord,
    SegmentRepository,
)

__all__ = [
    "RefreshOutcome",
    "RefreshProgress",
    "SegmentDetails",
    "UpdateReport",
    "create_segment",
    "definition_of",
    "delete_segment",
    "list_segments",
    "refresh_segments",
    "segment_to_dict",
    "show_segment",
    "update_segment",
]


def definition_of(record: SegmentRecord) -> SegmentDefinition:
    """The stored definition (JSON text) of ``record`` as a model."""
    return parse_definition(record.definition, "json")


def _stored_text(defn: SegmentDefinition) -> str:
    return json.dumps(definition_to_dict(defn), ensure_ascii=False)


def segment_to_dict(record: SegmentRecord) -> dict[str, Any]:
    """The fields of a segment that lists show, JSON-ready."""
    return {
        "name": record.name,
        "description": record.description,
        "status": record.status.value,
        "member_count": record.member_count,
        "last_refreshed_at": _iso(record.last_refreshed_at),
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "created_by": record.created_by,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse_and_validate(
    ctx: ServiceContext, text: str, format: DefinitionFormat | None
) -> SegmentDefinition:
    defn = parse_definition(text, format)
    validate_definition(defn, catalog(ctx))
    return defn


# ---------------------------------------------------------------- create, update, delete


def create_segment(
    ctx: ServiceContext, definition_text: str, format: DefinitionFormat | None = None
) -> SegmentRecord:
    """Save a new segment from YAML or JSON text, as an inactive draft with no members.

    The definition is parsed and validated against the profile schema before anything is
    stored (``DefinitionError`` lists every problem with its path); its ``name`` must be free
    (``Conflict``).
    """
    require(ctx.actor, Action.CREATE_SEGMENT)
    defn = _parse_and_validate(ctx, definition_text, format)
    with ctx.db.session() as session:
        record = SegmentRepository(session).create(
            name=defn.name,
            description=defn.description,
            definition=_stored_text(defn),
            now=ctx.now(),
            created_by=ctx.actor.email,
        )
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="segment.created",
            target_type="segment",
            target=record.name,
            summary=f"Segment {record.name!r} created as a draft",
            details={"rules": len(defn.rules)},
        )
    return record


@dataclass(frozen=True)
class UpdateReport:
    """What :func:`update_segment` did. ``members_stale``: the rules changed on a segment that
    has members, so its member count is out of date until the next refresh."""

    segment: SegmentRecord
    renamed_from: str | None
    rules_changed: bool
    members_stale: bool


def update_segment(
    ctx: ServiceContext,
    name: str,
    definition_text: str,
    format: DefinitionFormat | None = None,
) -> UpdateReport:
    """Replace the definition of segment ``name`` (validated first, like :func:`create_segment`).

    A different ``name`` in the definition renames the segment when that name is free. The
    status stays as it is; the member count and snapshot stay until the next refresh.
    """
    require(ctx.actor, Action.EDIT_SEGMENT)
    with ctx.db.session() as session:
        current = SegmentRepository(session).get_by_name(name)
    defn = _parse_and_validate(ctx, definition_text, format)
    rules_changed = definition_of(current).rules != defn.rules
    with ctx.db.session() as session:
        record = SegmentRepository(session).update(
            current.id,
            now=ctx.now(),
            name=defn.name,
            description=defn.description,
            definition=_stored_text(defn),
        )
        renamed = current.name if record.name != current.name else None
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="segment.edited",
            target_type="segment",
            target=record.name,
            summary=f"Segment {record.name!r} edited"
            + (f" (renamed from {renamed!r})" if renamed else ""),
            details={"rules_changed": rules_changed, "renamed_from": renamed},
        )
    return UpdateReport(
        segment=record,
        renamed_from=renamed,
        rules_changed=rules_changed,
        members_stale=rules_changed and record.member_count is not None,
    )


def delete_segment(ctx: ServiceContext, name: str) -> None:
    """Delete segment ``name`` with its history and snapshot.

    Refused (``Conflict``) while exports send it (S8): the message names them, and the user
    removes the segment from those exports (or removes the exports) first.
    """
    require(ctx.actor, Action.DELETE_SEGMENT)
    with ctx.db.session() as session:
        segments = SegmentRepository(session)
        record = segments.get_by_name(name)
        exports = ExportRepository(session).using_segment(record.id)
        if exports:
            names = ", ".join(repr(e) for e in exports)
            noun = "export uses" if len(exports) == 1 else "exports use"
            raise Conflict(
                f"segment {name!r} cannot be deleted: the {noun} it: {names}. Remove the "
                "segment from those exports (`segsync exports edit NAME --segment ...`) or "
                "remove the exports first"
            )
        segments.delete(record.id)
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="segment.deleted",
            target_type="segment",
            target=record.name,
            summary=f"Segment {record.name!r} deleted",
        )


# ---------------------------------------------------------------- read


def list_segments(ctx: ServiceContext) -> list[SegmentRecord]:
    """Every segment by name: status, member count, last refresh, description."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return SegmentRepository(session).list()


@dataclass(frozen=True)
class SegmentDetails:
    """One segment as its details page shows it (S5)."""

    segment: SegmentRecord
    definition: SegmentDefinition
    history: list[RefreshRecord]  # newest first
    exports: list[str]

    @property
    def last_refresh(self) -> RefreshRecord | None:
        """The latest successful refresh (its ``entered``/``left`` are the latest movement)."""
        return next((r for r in self.history if r.status is RefreshStatus.OK), None)

    @property
    def last_error(self) -> str | None:
        latest = self.history[0] if self.history else None
        return latest.error if latest and latest.status is RefreshStatus.FAILED else None

    def definition_text(self, format: DefinitionFormat = "yaml") -> str:
        return dump_definition(self.definition, format)

    def to_dict(self) -> dict[str, Any]:
        last = self.last_refresh
        return {
            **segment_to_dict(self.segment),
            "definition": definition_to_dict(self.definition),
            "last_entered": None if last is None else last.entered,
            "last_left": None if last is None else last.left,
            "last_error": self.last_error,
            "history": [_refresh_dict(r) for r in self.history],
            "exports": self.exports,
        }


def _refresh_dict(record: RefreshRecord) -> dict[str, Any]:
    return {
        "started_at": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
        "status": record.status.value,
        "member_count": record.member_count,
        "entered": record.entered,
        "left": record.left,
        "error": record.error,
    }


def show_segment(ctx: ServiceContext, name: str, *, history_limit: int = 20) -> SegmentDetails:
    """The segment's definition, status, refresh history (newest ``history_limit``) and the
    names of the exports that use it."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        segments = SegmentRepository(session)
        record = segments.get_by_name(name)
        history = segments.history(record.id, limit=history_limit)
        exports = ExportRepository(session).using_segment(record.id)
    return SegmentDetails(record, definition_of(record), history, exports)
