"""Migration 0010 (the guard rails) on a database with exports and runs from before it: the
hold is on for every existing export (20%, 3x), runs have no hold record and undo nothing, and
the downgrade takes the columns away again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from segsync.storage.db import Database, alembic_config

EXPORT = (
    "INSERT INTO exports (name, connection_id, mapping, removal_policy, list_prefix, schedule, "
    "verify_schedule, created_by, created_at, updated_at) VALUES ('Old', NULL, '{}', 'mirror', "
    "'', '{}', '{\"mode\": \"off\"}', 'a@example.com', :now, :now)"
)


def _migrate(db: Database, revision: str, *, down: bool) -> None:
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_existing_exports_hold_by_default_after_the_upgrade(db: Database) -> None:
    _migrate(db, "0009_run_changes", down=True)
    with db.engine.begin() as connection:
        connection.execute(text(EXPORT), {"now": "2026-12-01 10:00:00"})
        columns = {c["name"] for c in inspect(connection).get_columns("exports")}
    assert "hold_removals" not in columns

    _migrate(db, "head", down=False)

    with db.engine.begin() as connection:
        row = connection.execute(
            text("SELECT hold_removals, hold_growth FROM exports WHERE name = 'Old'")
        ).one()
        runs = {c["name"] for c in inspect(connection).get_columns("runs")}
    assert (row[0], row[1]) == (0.2, 3.0)
    assert {"hold", "undo_of"} <= runs
