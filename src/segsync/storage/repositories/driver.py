"""Bulk SQL through the database driver: one statement, many parameter rows, none of the ORM's
per-row work. The run engine writes hundreds of thousands of rows per run this way (the sync
state, the change record). Statements use ``?`` placeholders and are valid on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


def driver_sql(session: Session, statement: str) -> str:
    """``statement`` with ``?`` placeholders in the driver's own parameter style."""
    if session.get_bind().dialect.paramstyle == "qmark":
        return statement
    return statement.replace("?", "%s")


def execute_many(session: Session, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Execute ``statement`` once per row of parameters (nothing when there are none)."""
    if rows:
        session.connection().exec_driver_sql(driver_sql(session, statement), rows)


def select_rows(session: Session, statement: str, *params: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of a query as the driver's own tuples, fetched 10,000 at a time (textual SQL
    has no result types to process, so SQLAlchemy's row objects would only cost time: a run
    reads its whole sync state this way)."""
    result = session.connection().exec_driver_sql(driver_sql(session, statement), params)
    cursor = result.cursor
    try:
        while chunk := cursor.fetchmany(10_000):
            yield from chunk
    finally:
        result.close()


def bind_value(session: Session, column: ColumnElement[Any], value: Any) -> Any:
    """``value`` as the driver stores it in ``column`` (what the ORM would bind). A timestamp
    for SQLite becomes its text here, once, as the driver's own adapter would write it for every
    row of a bulk write (``datetime.isoformat(" ")``)."""
    dialect = session.get_bind().dialect
    processor = column.type.bind_processor(dialect)
    bound = processor(value) if processor is not None else value
    if dialect.name == "sqlite" and isinstance(bound, datetime):
        return bound.isoformat(" ")
    return bound
