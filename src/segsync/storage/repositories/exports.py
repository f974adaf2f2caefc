"""Exports: their settings, their segments (in order), the lists made for them, and what the
export views need to know about their connection (their runs: :mod:`.export_runs`).

Records are frozen and safe to use after the session closes. ``mapping`` and ``schedule`` are the
JSON-ready dicts of :class:`segsync.domain.mapping.FieldMapping` and
:class:`segsync.domain.schedule.ExportSchedule`; the services layer turns them into those types.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from segsync.domain.hold import DEFAULT_GROWTH, DEFAULT_REMOVALS
from segsync.domain.names import did_you_mean
from segsync.errors import Conflict, NotFound
from segsync.storage.models.connections import Connection
from segsync.storage.models.exports import Export, ExportList, ExportSegment
from segsync.storage.models.segments import Segment
from segsync.storage.models.sync import SyncContact
from segsync.storage.repositories.changes import UNSET, Unset, apply_changes
from segsync.storage.repositories.sync import SyncStateRepository


@dataclass(frozen=True)
class ExportRecord:
    """An export with its connection's display name, type and sharing, and its segments.

    ``connection_id`` (and the connection fields) are ``None`` for a detached export (C7);
    ``shared_with_contributors`` is then ``False``. ``segment_ids``/``segment_names`` are in the
    order the user chose."""

    id: int
    name: str
    connection_id: int | None
    connection_name: str | None
    connection_type: str | None
    shared_with_contributors: bool
    mapping: dict[str, Any]
    removal_policy: str
    list_prefix: str
    schedule: dict[str, Any]
    segment_ids: list[int]
    segment_names: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    hold_removals: float | None = DEFAULT_REMOVALS
    """The blast-radius hold: the share of a list whose removal holds a run (None: off)."""
    hold_growth: float | None = DEFAULT_GROWTH
    """The factor of a list's growth that holds a run (None: off)."""


@dataclass(frozen=True)
class ConnectionSummary:
    """What exports need of a connection: name, type, sharing (R3) and contract limit (E3)."""

    id: int
    name: str
    type: str
    shared_with_contributors: bool
    contract_limit: int


def _connection(row: Connection) -> ConnectionSummary:
    return ConnectionSummary(
        id=row.id,
        name=row.name,
        type=row.type,
        shared_with_contributors=row.shared_with_contributors,
        contract_limit=row.contract_limit,
    )


class ExportRepository:
    """CRUD for exports, their segments and lists, and the reads the export views need.

    Names are unique (``Conflict``); lookups of a missing export raise ``NotFound``. Deleting an
    export deletes its segments, lists and sync state (the database cascades) and keeps its runs
    as history (their ``export_id`` becomes NULL, ``export_name`` stays).
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ exports

    def create(
        self,
        *,
        name: str,
        connection_id: int | None,
        mapping: Mapping[str, Any],
        removal_policy: str,
        list_prefix: str,
        schedule: Mapping[str, Any],
        segment_ids: Sequence[int],
        created_by: str,
        now: datetime,
        hold_removals: float | None = DEFAULT_REMOVALS,
        hold_growth: float | None = DEFAULT_GROWTH,
    ) -> ExportRecord:
        """Save a new export with its segments in the given order."""
        self._check_name_free(name)
        row = Export(
            name=name,
            connection_id=connection_id,
            mapping=json.dumps(dict(mapping)),
            removal_policy=removal_policy,
            list_prefix=list_prefix,
            schedule=json.dumps(dict(schedule)),
            hold_removals=hold_removals,
            hold_growth=hold_growth,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        self._set_segments(row.id, segment_ids)
        return self.get(row.id)

    def get(self, export_id: int) -> ExportRecord:
        return self._records([self._row(export_id)])[0]

    def find_by_name(self, name: str) -> ExportRecord | None:
        row = self.session.scalars(select(Export).where(Export.name == name)).first()
        return None if row is None else self._records([row])[0]

    def get_by_name(self, name: str) -> ExportRecord:
        record = self.find_by_name(name)
        if record is None:
            hint = did_you_mean(name, self.names())
            raise NotFound(f"no export named {name!r}{hint}; `segsync exports list` shows them")
        return record

    def names(self) -> builtins.list[str]:
        return list(self.session.scalars(select(Export.name).order_by(Export.name)))

    def list(self) -> builtins.list[ExportRecord]:
        """Every export, by name."""
        return self._records(list(self.session.scalars(select(Export).order_by(Export.name))))

    def records(self, export_ids: Sequence[int]) -> builtins.list[ExportRecord]:
        """The exports with these ids, in the order given (unknown ids are left out)."""
        if not export_ids:
            return []
        rows = {
            row.id: row
            for row in self.session.scalars(select(Export).where(Export.id.in_(export_ids)))
        }
        return self._records([rows[i] for i in export_ids if i in rows])

    def update(
        self,
        export_id: int,
        *,
        now: datetime,
        name: str | Literal[Unset.UNSET] = UNSET,
        connection_id: int | Literal[Unset.UNSET] | None = UNSET,
        mapping: Mapping[str, Any] | Literal[Unset.UNSET] = UNSET,
        removal_policy: str | Literal[Unset.UNSET] = UNSET,
        list_prefix: str | Literal[Unset.UNSET] = UNSET,
        schedule: Mapping[str, Any] | Literal[Unset.UNSET] = UNSET,
        segment_ids: Sequence[int] | Literal[Unset.UNSET] = UNSET,
        hold_removals: float | Literal[Unset.UNSET] | None = UNSET,
        hold_growth: float | Literal[Unset.UNSET] | None = UNSET,
    ) -> ExportRecord:
        """Change the given fields (the others stay); ``updated_at`` becomes ``now``.

        This does not touch the sync state: callers that move an export to another connection
        call :meth:`reset_sync_state` too."""
        row = self._row(export_id)
        if name is not UNSET and name != row.name:
            self._check_name_free(name)
        apply_changes(
            row,
            {
                "name": name,
                "connection_id": connection_id,
                "mapping": mapping if mapping is UNSET else json.dumps(dict(mapping)),
                "removal_policy": removal_policy,
                "list_prefix": list_prefix,
                "schedule": schedule if schedule is UNSET else json.dumps(dict(schedule)),
                "hold_removals": hold_removals,
                "hold_growth": hold_growth,
            },
        )
        row.updated_at = now
        self.session.flush()
        if segment_ids is not UNSET:
            self._set_segments(export_id, segment_ids)
        return self.get(export_id)

    def delete(self, export_id: int) -> None:
        """Delete the export, its segments, lists and sync state; its runs stay as history."""
        self._row(export_id)
        self.session.execute(delete(Export).where(Export.id == export_id))

    def detach(self, export_id: int, *, now: datetime) -> ExportRecord:
        """Set the export to "No connection" (C7); settings and sync state stay."""
        return self.update(export_id, now=now, connection_id=None)

    def attach(self, export_id: int, connection_id: int, *, now: datetime) -> ExportRecord:
        """Attach the export to ``connection_id``; the sync state is left as it is."""
        return self.update(export_id, now=now, connection_id=connection_id)

    def using_segment(self, segment_id: int) -> builtins.list[str]:
        """Names of the exports that send this segment (S8), sorted."""
        query = (
            select(Export.name)
            .join(ExportSegment, ExportSegment.export_id == Export.id)
            .where(ExportSegment.segment_id == segment_id)
            .order_by(Export.name)
        )
        return list(self.session.scalars(query))

    def using_connection(self, connection_id: int) -> builtins.list[str]:
        """Names of the exports attached to this connection (C7), sorted."""
        query = select(Export.name).where(Export.connection_id == connection_id)
        return list(self.session.scalars(query.order_by(Export.name)))

    # ------------------------------------------------------------------ lists (E6)

    def lists(self, export_id: int) -> dict[int, tuple[str, str]]:
        """The destination lists made for this export: segment id → ``(list_id, title)``."""
        query = select(ExportList).where(ExportList.export_id == export_id)
        return {row.segment_id: (row.list_id, row.title) for row in self.session.scalars(query)}

    def save_list(
        self,
        export_id: int,
        segment_id: int,
        list_id: str,
        title: str,
        *,
        now: datetime | None = None,
    ) -> None:
        """Record (or replace) the list made for ``segment_id`` of this export."""
        row = self.session.get(ExportList, (export_id, segment_id))
        if row is None:
            row = ExportList(export_id=export_id, segment_id=segment_id)
            row.created_at = now or datetime.now(UTC)
            self.session.add(row)
        row.list_id = list_id
        row.title = title
        self.session.flush()

    def forget_list(self, export_id: int, segment_id: int) -> None:
        """Forget the list recorded for ``segment_id`` (it is gone from the destination): the
        next run makes it again."""
        self.session.execute(
            delete(ExportList).where(
                ExportList.export_id == export_id, ExportList.segment_id == segment_id
            )
        )

    def reset_sync_state(self, export_id: int) -> None:
        """Forget what the destination acknowledged for this export: its sync contacts,
        memberships and lists. The next run sends everyone again (upserts are idempotent, and
        lists are found again by title)."""
        SyncStateRepository(self.session).clear(export_id)
        self.session.execute(delete(ExportList).where(ExportList.export_id == export_id))

    def has_sync_state(self, export_id: int) -> bool:
        SyncStateRepository(self.session).settle_intents(export_id)
        query = select(func.count()).where(SyncContact.export_id == export_id)
        lists = select(func.count()).where(ExportList.export_id == export_id)
        return bool(self.session.scalar(query)) or bool(self.session.scalar(lists))

    # ------------------------------------------------------------------ connections

    def find_connection(self, connection_id: int) -> ConnectionSummary | None:
        row = self.session.get(Connection, connection_id)
        return None if row is None else _connection(row)

    def connection(self, connection_id: int) -> ConnectionSummary:
        row = self.session.get(Connection, connection_id)
        if row is None:
            raise NotFound(f"no connection with id {connection_id}")
        return _connection(row)

    def connections(self) -> builtins.list[ConnectionSummary]:
        """Every connection, by type then name."""
        query = select(Connection).order_by(Connection.type, Connection.name)
        return [_connection(row) for row in self.session.scalars(query)]

    # ------------------------------------------------------------------ internals

    def _row(self, export_id: int) -> Export:
        row = self.session.get(Export, export_id)
        if row is None:
            raise NotFound(f"no export with id {export_id}")
        return row

    def _check_name_free(self, name: str) -> None:
        taken = self.session.scalar(select(Export.id).where(Export.name == name))
        if taken is not None:
            raise Conflict(f"name: an export named {name!r} already exists; choose another name")

    def _set_segments(self, export_id: int, segment_ids: Sequence[int]) -> None:
        self.session.execute(delete(ExportSegment).where(ExportSegment.export_id == export_id))
        for position, segment_id in enumerate(dict.fromkeys(segment_ids)):
            self.session.add(
                ExportSegment(export_id=export_id, segment_id=segment_id, position=position)
            )
        self.session.flush()

    def _records(self, rows: Sequence[Export]) -> builtins.list[ExportRecord]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        segments: dict[int, builtins.list[tuple[int, str]]] = {export_id: [] for export_id in ids}
        query = (
            select(ExportSegment.export_id, Segment.id, Segment.name)
            .join(Segment, Segment.id == ExportSegment.segment_id)
            .where(ExportSegment.export_id.in_(ids))
            .order_by(ExportSegment.export_id, ExportSegment.position)
        )
        for export_id, segment_id, segment_name in self.session.execute(query):
            segments[export_id].append((segment_id, segment_name))
        connection_ids = {row.connection_id for row in rows if row.connection_id is not None}
        connections = {
            row.id: row
            for row in self.session.scalars(
                select(Connection).where(Connection.id.in_(connection_ids))
            )
        }
        records = []
        for row in rows:
            conn = connections.get(row.connection_id) if row.connection_id is not None else None
            records.append(
                ExportRecord(
                    id=row.id,
                    name=row.name,
                    connection_id=row.connection_id,
                    connection_name=conn.name if conn else None,
                    connection_type=conn.type if conn else None,
                    shared_with_contributors=conn.shared_with_contributors if conn else False,
                    mapping=json.loads(row.mapping),
                    removal_policy=row.removal_policy,
                    list_prefix=row.list_prefix,
                    schedule=json.loads(row.schedule),
                    segment_ids=[segment_id for segment_id, _ in segments[row.id]],
                    segment_names=[segment_name for _, segment_name in segments[row.id]],
                    created_by=row.created_by,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                    hold_removals=row.hold_removals,
                    hold_growth=row.hold_growth,
                )
            )
        return records
