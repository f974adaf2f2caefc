"""Segments, their refresh history and member snapshots."""

from __future__ import annotations

import builtins
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from segsync.domain.names import did_you_mean
from segsync.errors import Conflict, NotFound
from segsync.storage.models.segments import (
    RefreshStatus,
    Segment,
    SegmentRefresh,
    SegmentSnapshot,
    SegmentStatus,
)
from segsync.storage.repositories.changes import UNSET, Unset, apply_changes


@dataclass(frozen=True)
class SegmentRecord:
    id: int
    name: str
    description: str | None
    definition: str
    status: SegmentStatus
    member_count: int | None
    last_refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class RefreshRecord:
    id: int
    segment_id: int
    started_at: datetime
    ended_at: datetime | None
    status: RefreshStatus
    member_count: int | None
    entered: int | None
    left: int | None
    error: str | None


@dataclass(frozen=True)
class SnapshotRecord:
    """A segment's members at ``taken_at``: profile ids as text, sorted."""

    segment_id: int
    profile_ids: list[str]
    taken_at: datetime


def encode_ids(ids: Iterable[str]) -> bytes:
    """Profile ids → zlib-compressed, sorted, newline-joined bytes."""
    return zlib.compress("\n".join(sorted(ids)).encode("utf-8"), level=6)


def decode_ids(blob: bytes) -> list[str]:
    text = zlib.decompress(blob).decode("utf-8")
    return text.split("\n") if text else []


def _segment(row: Segment) -> SegmentRecord:
    return SegmentRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        definition=row.definition,
        status=SegmentStatus(row.status),
        member_count=row.member_count,
        last_refreshed_at=row.last_refreshed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _refresh(row: SegmentRefresh) -> RefreshRecord:
    return RefreshRecord(
        id=row.id,
        segment_id=row.segment_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=RefreshStatus(row.status),
        member_count=row.member_count,
        entered=row.entered,
        left=row.left,
        error=row.error,
    )


class SegmentRepository:
    """CRUD for segments plus their refresh history and latest member snapshot.

    Names are unique (``Conflict`` otherwise); lookups of a missing segment raise ``NotFound``.
    Deleting a segment deletes its history and snapshot.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        name: str,
        definition: str,
        now: datetime,
        description: str | None = None,
        created_by: str | None = None,
    ) -> SegmentRecord:
        """Save a new draft segment (no members until its first refresh)."""
        self._check_name_free(name)
        row = Segment(
            name=name,
            description=description,
            definition=definition,
            status=SegmentStatus.DRAFT.value,
            member_count=None,
            last_refreshed_at=None,
            created_at=now,
            updated_at=now,
            created_by=created_by,
        )
        self.session.add(row)
        self.session.flush()
        return _segment(row)

    def get(self, segment_id: int) -> SegmentRecord:
        return _segment(self._row(segment_id))

    def find_by_name(self, name: str) -> SegmentRecord | None:
        row = self.session.scalars(select(Segment).where(Segment.name == name)).first()
        return None if row is None else _segment(row)

    def get_by_name(self, name: str) -> SegmentRecord:
        record = self.find_by_name(name)
        if record is None:
            hint = did_you_mean(name, (segment.name for segment in self.list()))
            raise NotFound(f"no segment named {name!r}{hint}")
        return record

    def list(self, *, status: SegmentStatus | None = None) -> list[SegmentRecord]:
        """Every segment by name, optionally only those with ``status``."""
        query = select(Segment).order_by(Segment.name)
        if status is not None:
            query = query.where(Segment.status == status.value)
        return [_segment(row) for row in self.session.scalars(query)]

    def update(
        self,
        segment_id: int,
        *,
        now: datetime,
        name: str | Literal[Unset.UNSET] = UNSET,
        description: str | Literal[Unset.UNSET] | None = UNSET,
        definition: str | Literal[Unset.UNSET] = UNSET,
        status: SegmentStatus | Literal[Unset.UNSET] = UNSET,
        member_count: int | Literal[Unset.UNSET] | None = UNSET,
        last_refreshed_at: datetime | Literal[Unset.UNSET] | None = UNSET,
    ) -> SegmentRecord:
        """Change the given fields (the others stay); ``updated_at`` becomes ``now``."""
        row = self._row(segment_id)
        if name is not UNSET and name != row.name:
            self._check_name_free(name)
        apply_changes(
            row,
            {
                "name": name,
                "description": description,
                "definition": definition,
                "status": status if status is UNSET else status.value,
                "member_count": member_count,
                "last_refreshed_at": last_refreshed_at,
            },
        )
        row.updated_at = now
        self.session.flush()
        return _segment(row)

    def delete(self, segment_id: int) -> None:
        self._row(segment_id)
        self.session.execute(delete(Segment).where(Segment.id == segment_id))

    def add_refresh(
        self,
        segment_id: int,
        *,
        started_at: datetime,
        ended_at: datetime | None,
        status: RefreshStatus,
        member_count: int | None = None,
        entered: int | None = None,
        left: int | None = None,
        error: str | None = None,
    ) -> RefreshRecord:
        """Append one refresh to the segment's history."""
        self._row(segment_id)
        row = SegmentRefresh(
            segment_id=segment_id,
            started_at=started_at,
            ended_at=ended_at,
            status=status.value,
            member_count=member_count,
            entered=entered,
            left=left,
            error=error,
        )
        self.session.add(row)
        self.session.flush()
        return _refresh(row)

    def history(self, segment_id: int, *, limit: int | None = None) -> builtins.list[RefreshRecord]:
        """The segment's refreshes, newest first."""
        query = (
            select(SegmentRefresh)
            .where(SegmentRefresh.segment_id == segment_id)
            .order_by(SegmentRefresh.started_at.desc(), SegmentRefresh.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        return [_refresh(row) for row in self.session.scalars(query)]

    def count_refreshes(self, segment_id: int) -> int:
        query = select(func.count()).where(SegmentRefresh.segment_id == segment_id)
        return int(self.session.scalar(query) or 0)

    def get_snapshot(self, segment_id: int) -> SnapshotRecord | None:
        """The members saved at the latest successful refresh, or ``None`` before the first."""
        row = self.session.get(SegmentSnapshot, segment_id)
        if row is None:
            return None
        return SnapshotRecord(segment_id, decode_ids(row.profile_ids), row.taken_at)

    def save_snapshot(
        self, segment_id: int, profile_ids: Iterable[str], *, taken_at: datetime
    ) -> int:
        """Replace the segment's snapshot; return how many ids it holds."""
        self._row(segment_id)
        ids = list(profile_ids)
        blob = encode_ids(ids)
        row = self.session.get(SegmentSnapshot, segment_id)
        if row is None:
            row = SegmentSnapshot(segment_id=segment_id)
            self.session.add(row)
        row.profile_ids = blob
        row.member_count = len(ids)
        row.taken_at = taken_at
        self.session.flush()
        return len(ids)

    def _row(self, segment_id: int) -> Segment:
        row = self.session.get(Segment, segment_id)
        if row is None:
            raise NotFound(f"no segment with id {segment_id}")
        return row

    def _check_name_free(self, name: str) -> None:
        if self.find_by_name(name) is not None:
            raise Conflict(f"a segment named {name!r} already exists; choose another name")
