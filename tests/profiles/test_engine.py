"""The profile engine: connecting, tables, attribute types — the same on DuckDB and Postgres."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pytest

from segsync.domain.catalog import AttrType, TableInfo
from segsync.errors import InputError, NotFound
from segsync.profiles.engine import ProfileEngine, attr_type, check_table_name

DATA = pa.table(
    {
        "Id": pa.array([1, 2, 3], pa.int64()),
        "Name": ["a", "b", None],
        "Score": [1.5, 2.5, None],
        "Born": pa.array([date(2000, 1, 1), None, date(1990, 5, 5)], pa.date32()),
        "Seen": pa.array([datetime(2024, 1, 1, 10), None, None], pa.timestamp("us")),
        "Vip": [True, False, None],
    }
)


def test_same_table_info_and_counts_on_every_engine(engine: ProfileEngine) -> None:
    result = engine.import_arrow(DATA, "people", key="Id")
    expected = {
        "Id": AttrType.NUMBER,
        "Name": AttrType.TEXT,
        "Score": AttrType.NUMBER,
        "Born": AttrType.DATE,
        "Seen": AttrType.DATE,
        "Vip": AttrType.BOOLEAN,
    }
    assert result.columns == expected
    assert engine.table_info("people", with_count=True) == TableInfo("people", expected, 3)
    assert engine.row_count("people") == 3
    assert engine.list_tables() == ["people"]
    assert engine.table("people").Name.isnull().sum().execute() == 1


def test_missing_table_is_not_found(engine: ProfileEngine) -> None:
    with pytest.raises(NotFound, match="no table 'ghost'"):
        engine.table("ghost")


def test_duckdb_tables_are_read_without_arrow_as_ibis_reads_them(tmp_path: Path) -> None:
    """On DuckDB the engine lists tables and reads their columns as plain rows (Ibis would go
    through Arrow, which a run never needs otherwise): the same names and the same table
    expressions as Ibis's own, for every column type DuckDB has and for a quoted name."""
    engine = ProfileEngine.connect(f"duckdb://{tmp_path / 'p.duckdb'}")
    try:
        engine.backend.raw_sql(
            'CREATE TABLE "Odd ""name""" (i TINYINT, u UINTEGER, h HUGEINT, d DECIMAL(12, 3), '
            "f FLOAT, g DOUBLE, t VARCHAR NOT NULL, b BOOLEAN, dt DATE, ts TIMESTAMP, "
            "tz TIMESTAMPTZ, tm TIME, iv INTERVAL, id UUID, bl BLOB, l INTEGER[], "
            "s STRUCT(a INTEGER, b VARCHAR), m MAP(VARCHAR, INTEGER), j JSON)"
        )
        engine.import_arrow(DATA, "people", key="Id")
        engine.backend.raw_sql("CREATE VIEW adults AS SELECT * FROM people")
        engine.backend.raw_sql("CREATE TEMP TABLE scratch (x INTEGER)")
        engine.backend.raw_sql("CREATE SCHEMA other")
        engine.backend.raw_sql("CREATE TABLE other.elsewhere (x INTEGER)")
        assert engine.list_tables() == sorted(engine.backend.list_tables())
        assert engine.list_tables() == ['Odd "name"', "adults", "people", "scratch"]
        for name in engine.list_tables():
            ours, ibis_own = engine.table(name), engine.backend.table(name)
            assert ours.schema() == ibis_own.schema(), name
            assert ours.equals(ibis_own), name
        assert engine.table("people").Name.isnull().sum().execute() == 1
        assert engine.has_table("adults")
        assert not engine.has_table("elsewhere")
    finally:
        engine.close()


def test_duckdb_table_types_are_parsed_once_and_follow_the_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine keeps each set of columns' Ibis schema (parsing the types was half the cost of
    a table's expression): a second look at a table parses nothing, and a table whose columns
    changed since is read with its new ones, never the kept ones."""
    engine = ProfileEngine.connect(f"duckdb://{tmp_path / 'p.duckdb'}")
    try:
        engine.backend.raw_sql("CREATE TABLE kept_types (a BIGINT, b VARCHAR)")
        parsed: list[str] = []
        mapper = engine.backend.compiler.type_mapper
        parse = mapper.from_string
        monkeypatch.setattr(
            mapper, "from_string", lambda kind, **kw: parsed.append(kind) or parse(kind, **kw)
        )
        assert engine.table("kept_types").schema() == ibis.schema({"a": "int64", "b": "string"})
        assert parsed == ["BIGINT", "VARCHAR"]
        assert engine.table("kept_types").schema() == ibis.schema({"a": "int64", "b": "string"})
        assert parsed == ["BIGINT", "VARCHAR"]
        engine.backend.raw_sql("ALTER TABLE kept_types ALTER b TYPE DOUBLE")
        engine.backend.raw_sql("ALTER TABLE kept_types ADD COLUMN c DATE")
        changed = engine.table("kept_types")
        assert changed.schema() == ibis.schema({"a": "int64", "b": "float64", "c": "date"})
        assert changed.equals(engine.backend.table("kept_types"))
    finally:
        engine.close()


def test_duckdb_file_directory_is_created(tmp_path: Path) -> None:
    engine = ProfileEngine.connect(f"duckdb://{tmp_path / 'a' / 'b' / 'p.duckdb'}")
    try:
        engine.import_arrow(DATA, "t")
    finally:
        engine.close()
    assert (tmp_path / "a" / "b" / "p.duckdb").exists()
    reopened = ProfileEngine.connect(f"duckdb://{tmp_path / 'a' / 'b' / 'p.duckdb'}")
    try:
        assert reopened.row_count("t") == 3
        assert reopened.name == "duckdb"
    finally:
        reopened.close()


def test_postgresql_scheme_is_accepted(postgres_profiles_url: str) -> None:
    engine = ProfileEngine.connect(postgres_profiles_url)  # postgresql://...
    try:
        assert engine.name == "postgres"
    finally:
        engine.close()


def test_unusable_url_is_an_input_error() -> None:
    with pytest.raises(InputError, match="profile engine URL"):
        ProfileEngine.connect("nosuchbackend://x")


@pytest.mark.parametrize("name", ["", "1abc", "my table", "a;drop", "_segsync_x", "x" * 64])
def test_table_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(InputError, match="is not valid"):
        check_table_name(name)


def test_duplicate_keys_in_arrow_data(engine: ProfileEngine) -> None:
    data = pa.table({"Id": ["a", "b", "a"]})
    with pytest.raises(InputError, match=r"data for t: 1 value\(s\) of key 'Id'.*'a' ×2"):
        engine.import_arrow(data, "t", key="Id")
    assert engine.list_tables() == []


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (dt.int8, AttrType.NUMBER),
        (dt.Decimal(10, 2), AttrType.NUMBER),
        (dt.float32, AttrType.NUMBER),
        (dt.string, AttrType.TEXT),
        (dt.uuid, AttrType.TEXT),
        (dt.date, AttrType.DATE),
        (dt.Timestamp(timezone="UTC"), AttrType.DATE),
        (dt.boolean, AttrType.BOOLEAN),
        (dt.Array(dt.int64), None),
        (dt.binary, None),
    ],
)
def test_engine_types_map_to_attribute_types(dtype: dt.DataType, expected: AttrType | None) -> None:
    assert attr_type(dtype) == expected
