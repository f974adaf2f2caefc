"""A run saves its progress and extends its lease with every commit (RunRepository
.save_progress, plain driver SQL): on SQLite and PostgreSQL alike, only while its owner holds
it, with the lease stored as the ORM stores timestamps and a cancel or a removed export
reported back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from segsync.domain.runs import RunCounts, RunStatus
from segsync.storage.db import Database
from segsync.storage.models.exports import Export
from segsync.storage.models.runs import Run
from segsync.storage.repositories.runs import RunRepository

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5, microseconds=250)


def _processing_run(db: Database, owner: str = "w", export: str = "E") -> int:
    with db.session() as session:
        row = Export(
            name=export, connection_id=None, mapping="{}", created_by="t", created_at=NOW,
            updated_at=NOW,
        )  # fmt: skip
        session.add(row)
        session.flush()
        repo = RunRepository(session)
        run = repo.create(
            export_id=row.id, export_name=export, connection_id=None, actor="t", now=NOW
        )
        assert repo.claim_queued(run.id, owner=owner, expires_at=NOW, now=NOW)
        return run.id


def _save(db: Database, run_id: int, owner: str = "w") -> tuple[bool, bool]:
    with db.session() as session:
        return RunRepository(session).save_progress(
            run_id,
            owner=owner,
            expires_at=LATER,
            counts=RunCounts(members=7, added=3, requests=2),
            items_done=3,
            items_total=9,
        )


def test_progress_and_lease_are_saved_while_the_owner_holds_the_run(db: Database) -> None:
    run_id = _processing_run(db)

    assert _save(db, run_id) == (True, False)

    with db.session() as session:
        record = RunRepository(session).get(run_id)
        # the lease as the ORM writes and compares timestamps (lease checks are ORM queries)
        found = session.scalars(
            select(Run.id).where(Run.lease_expires_at == LATER, Run.lease_expires_at > NOW)
        ).all()
    assert record.counts == RunCounts(members=7, added=3, requests=2)
    assert (record.items_done, record.items_total) == (3, 9)
    assert record.lease_expires_at is not None
    assert record.lease_expires_at.replace(tzinfo=UTC) == LATER
    assert found == [run_id]


def test_another_owner_saves_nothing(db: Database) -> None:
    run_id = _processing_run(db, owner="first")

    assert _save(db, run_id, owner="second") == (False, True)

    with db.session() as session:
        record = RunRepository(session).get(run_id)
    assert record.counts == RunCounts()
    assert record.items_done == 0
    assert record.lease_owner == "first"


def test_a_cancel_or_a_removed_export_is_reported_with_the_save(db: Database) -> None:
    canceled, removed = _processing_run(db), _processing_run(db, export="F")
    with db.session() as session:
        session.execute(update(Run).where(Run.id == canceled).values(cancel_requested=True))
        session.execute(update(Run).where(Run.id == removed).values(export_id=None))

    assert _save(db, canceled) == (True, True)
    assert _save(db, removed) == (True, True)
    with db.session() as session:
        assert RunRepository(session).get(removed).status is RunStatus.PROCESSING
