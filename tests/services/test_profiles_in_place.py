"""Tables read in place (S1): ``register_table`` records a table that already exists in the
profile engine — here a PostgreSQL database and a DuckDB file — and segments query it there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import psycopg
import pytest

from segsync.domain.permissions import Actor, Role
from segsync.errors import Conflict, InputError, PermissionDenied
from segsync.services import profiles, segments
from segsync.services.context import ServiceContext, open_context
from segsync.services.profiles.data_sources import reread_sources
from segsync.services.segments import members as segment_members
from segsync.services.segments import refresh as segment_refresh
from segsync.settings import Settings
from segsync.storage.repositories.profiles import DataSourceRepository
from tests.conftest import FROZEN_NOW

# Orders in the last 90 days with an amount over 50: customers 1 and 3 (4's is too old, 2's too
# small, 5 has none).
TABLES = """
CREATE TABLE customers ("CustomerId" integer, "City" text, "Tier" text);
INSERT INTO customers VALUES (1, 'Lisbon', 'Gold'), (2, 'Porto', 'Silver'),
    (3, 'Lisbon', 'Bronze'), (4, 'Paris', 'Gold'), (5, 'Porto', 'Bronze');
CREATE TABLE orders ("OrderId" integer, "CustomerId" integer, "Amount" numeric(10, 2),
    "OrderDate" timestamp);
INSERT INTO orders VALUES (10, 1, 60, '2025-06-01'), (11, 1, 70, '2025-05-15'),
    (12, 2, 10, '2025-06-10'), (13, 3, 80.5, '2025-04-20'), (14, 4, 55, '2024-01-01');
CREATE TABLE people ("PersonId" text, "Name" text);
INSERT INTO people VALUES ('a', 'Ana'), ('b', 'Bo'), ('a', 'Al'), ('c', 'Cy'), ('c', 'Cid'),
    ('c', 'Col'), ('', 'Blank'), (NULL, 'Null');
"""
BIG_RECENT = """
name: Big recent buyers
rules:
  - related: orders
    conditions:
      all:
        - {attribute: orders.Amount, op: greater_than, value: 50}
        - {attribute: orders.OrderDate, op: within_last, value: {days: 90}}
"""


@pytest.fixture(scope="module")
def warehouse_url(postgres_database: Callable[[str], str]) -> str:
    """A PostgreSQL database holding customers, orders and people, created with psycopg
    (segsync never wrote to it). The tests only read it."""
    url = postgres_database("inplace")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLES)
    return url


def _context(settings: Settings, url: str, now: Callable[[], datetime]) -> Iterator[ServiceContext]:
    with open_context(settings.model_copy(update={"profiles_url": url}), now=now) as ctx:
        yield ctx


@pytest.fixture
def ctx(
    settings: Settings, warehouse_url: str, frozen_now: Callable[[], datetime]
) -> Iterator[ServiceContext]:
    """A service context whose profile engine is the PostgreSQL database."""
    yield from _context(settings, warehouse_url, frozen_now)


def _register_both(ctx: ServiceContext) -> None:
    profiles.register_table(ctx, "customers", key="CustomerId", profile=True)
    profiles.register_table(ctx, "orders", key="OrderId")
    profiles.relate(ctx, "orders", "CustomerId", "customers", "CustomerId")


def test_postgres_tables_registered_in_place_answer_a_related_segment(
    ctx: ServiceContext,
) -> None:
    report = profiles.register_table(ctx, "customers", key="CustomerId", profile=True)
    assert (report.rows, report.is_profile, report.format, report.source) == (
        5,
        True,
        "table",
        None,
    )
    assert set(report.columns) == {"CustomerId", "City", "Tier"}
    orders = profiles.register_table(ctx, "orders", key="OrderId")
    assert (orders.rows, orders.is_profile) == (5, False)
    profiles.relate(ctx, "orders", "CustomerId", "customers", "CustomerId")

    with ctx.db.session() as session:
        record = DataSourceRepository(session).get("customers")
    assert (record.format, record.source_path, record.fingerprint) == ("table", None, None)
    assert (record.row_count, record.key_column, record.imported_at) == (
        5,
        "CustomerId",
        FROZEN_NOW,
    )
    schema = profiles.schema(ctx)
    assert schema.profile_table == "customers"
    assert [(t.name, t.format, t.row_count) for t in schema.tables] == [
        ("customers", "table", 5),
        ("orders", "table", 5),
    ]

    segments.create_segment(ctx, BIG_RECENT)
    [outcome] = segment_refresh.refresh_segments(ctx, ["Big recent buyers"])
    assert (outcome.ok, outcome.member_count) == (True, 2)
    assert segment_members.count_segment(ctx, "Big recent buyers") == 2
    preview = segment_members.preview_segment(ctx, "Big recent buyers")
    assert [row["CustomerId"] for row in preview.rows] == [1, 3]


def test_registering_again_updates_the_record_and_keeps_mark_and_key(
    ctx: ServiceContext,
) -> None:
    _register_both(ctx)
    again = profiles.register_table(ctx, "customers")
    assert (again.is_profile, again.key) == (True, "CustomerId")
    with ctx.db.session() as session:
        assert [s.table_name for s in DataSourceRepository(session).list()] == [
            "customers",
            "orders",
        ]


def test_the_scheduled_reread_leaves_tables_read_in_place_alone(ctx: ServiceContext) -> None:
    _register_both(ctx)
    assert reread_sources(ctx) == []
    with ctx.db.session() as session:
        record = DataSourceRepository(session).get("orders")
    assert (record.format, record.row_count, record.imported_at) == ("table", 5, FROZEN_NOW)


def test_an_unknown_table_is_refused_with_a_suggestion_and_the_tables_there(
    ctx: ServiceContext,
) -> None:
    with pytest.raises(InputError) as caught:
        profiles.register_table(ctx, "customer", key="CustomerId", profile=True)
    message = caught.value.message
    assert "no table 'customer' in the profile engine (postgres)" in message
    assert "did you mean 'customers'?" in message
    assert "tables there: customers, orders, people" in message
    with ctx.db.session() as session:
        assert DataSourceRepository(session).list() == []


def test_a_missing_key_column_is_refused_naming_the_columns(ctx: ServiceContext) -> None:
    with pytest.raises(
        InputError,
        match="column 'Id' not found in table 'customers'; columns are: CustomerId, City, Tier",
    ):
        profiles.register_table(ctx, "customers", key="Id", profile=True)


def test_the_profile_table_needs_a_key(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match="needs a key: add --key COLUMN"):
        profiles.register_table(ctx, "customers", profile=True)


def test_empty_and_duplicate_keys_are_refused_with_count_and_examples(
    ctx: ServiceContext,
) -> None:
    with pytest.raises(InputError, match=r"table 'people': 2 row\(s\) have an empty key"):
        profiles.register_table(ctx, "people", key="PersonId", profile=True)
    with pytest.raises(
        InputError,
        match=r"table 'orders': 1 value\(s\) of key 'CustomerId' appear more than once "
        r"\(e\.g\. 1 ×2\)",
    ):  # a related table's key is checked too when given
        profiles.register_table(ctx, "orders", key="CustomerId")
    with ctx.db.session() as session:
        assert DataSourceRepository(session).list() == []


def test_a_second_profile_table_needs_replace_and_viewers_may_not_register(
    ctx: ServiceContext,
) -> None:
    _register_both(ctx)
    with pytest.raises(Conflict, match="'customers' is already the profile table"):
        profiles.register_table(ctx, "orders", key="OrderId", profile=True)
    moved = profiles.register_table(ctx, "orders", key="OrderId", profile=True, replace=True)
    assert moved.previous_profile_table == "customers"
    assert profiles.catalog(ctx).profile_table == "orders"
    ctx.actor = Actor(user_id=2, email="c@example.com", role=Role.CONTRIBUTOR)
    with pytest.raises(PermissionDenied):
        profiles.register_table(ctx, "customers", key="CustomerId")


def test_a_duckdb_table_made_by_another_client_is_registered_after_its_key_is_checked(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE visits (VisitId INTEGER, Page VARCHAR)")
        con.execute("INSERT INTO visits VALUES (1, 'home'), (2, 'cart'), (2, 'pay'), (3, 'x')")
    for ctx in _context(settings, f"duckdb://{path}", lambda: FROZEN_NOW):
        with pytest.raises(
            InputError,
            match=r"table 'visits': 1 value\(s\) of key 'VisitId' appear more than once "
            r"\(e\.g\. 2 ×2\); keys must be unique",
        ):
            profiles.register_table(ctx, "visits", key="VisitId")
        report = profiles.register_table(ctx, "visits", key="Page")
        assert (report.rows, report.key, report.format) == (4, "Page", "table")
        assert [t.name for t in profiles.schema(ctx).tables] == ["visits"]
