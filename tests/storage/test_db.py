"""The metadata DB: opening, migrations, sessions, UTC datetimes."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from segsync.errors import InputError
from segsync.storage.db import Database, normalise_url
from segsync.storage.models import load_all
from segsync.storage.models.segments import Segment

TABLES = {"data_sources", "relationships", "segments", "segment_refreshes", "segment_snapshots"}


def test_open_applies_every_migration_on_an_empty_db(db: Database) -> None:
    assert db.current_revision() == Database.head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES


def test_migrate_is_idempotent_and_keeps_data(db: Database) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with db.session() as session:
        session.add(Segment(name="a", definition="{}", created_at=now, updated_at=now))
    head = db.migrate()
    assert db.migrate() == head == Database.head_revision()
    reopened = Database.open(db.engine.url.render_as_string(hide_password=False))
    try:
        with reopened.session() as session:
            assert session.scalars(select(Segment.name)).all() == ["a"]
    finally:
        reopened.dispose()


def test_models_match_the_migrations(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), load_all().metadata)
    assert diff == []


def test_sqlite_file_gets_its_directory_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'segsync.db'}")
    try:
        assert (tmp_path / "new" / "deeper" / "segsync.db").exists()
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        db.dispose()


def test_postgres_urls_use_psycopg3_and_other_databases_are_refused() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(InputError, match="only sqlite"):
        normalise_url("mysql://u@h/db")
    with pytest.raises(InputError, match="not a valid"):
        normalise_url("not a url")


def test_display_url_hides_the_password() -> None:
    db = Database.open("postgresql://user:s3cret@127.0.0.1:1/db", migrate=False)
    try:
        assert "s3cret" not in db.display_url
        assert "***" in db.display_url
    finally:
        db.dispose()


def test_two_processes_starting_at_once_both_migrate(db_url: str) -> None:
    script = (
        "import sys\n"
        "from segsync.storage.db import Database\n"
        "db = Database.open(sys.argv[1])\n"
        "print(db.current_revision())\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == Database.head_revision()


def test_threads_opening_at_once_both_migrate(db_url: str) -> None:
    errors: list[BaseException] = []
    opened: list[Database] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        barrier.wait()
        try:
            opened.append(Database.open(db_url))
        except BaseException as err:  # pragma: no cover - the failure we test for
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in opened:
        database.dispose()
    assert errors == []
    assert len(opened) == 2


def test_session_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with db.session() as session:
        session.add(Segment(name="kept", definition="{}", created_at=now, updated_at=now))

    def fail_half_way() -> None:
        with db.session() as session:
            session.add(Segment(name="lost", definition="{}", created_at=now, updated_at=now))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_half_way()
    with db.session() as session:
        assert session.scalars(select(Segment.name)).all() == ["kept"]


def test_datetimes_come_back_aware_in_utc(db: Database) -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    written = datetime(2025, 7, 1, 9, 30, 15, 123456, tzinfo=lisbon_summer)
    with db.session() as session:
        session.add(Segment(name="t", definition="{}", created_at=written, updated_at=written))
    with db.session() as session:
        row = session.scalars(select(Segment)).one()
    assert row.created_at.tzinfo == UTC
    assert row.created_at == written
    assert row.created_at.hour == 8


def test_naive_datetimes_are_refused(db: Database) -> None:
    naive = datetime(2025, 1, 1)

    def save() -> None:
        with db.session() as session:
            session.add(Segment(name="n", definition="{}", created_at=naive, updated_at=naive))

    with pytest.raises(Exception, match="naive datetime"):
        save()
