"""The segment repository: CRUD, refresh history, member snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from segsync.errors import Conflict, NotFound
from segsync.storage.db import Database
from segsync.storage.models.segments import RefreshStatus, SegmentRefresh, SegmentStatus
from segsync.storage.repositories.segments import SegmentRepository, decode_ids, encode_ids

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def test_a_new_segment_is_a_draft_without_members(db: Database) -> None:
    with db.session() as session:
        created = SegmentRepository(session).create(
            name="Lisbon", definition='{"rules": []}', now=T0, description="d", created_by="a@x"
        )
    with db.session() as session:
        found = SegmentRepository(session).get_by_name("Lisbon")
    assert found == created
    assert found.status is SegmentStatus.DRAFT
    assert found.member_count is None
    assert found.last_refreshed_at is None
    assert (found.created_at, found.updated_at, found.created_by) == (T0, T0, "a@x")


def test_names_are_unique(db: Database) -> None:
    with db.session() as session:
        repo = SegmentRepository(session)
        repo.create(name="A", definition="{}", now=T0)
        other = repo.create(name="B", definition="{}", now=T0)
        with pytest.raises(Conflict, match="'A' already exists"):
            repo.create(name="A", definition="{}", now=T0)
        with pytest.raises(Conflict, match="'A' already exists"):
            repo.update(other.id, now=T0, name="A")


def test_missing_segments_are_not_found(db: Database) -> None:
    with db.session() as session:
        repo = SegmentRepository(session)
        assert repo.find_by_name("nope") is None
        with pytest.raises(NotFound, match="no segment named 'nope'"):
            repo.get_by_name("nope")
        with pytest.raises(NotFound):
            repo.get(999)
        with pytest.raises(NotFound):
            repo.delete(999)


def test_update_changes_only_the_given_fields(db: Database) -> None:
    later = T0 + timedelta(hours=1)
    with db.session() as session:
        repo = SegmentRepository(session)
        seg = repo.create(name="A", definition="{}", now=T0, description="keep me")
        updated = repo.update(
            seg.id,
            now=later,
            status=SegmentStatus.ACTIVE,
            member_count=42,
            last_refreshed_at=later,
        )
    assert updated.description == "keep me"
    assert updated.definition == "{}"
    assert (updated.status, updated.member_count) == (SegmentStatus.ACTIVE, 42)
    assert updated.last_refreshed_at == later
    assert (updated.created_at, updated.updated_at) == (T0, later)
    with db.session() as session:
        cleared = SegmentRepository(session).update(seg.id, now=later, description=None)
    assert cleared.description is None
    assert cleared.member_count == 42


def test_list_is_sorted_by_name_and_filters_by_status(db: Database) -> None:
    with db.session() as session:
        repo = SegmentRepository(session)
        for name in ("b", "c", "a"):
            repo.create(name=name, definition="{}", now=T0)
        repo.update(repo.get_by_name("c").id, now=T0, status=SegmentStatus.ACTIVE)
        assert [s.name for s in repo.list()] == ["a", "b", "c"]
        assert [s.name for s in repo.list(status=SegmentStatus.ACTIVE)] == ["c"]
        assert [s.name for s in repo.list(status=SegmentStatus.DRAFT)] == ["a", "b"]


def test_history_is_newest_first(db: Database) -> None:
    with db.session() as session:
        repo = SegmentRepository(session)
        seg = repo.create(name="A", definition="{}", now=T0)
        repo.add_refresh(
            seg.id,
            started_at=T0,
            ended_at=T0 + timedelta(seconds=2),
            status=RefreshStatus.OK,
            member_count=10,
            entered=10,
            left=0,
        )
        repo.add_refresh(
            seg.id,
            started_at=T0 + timedelta(days=1),
            ended_at=T0 + timedelta(days=1, seconds=1),
            status=RefreshStatus.FAILED,
            error="unknown attribute 'Cty'",
        )
    with db.session() as session:
        repo = SegmentRepository(session)
        history = repo.history(seg.id)
        assert [h.status for h in history] == [RefreshStatus.FAILED, RefreshStatus.OK]
        assert history[0].error == "unknown attribute 'Cty'"
        assert (history[1].member_count, history[1].entered, history[1].left) == (10, 10, 0)
        assert history[1].ended_at == T0 + timedelta(seconds=2)
        assert [h.status for h in repo.history(seg.id, limit=1)] == [RefreshStatus.FAILED]
        assert repo.count_refreshes(seg.id) == 2


def test_snapshot_round_trips_sorted_ids_and_is_replaced(db: Database) -> None:
    ids = [str(i) for i in range(100_000, 0, -1)]
    with db.session() as session:
        repo = SegmentRepository(session)
        seg = repo.create(name="A", definition="{}", now=T0)
        assert repo.get_snapshot(seg.id) is None
        assert repo.save_snapshot(seg.id, ids, taken_at=T0) == 100_000
    with db.session() as session:
        snapshot = SegmentRepository(session).get_snapshot(seg.id)
    assert snapshot is not None
    assert snapshot.profile_ids == sorted(ids)
    assert snapshot.taken_at == T0
    with db.session() as session:
        SegmentRepository(session).save_snapshot(seg.id, [], taken_at=T0 + timedelta(days=1))
    with db.session() as session:
        empty = SegmentRepository(session).get_snapshot(seg.id)
    assert empty is not None
    assert empty.profile_ids == []


def test_snapshot_blob_is_compressed() -> None:
    ids = [f"C{i:07d}" for i in range(100_000)]
    blob = encode_ids(reversed(ids))
    assert len(blob) < len("\n".join(ids)) / 3
    assert decode_ids(blob) == ids


def test_deleting_a_segment_deletes_its_history_and_snapshot(db: Database) -> None:
    with db.session() as session:
        repo = SegmentRepository(session)
        seg = repo.create(name="A", definition="{}", now=T0)
        repo.add_refresh(seg.id, started_at=T0, ended_at=T0, status=RefreshStatus.OK)
        repo.save_snapshot(seg.id, ["1"], taken_at=T0)
    with db.session() as session:
        SegmentRepository(session).delete(seg.id)
    with db.session() as session:
        repo = SegmentRepository(session)
        assert repo.find_by_name("A") is None
        assert session.scalar(select(func.count()).select_from(SegmentRefresh)) == 0
        assert repo.get_snapshot(seg.id) is None
