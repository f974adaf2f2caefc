"""Data sources and relationships."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segsync.domain.catalog import Relationship
from segsync.errors import NotFound
from segsync.storage.db import Database
from segsync.storage.repositories.profiles import (
    DataSourceRepository,
    FileFingerprint,
    RelationshipRepository,
)

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
FP = FileFingerprint(size=123, mtime=datetime(2025, 5, 1, 7, 0, 1, tzinfo=UTC), sha256="ab" * 32)


def _save(repo: DataSourceRepository, table: str, *, is_profile: bool, rows: int = 5) -> None:
    repo.save(
        table_name=table,
        source_path=f"/data/{table}.csv",
        format="csv",
        key_column="Id",
        is_profile=is_profile,
        fingerprint=FP,
        row_count=rows,
        imported_at=T0,
    )


def test_a_data_source_round_trips_with_its_fingerprint(db: Database) -> None:
    with db.session() as session:
        _save(DataSourceRepository(session), "customers", is_profile=True)
    with db.session() as session:
        record = DataSourceRepository(session).get("customers")
    assert record.fingerprint == FP
    assert (record.format, record.key_column, record.row_count) == ("csv", "Id", 5)
    assert record.imported_at == T0
    assert record.is_profile


def test_saving_again_replaces_the_record(db: Database) -> None:
    with db.session() as session:
        repo = DataSourceRepository(session)
        _save(repo, "orders", is_profile=False, rows=5)
        repo.save(
            table_name="orders",
            source_path=None,
            format="sample",
            key_column=None,
            is_profile=False,
            fingerprint=None,
            row_count=9,
            imported_at=T0,
        )
        assert [r.row_count for r in repo.list()] == [9]
        assert repo.get("orders").fingerprint is None


def test_there_is_at_most_one_profile_table(db: Database) -> None:
    with db.session() as session:
        repo = DataSourceRepository(session)
        _save(repo, "customers", is_profile=True)
        _save(repo, "people", is_profile=True)
        assert [(r.table_name, r.is_profile) for r in repo.list()] == [
            ("customers", False),
            ("people", True),
        ]
        profile = repo.profile()
        assert profile is not None
        assert profile.table_name == "people"


def test_unknown_data_source(db: Database) -> None:
    with db.session() as session:
        repo = DataSourceRepository(session)
        assert repo.find("x") is None
        assert repo.profile() is None
        with pytest.raises(NotFound, match="no data source named 'x'"):
            repo.get("x")


def test_relationships_are_recorded_once_and_removable(db: Database) -> None:
    rel = Relationship("orders", "CustomerId", "customers", "CustomerId")
    with db.session() as session:
        repo = RelationshipRepository(session)
        assert repo.add(rel, now=T0) is True
        assert repo.add(rel, now=T0) is False
    with db.session() as session:
        repo = RelationshipRepository(session)
        assert repo.list() == [rel]
        repo.remove(rel)
        assert repo.list() == []
        with pytest.raises(NotFound, match=r"no relationship orders\.CustomerId"):
            repo.remove(rel)
