# ruff: noqa: E501  (expected messages and the fixture table read best unwrapped)
"""A small hand-made profile set (12 customers, 14 orders) loaded into DuckDB, Postgres and Spark.

Every expected member list in these tests was worked out by hand from the rows below, with the
evaluation time frozen at NOW. The ``engine`` fixture runs each test on the three engines: the
engine conformance suite (docs/warehouses.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import psycopg
import pyarrow as pa
import pytest
import yaml

from segsync.domain.catalog import AttrType, Catalog, Relationship, TableInfo
from segsync.domain.segment_definition import definition_from_dict
from segsync.profiles.engine import ProfileEngine
from segsync.segments.compiler import compile_segment

NOW = datetime(2024, 6, 10, 12, 0)
# A column name and a value built to break out of quoting if they ever reached SQL as text.
EVIL_COLUMN = "Nick'\"; DROP TABLE customers; --"
EVIL_VALUE = "x'); DROP TABLE customers; --"

D = date
T = datetime
# fmt: off
CUSTOMERS: list[tuple[Any, ...]] = [
    # id,  City,           Tier,       BirthDate,       LastVisit,       SignupAt,                 Sub,   LTV,   Visits
    ("C01", "Lisbon",       "Gold",     D(1975, 3, 2),   D(2024, 6, 10),  T(2024, 6, 10, 9, 0),     True,  120.0, 5),
    ("C02", "LISBON",       "Silver",   D(1985, 7, 15),  D(2024, 6, 3),   T(2024, 5, 20, 9, 30),    False, 80.5,  2),
    ("C03", "lisbon",       "Platinum", D(1980, 1, 1),   D(2024, 6, 2),   T(2023, 12, 31, 23, 59),  None,  300.0, 10),
    ("C04", "Porto",        "gold",     D(1990, 11, 30), D(2024, 5, 10),  T(2024, 6, 9, 8, 0),      True,  None,  0),
    ("C05", None,           None,       None,            None,            None,                     None,  0.0,   None),
    ("C06", "",             "Bronze",   D(2000, 2, 29),  D(2024, 3, 10),  T(2024, 3, 10, 12, 0),    True,  -5.0,  1),
    ("C07", "  ",           "Gold",     D(1979, 12, 31), D(2024, 6, 11),  T(2024, 6, 11, 8, 0),     False, 1000.0, 7),
    ("C08", "New York",     "Silver",   D(1965, 5, 5),   D(2024, 2, 29),  T(2022, 1, 15, 0, 0),     True,  50.0,  3),
    ("C09", "Lisboa",       "Bronze",   D(1980, 1, 2),   D(2024, 3, 10),  T(2024, 3, 11, 12, 0),    False, 50.0,  3),
    ("C10", "O'Fallon",     "Platinum", D(1995, 8, 20),  D(2024, 5, 11),  T(2024, 5, 11, 13, 0),    True,  99.99, 4),
    ("C11", "Porto Alegre", "Silver",   D(1980, 1, 1),   D(2023, 12, 10), T(2024, 1, 1, 0, 0),      None,  200.0, 6),
    ("C12", "Évora",        "Gold",     D(1972, 6, 10),  D(2024, 4, 30),  T(2024, 4, 30, 23, 59, 59), True, 150.0, 2),
]
ORDERS: list[tuple[Any, ...]] = [
    # OrderId, CustomerId, OrderDate,               Amount, Channel
    ("O01", "C01", T(2024, 6, 1, 10, 0),   60.0,  "web"),
    ("O02", "C01", T(2024, 5, 15, 10, 0),  70.0,  "store"),
    ("O03", "C01", T(2023, 1, 1, 10, 0),   500.0, "web"),
    ("O04", "C02", T(2024, 6, 5, 10, 0),   30.0,  "web"),
    ("O05", "C03", T(2024, 4, 1, 10, 0),   200.0, "store"),
    ("O06", "C03", T(2024, 6, 9, 10, 0),   20.0,  "WEB"),
    ("O07", "C03", T(2024, 6, 10, 11, 0),  40.0,  "web"),
    ("O08", "C04", T(2024, 1, 1, 10, 0),   100.0, "store"),
    ("O09", "C08", T(2024, 5, 30, 10, 0),  None,  "web"),
    ("O10", "C08", T(2024, 5, 31, 10, 0),  15.0,  "app"),
    ("O11", "C10", T(2024, 3, 13, 10, 0),  150.0, "app"),
    ("O12", "C99", T(2024, 6, 1, 10, 0),   999.0, "web"),    # no such customer
    ("O13", "C12", T(2024, 6, 10, 12, 30), 80.0,  "web"),    # after NOW
    ("O14", "C06", T(2024, 3, 12, 11, 0),  55.0,  "web"),    # just before NOW - 90 days
]
# fmt: on
ALL_IDS = [row[0] for row in CUSTOMERS]

CUSTOMER_SCHEMA = pa.schema(
    [
        ("CustomerId", pa.string()),
        ("City", pa.string()),
        ("LoyaltyTier", pa.string()),
        ("BirthDate", pa.date32()),
        ("LastVisit", pa.date32()),
        ("SignupAt", pa.timestamp("us")),
        ("IsSubscribed", pa.bool_()),
        ("LifetimeValue", pa.float64()),
        ("Visits", pa.int64()),
    ]
)
ORDER_SCHEMA = pa.schema(
    [
        ("OrderId", pa.string()),
        ("CustomerId", pa.string()),
        ("OrderDate", pa.timestamp("us")),
        ("Amount", pa.float64()),
        ("Channel", pa.string()),
    ]
)
TYPES = {
    pa.string(): AttrType.TEXT,
    pa.date32(): AttrType.DATE,
    pa.timestamp("us"): AttrType.DATE,
    pa.bool_(): AttrType.BOOLEAN,
    pa.float64(): AttrType.NUMBER,
    pa.int64(): AttrType.NUMBER,
}


def customers_table() -> pa.Table:
    columns = list(zip(*CUSTOMERS, strict=True))
    table = pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, CUSTOMER_SCHEMA, strict=True)],
        schema=CUSTOMER_SCHEMA,
    )
    evil = [EVIL_VALUE if row[0] == "C01" else "nick" for row in CUSTOMERS]
    return table.append_column(EVIL_COLUMN, pa.array(evil))


def orders_table() -> pa.Table:
    columns = list(zip(*ORDERS, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, ORDER_SCHEMA, strict=True)],
        schema=ORDER_SCHEMA,
    )


def make_catalog() -> Catalog:
    def info(name: str, table: pa.Table) -> TableInfo:
        return TableInfo(name, {f.name: TYPES[f.type] for f in table.schema}, table.num_rows)

    return Catalog(
        profile_table="customers",
        profile_key="CustomerId",
        tables={
            "customers": info("customers", customers_table()),
            "orders": info("orders", orders_table()),
        },
        relationships=[Relationship("orders", "CustomerId", "customers", "CustomerId")],
    )


@dataclass
class Engine:
    """One profile engine holding the fixture data."""

    name: str
    con: Any
    catalog: Catalog

    def table(self, name: str) -> ir.Table:
        return self.con.table(name)

    @property
    def profile(self) -> ir.Table:
        return self.con.table("customers")

    def compile(self, definition: dict[str, Any] | str, now: datetime = NOW) -> ir.Table:
        raw = yaml.safe_load(definition) if isinstance(definition, str) else definition
        return compile_segment(definition_from_dict(raw), self.catalog, self.table, now)

    def members(self, definition: dict[str, Any] | str, now: datetime = NOW) -> list[str]:
        expr = self.compile(definition, now)
        return sorted(str(v) for v in expr.to_pyarrow().column(0).to_pylist())


PG_TYPES = {
    pa.string(): "text",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.bool_(): "boolean",
    pa.float64(): "double precision",
    pa.int64(): "bigint",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fixture_tables() -> list[tuple[str, pa.Table]]:
    return [("customers", customers_table()), ("orders", orders_table())]


# ibis 12's create_table() emits a broken DROP statement with the installed sqlglot, so the
# fixture loads through each engine's own client.
def _load_duckdb(con: Any) -> None:
    for name, data in _fixture_tables():
        con.con.register("_fixture", data)
        con.con.execute(f"CREATE OR REPLACE TABLE {_quote(name)} AS SELECT * FROM _fixture")
        con.con.unregister("_fixture")


def _load_postgres(url: str) -> None:
    with psycopg.connect(url) as pg:
        for name, data in _fixture_tables():
            columns = ", ".join(f"{_quote(f.name)} {PG_TYPES[f.type]}" for f in data.schema)
            pg.execute(f"CREATE TABLE {_quote(name)} ({columns})")
            names = ", ".join(_quote(f.name) for f in data.schema)
            with pg.cursor().copy(f"COPY {_quote(name)} ({names}) FROM STDIN") as copy:
                for row in data.to_pylist():
                    copy.write_row(list(row.values()))


@pytest.fixture(scope="session")
def duckdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("segments") / "profiles.duckdb"
    con = ibis.duckdb.connect(str(path))
    _load_duckdb(con)
    yield Engine("duckdb", con, make_catalog())
    con.disconnect()


@pytest.fixture(scope="session")
def postgres_engine(postgres_database: Callable[[str], str]) -> Iterator[Engine]:
    url = postgres_database("segments")  # dropped when the test run ends
    _load_postgres(url)
    con = ibis.connect(url)
    yield Engine("postgres", con, make_catalog())
    con.disconnect()


@pytest.fixture(scope="session")
def spark_engine(spark_session: Callable[[str], str]) -> Iterator[Engine]:
    """The fixture tables in a Spark database, loaded by segsync's own importer (Arrow to
    Parquet to Spark), on the worker's one SparkContext."""
    engine = ProfileEngine.connect(spark_session("segments"))
    for name, data in _fixture_tables():
        engine.import_arrow(data, name)
    yield Engine("spark", engine.backend, make_catalog())
    engine.close()


ENGINES = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]
"""The engines of the conformance suite: every test taking ``engine`` runs on each, with the
same expected members."""


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture: Engine = request.getfixturevalue(f"{request.param}_engine")
    return fixture
