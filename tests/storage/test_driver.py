"""Bulk SQL through the driver (storage/repositories/driver.py), on SQLite and PostgreSQL:
on SQLite inserts go as multi-row statements (a run writes hundreds of thousands of rows this
way), the rest row by row; on PostgreSQL everything goes as one executemany, which psycopg
pipelines; reads come back as plain tuples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from segsync.storage.db import Database
from segsync.storage.repositories.driver import (
    MAX_PARAMETERS,
    chunk_sizes,
    execute_many,
    in_lists,
    select_rows,
)

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


def postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def test_inserts_go_as_multi_row_statements_of_at_most_the_parameter_limit(
    session: Session,
) -> None:
    seen = executions(session)
    rows = [(k, f"a{k}", None if k % 7 == 0 else f"b{k}") for k in range(2_500)]
    execute_many(session, UPSERT, rows)

    per_statement = MAX_PARAMETERS // 3  # three placeholders a row; the literal is not one
    # 2,500 = 7 × 333 + 169, and 169 = 128 + 32 + 8 + 1: 11 statements, none row by row
    statements = len(rows) // per_statement + (len(rows) % per_statement).bit_count()
    assert seen == ([True] if postgres(session) else [False] * statements)
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


def test_writes_of_any_size_use_a_handful_of_statement_sizes(session: Session) -> None:
    """The driver keeps every distinct statement it ran prepared (SQLite's module the last 128
    per connection): a remainder of every size made a run keep up to 128 large statements.
    Writes of 1 to 400 rows use only the sizes 333 and powers of
    two below it, and every row is written once."""
    texts: set[str] = set()

    def before(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        texts.add(statement)

    event.listen(session.get_bind(), "before_cursor_execute", before)
    k = 0
    for n in range(1, 401):
        execute_many(session, UPSERT, [(k + i, "a", "b") for i in range(n)])
        k += n
    # SQLite: 333, then 256, 128, 64, 32, 16, 8, 4, 2 and 1 rows; PostgreSQL: one row's
    assert len(texts) == (1 if postgres(session) else 1 + 9)
    assert session.scalar(text("SELECT count(*) FROM bulk_scratch")) == k


@settings(deadline=None)  # a busy machine (CI shares its cores) must not fail an example
@given(rows=st.integers(0, 5_000), most=st.integers(1, 400))
def test_chunk_sizes_add_up_to_the_rows_and_come_in_few_sizes(rows: int, most: int) -> None:
    sizes = list(chunk_sizes(rows, most))
    assert sum(sizes) == rows
    assert all(0 < size <= most for size in sizes)
    assert all(size == most or size & (size - 1) == 0 for size in sizes)
    assert sizes == sorted(sizes, reverse=True)


@settings(deadline=None)  # a busy machine (CI shares its cores) must not fail an example
@given(values=st.lists(st.integers(0, 9), max_size=300), most=st.integers(1, 100))
def test_in_lists_take_the_values_in_order_filled_to_a_few_lengths(
    values: list[int], most: int
) -> None:
    chunks = [values[start : start + most] for start in range(0, len(values), most)]
    lists = list(in_lists(values, most))
    assert len(lists) == len(chunks)
    for (marks, params), chunk in zip(lists, chunks, strict=True):
        assert marks == ", ".join(["?"] * len(params))
        assert params[: len(chunk)] == tuple(chunk)
        assert set(params[len(chunk) :]) <= {chunk[-1]}  # filled with its last value only
        assert len(params) == min(most, 1 << (len(chunk) - 1).bit_length())
        assert len(params) < 2 * len(chunk)


def test_in_lists_pad_with_the_last_value_and_query_the_same_rows(session: Session) -> None:
    execute_many(session, UPSERT, [(k, f"a{k}", None) for k in range(10)])
    ((marks, params),) = in_lists([3, 5, 7], 100)
    assert (marks, params) == ("?, ?, ?, ?", (3, 5, 7, 7))
    query = f"SELECT k FROM bulk_scratch WHERE k IN ({marks}) ORDER BY k"
    assert [k for (k,) in select_rows(session, query, *params)] == [3, 5, 7]


SHARED = (
    "INSERT INTO bulk_scratch (k, a, b, note) VALUES (?, $1, ?, $2) "
    "ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b, note = excluded.note"
)


def test_shared_values_are_bound_once_per_statement_and_written_to_every_row(
    session: Session,
) -> None:
    """A run's writes share the export and the time: on SQLite each multi-row statement binds
    them once (binding holds the GIL), not once per row; on PostgreSQL every row gets them."""
    bound: list[int] = []

    def before(_conn: Any, _cursor: Any, _statement: str, params: Any, *_rest: Any) -> None:
        bound.append(len(params))

    event.listen(session.get_bind(), "before_cursor_execute", before)
    rows = [(k, None if k % 5 == 0 else f"b{k}") for k in range(1_200)]
    execute_many(session, SHARED, rows, shared=("shared-a", "shared note"))

    if postgres(session):
        assert bound == [len(rows)]  # one executemany, a whole row each
    else:
        per_statement = (MAX_PARAMETERS - 2) // 2  # two own values a row, two shared
        statements = list(chunk_sizes(len(rows), per_statement))
        assert bound == [2 + 2 * size for size in statements]
    stored = sorted(select_rows(session, "SELECT k, a, b, note FROM bulk_scratch"))
    assert stored == [(k, "shared-a", b, "shared note") for k, b in rows]


def test_shared_values_reach_statements_written_row_by_row(session: Session) -> None:
    execute_many(session, UPSERT, [(k, "x", "y") for k in range(4)])
    execute_many(session, "UPDATE bulk_scratch SET a = $1 WHERE k = ?", [(1,), (2,)], shared=["z"])

    stored = dict(select_rows(session, "SELECT k, a FROM bulk_scratch"))
    assert stored == {0: "x", 1: "z", 2: "z", 3: "x"}


def test_a_statement_naming_other_shared_values_than_given_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match=r"names the shared values \[1, 2\], but 1 were given"):
        execute_many(session, SHARED, [(1, "b")], shared=("only one",))
    with pytest.raises(ValueError, match=r"names the shared values \[\], but 1 were given"):
        execute_many(session, UPSERT, [(1, "a", "b"), (2, "a", "b")], shared=("unused",))
