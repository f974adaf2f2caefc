"""Opening a metadata DB already at the newest schema: one query, no Alembic (docs/design.md,
"Start-up"); any other DB still goes through Alembic's upgrade."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

import segsync.storage.db as db_module
from segsync.storage.db import Database, alembic_config, shipped_heads


def test_the_heads_read_from_the_files_are_alembics() -> None:
    assert shipped_heads() == {Database.head_revision()}


def test_a_migrated_db_is_at_the_shipped_heads(db: Database) -> None:
    assert db.at_shipped_heads()


def test_opening_a_db_at_the_heads_does_not_load_alembic(db_url: str) -> None:
    Database.open(db_url).dispose()  # migrated here; the child process only opens it
    script = (
        "import sys\n"
        "from segsync.storage.db import Database\n"
        "db = Database.open(sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
        "db.dispose()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_empty_db_is_not_at_the_heads_and_open_migrates_it(db_url: str) -> None:
    empty = Database.open(db_url, migrate=False)
    try:
        assert not empty.at_shipped_heads()  # no alembic_version table yet
    finally:
        empty.dispose()
    db = Database.open(db_url)
    try:
        assert db.current_revision() == Database.head_revision()
    finally:
        db.dispose()


def test_a_db_one_revision_behind_is_upgraded_on_open(db: Database, db_url: str) -> None:
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    assert db.current_revision() != Database.head_revision()
    assert not db.at_shipped_heads()
    reopened = Database.open(db_url)
    try:
        assert reopened.current_revision() == Database.head_revision()
        assert reopened.at_shipped_heads()
    finally:
        reopened.dispose()


def test_unreadable_migration_files_fall_back_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration file whose revision is not a plain string: no heads, so Alembic decides."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_x.py").write_text("revision = make_id()\ndown_revision = None\n")
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", tmp_path)
    shipped_heads.cache_clear()
    try:
        assert shipped_heads() == frozenset()
    finally:
        monkeypatch.undo()
        shipped_heads.cache_clear()
    assert shipped_heads() == {Database.head_revision()}
