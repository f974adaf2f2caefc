"""Bulk SQL through the driver (storage/repositories/driver.py), on SQLite and PostgreSQL:
inserts go as multi-row statements (a run writes hundreds of thousands of rows this way), the
rest row by row, and reads come back as plain tuples."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from segsync.storage.db import Database
from segsync.storage.repositories.driver import MAX_PARAMETERS, execute_many, select_rows

UPSERT = (
    "INSERT INTO bulk_scratch (k, a, b, note) VALUES (?, ?, ?, 'fixed') "
    "ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b"
)


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.session() as setup:
        setup.execute(
            text(
                "CREATE TABLE bulk_scratch "
                "(k INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, note TEXT NOT NULL)"
            )
        )
    with db.session() as session:
        yield session


def executions(session: Session) -> list[bool]:
    """Each statement the driver runs from now on: whether it ran as an executemany."""
    seen: list[bool] = []

    def before(*args: Any) -> None:
        seen.append(bool(args[-1]))  # the listener's last argument: executemany

    event.listen(session.get_bind(), "before_cursor_execute", before)
    return seen


def test_inserts_go_as_multi_row_statements_of_at_most_the_parameter_limit(
    session: Session,
) -> None:
    seen = executions(session)
    rows = [(k, f"a{k}", None if k % 7 == 0 else f"b{k}") for k in range(2_500)]
    execute_many(session, UPSERT, rows)

    per_statement = MAX_PARAMETERS // 3  # three placeholders a row; the literal is not one
    assert seen == [False] * math.ceil(len(rows) / per_statement)  # 8, none row by row
    stored = sorted(select_rows(session, "SELECT k, a, b, note FROM bulk_scratch"))
    assert stored == [(k, a, b, "fixed") for k, a, b in rows]


def test_conflicts_update_the_rows_already_there(session: Session) -> None:
    execute_many(session, UPSERT, [(k, "old", "old") for k in range(1_000)])
    execute_many(session, UPSERT, [(k, "new", None) for k in range(500, 1_500)])

    counts = dict(select_rows(session, "SELECT a, count(*) FROM bulk_scratch GROUP BY a"))
    assert counts == {"old": 500, "new": 1_000}
    (row,) = select_rows(session, "SELECT a, b FROM bulk_scratch WHERE k = ?", 700)
    assert row == ("new", None)


def test_other_statements_run_once_per_row(session: Session) -> None:
    execute_many(session, UPSERT, [(k, "x", "y") for k in range(10)])
    seen = executions(session)
    execute_many(session, "UPDATE bulk_scratch SET a = ? WHERE k = ?", [("z", 3), ("z", 4)])

    assert seen == [True]  # one executemany of two rows
    stored = dict(select_rows(session, "SELECT k, a FROM bulk_scratch WHERE a = ?", "z"))
    assert stored == {3: "z", 4: "z"}


def test_nothing_to_write_runs_nothing(session: Session) -> None:
    seen = executions(session)
    execute_many(session, UPSERT, [])
    assert seen == []


def test_rows_come_back_as_plain_tuples(session: Session) -> None:
    execute_many(session, UPSERT, [(1, "a", "b")])
    (row,) = select_rows(session, "SELECT k, a FROM bulk_scratch")
    assert type(row) is tuple
    assert row == (1, "a")
