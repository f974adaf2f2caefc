"""Ending a run is a compare-and-set on its status: a run another process moved meanwhile (a
worker claimed it) is not overwritten (Postgres, READ COMMITTED, where the race is real)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from segsync.domain.runs import RunStatus
from segsync.errors import Conflict
from segsync.storage.db import Database
from segsync.storage.models.exports import Export
from segsync.storage.models.runs import Run
from segsync.storage.repositories.runs import RunRepository

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _queued_run(db: Database) -> int:
    with db.session() as session:
        export = Export(
            name="E",
            connection_id=None,
            mapping="{}",
            created_by="t",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(export)
        session.flush()
        run = RunRepository(session).create(
            export_id=export.id, export_name="E", connection_id=None, actor="t", now=NOW
        )
        return run.id


@pytest.fixture
def db(clean_postgres_url: str) -> Database:
    return Database.open(clean_postgres_url)


def test_a_run_claimed_meanwhile_is_not_canceled_but_asked_to_stop(db: Database) -> None:
    run_id = _queued_run(db)
    with db.session() as session:
        repo = RunRepository(session)
        assert repo.get(run_id).status is RunStatus.QUEUED  # read: still queued
        with db.session() as other:  # a worker claims it and commits
            other.execute(
                update(Run).where(Run.id == run_id).values(status="processing", lease_owner="w")
            )
        record = repo.request_cancel(run_id, now=NOW)
    assert record.status is RunStatus.PROCESSING
    with db.session() as session:
        run = RunRepository(session).get(run_id)
    assert run.status is RunStatus.PROCESSING
    assert run.lease_owner == "w"
    assert run.cancel_requested


def test_finish_refuses_a_run_whose_status_changed_after_it_was_read(db: Database) -> None:
    run_id = _queued_run(db)
    with db.session() as session:
        repo = RunRepository(session)
        assert repo.get(run_id).status is RunStatus.QUEUED
        with db.session() as other:
            other.execute(update(Run).where(Run.id == run_id).values(status="processing"))
        with pytest.raises(Conflict):
            repo.finish(
                run_id, RunStatus.SKIPPED, now=NOW, message="not run", expect=RunStatus.QUEUED
            )
