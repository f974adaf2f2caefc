"""Count, preview, member stream, member ids, snapshots and quick-segment suggestions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from segsync.domain.catalog import AttrType
from segsync.errors import InputError
from segsync.profiles.engine import ProfileEngine
from segsync.segments.evaluate import (
    RowBatch,
    ValueCount,
    count,
    member_ids,
    member_rows,
    members_with_attributes,
    plain_types,
    preview,
    stream_members,
    suggest,
)
from segsync.segments.snapshot import (
    SnapshotDiff,
    diff_snapshots,
    read_snapshot,
    snapshot_from,
    write_snapshot,
)
from tests.segments.conftest import ALL_IDS, Engine

KEY = "CustomerId"
# C01 C02 C03 C04 C10 C11 C12: everyone with a city in Lisbon/Porto/O'Fallon/Évora spellings.
SEVEN = {
    "name": "t",
    "rules": [
        {
            "conditions": {
                "any": [
                    {"attribute": "City", "op": "contains", "value": "o"},
                    {"attribute": "City", "op": "ends_with", "value": "a"},
                ]
            }
        },
        {
            "combine": "except",
            "conditions": {"attribute": "City", "op": "in", "value": ["New York", "Lisboa"]},
        },
    ],
}
SEVEN_IDS = ["C01", "C02", "C03", "C04", "C10", "C11", "C12"]


def test_count(engine: Engine) -> None:
    assert count(engine.compile(SEVEN)) == 7
    everyone = {
        "name": "t",
        "rules": [{"conditions": {"attribute": "City", "op": "not_equals", "value": "?"}}],
    }
    assert count(engine.compile(everyone)) == len(ALL_IDS)


def test_preview_is_the_first_members_by_id_with_all_attributes(engine: Engine) -> None:
    result = preview(engine.compile(SEVEN), engine.profile, KEY, limit=3)
    assert result.column(KEY).to_pylist() == ["C01", "C02", "C03"]
    assert result.column_names == list(engine.profile.columns)
    assert result.column("City").to_pylist() == ["Lisbon", "LISBON", "lisbon"]


def test_preview_defaults_to_100_and_takes_chosen_attributes(engine: Engine) -> None:
    result = preview(engine.compile(SEVEN), engine.profile, KEY, attributes=["Visits", "City"])
    assert result.column_names == [KEY, "Visits", "City"]
    assert result.column(KEY).to_pylist() == SEVEN_IDS
    assert result.column("Visits").to_pylist() == [5, 2, 10, 0, 4, 6, 2]


def test_preview_refuses_an_unknown_attribute(duckdb_engine: Engine) -> None:
    with pytest.raises(
        InputError, match=r"unknown profile attribute 'Cty' \(did you mean 'City'\?\)"
    ):
        preview(duckdb_engine.compile(SEVEN), duckdb_engine.profile, KEY, attributes=["Cty"])


def test_stream_members_yields_ordered_batches_of_at_most_batch_size(engine: Engine) -> None:
    batches = list(
        stream_members(
            engine.compile(SEVEN), engine.profile, KEY, ["City", "LifetimeValue"], batch_size=3
        )
    )
    assert [b.num_rows for b in batches] == [3, 3, 1]
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert all(b.schema.names == [KEY, "City", "LifetimeValue"] for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.column(KEY).to_pylist() == SEVEN_IDS
    assert table.column("LifetimeValue").to_pylist() == [
        120.0,
        80.5,
        300.0,
        None,
        99.99,
        200.0,
        150.0,
    ]


def test_member_rows_are_the_streamed_members_as_tuples(engine: Engine) -> None:
    """The same rows in the same order on every engine (on DuckDB from its driver, elsewhere
    from Arrow), with computed columns on DuckDB."""
    attributes = ["City", "LifetimeValue", "Visits"]
    members = engine.compile(SEVEN)
    batches = list(member_rows(members, engine.profile, KEY, attributes, batch_size=3))
    assert [b.num_rows for b in batches] == [3, 3, 1]
    streamed = pa.Table.from_batches(list(stream_members(members, engine.profile, KEY, attributes)))
    assert [row for b in batches for row in b.dicts()] == streamed.to_pylist()
    assert batches[0].column(KEY) == SEVEN_IDS[:3]
    assert batches[2].row(0) == streamed.to_pylist()[6]
    if engine.profile._find_backend().name == "duckdb":
        doubled = [("twice", '"Visits" * 2')]
        rows = member_rows(members, engine.profile, KEY, attributes, computed=doubled)
        assert [r for b in rows for r in b.column("twice")] == [10, 4, 20, 0, 8, 12, 4]


def test_unordered_member_rows_stream_as_the_engine_finds_them() -> None:
    """A run reads members unordered: DuckDB then streams them in the table's own order
    instead of sorting every row (with its payload) before the first comes out. Ordered (the
    default: previews, downloads) they come by key."""
    engine = ProfileEngine(ibis.duckdb.connect(), "duckdb://")
    engine.backend.raw_sql(
        "CREATE TABLE p AS SELECT 1000 - i AS k, 'x' || i AS v FROM range(1000) t(i)"
    )
    table = engine.table("p")
    members = table.filter(table.k % 2 == 0).select("k")
    for ordered in (True, False):
        query = members_with_attributes(members, table, "k", ["v"], ordered=ordered)
        assert ("ORDER BY" in engine.backend.compile(query)) is ordered
        rows = [r for b in member_rows(members, table, "k", ["v"], 64, ordered=ordered)
                for r in b.rows]  # fmt: skip
        assert sorted(rows) == [(k, f"x{1000 - k}") for k in range(2, 1001, 2)]
        assert rows == (sorted(rows) if ordered else sorted(rows, reverse=True))


TYPES = (
    "1::BIGINT AS k, 5::TINYINT AS i8, 7::UINTEGER AS u32, 3::UBIGINT AS u64, 1.5::FLOAT AS f, "
    "2.25::DOUBLE AS d, 'é'::VARCHAR AS t, true AS b, 1.5::DECIMAL(12, 3) AS dec, "
    "DATE '2024-01-02' AS day, TIME '10:00' AS tm, TIMESTAMP '2024-01-02 23:30:00.123456' AS ts, "
    "TIMESTAMP_S '2024-01-02 23:30:00' AS ts_s, TIMESTAMP_MS '2024-01-02 23:30:00.5' AS ts_ms, "
    "'ab'::BLOB AS bl, '{\"x\": 1}'::JSON AS j"
)
OTHER_TYPES = (
    "TIMESTAMPTZ '2024-01-02 23:30:00+00' AS tz, 2::HUGEINT AS h, INTERVAL 3 DAY AS iv, "
    "'6ce920a8-fa68-4d15-b1e4-eb2b6c7af9ee'::UUID AS id, [1, 2] AS l"
)


@pytest.mark.parametrize("more", ["", OTHER_TYPES], ids=["plain", "with-others"])
def test_member_rows_from_duckdb_are_what_arrow_gives(more: str) -> None:
    """Every column type: the driver's values where they equal Arrow's (every type of
    :func:`plain_types`), Arrow's otherwise (a time zone would need pytz in the driver)."""
    engine = ProfileEngine(ibis.duckdb.connect(), "duckdb://")
    select = f"{TYPES}, {more}" if more else TYPES
    nulls = ", ".join(["NULL"] * (select.count(" AS ") - 1))
    engine.backend.raw_sql(f"CREATE TABLE p AS SELECT {select} UNION ALL SELECT 2, {nulls}")
    table = engine.table("p")
    assert plain_types(table.schema()) is not bool(more)
    columns = [c for c in table.columns if c != "k"]
    members = table.select("k")
    rows = [r for b in member_rows(members, table, "k", columns) for r in b.dicts()]
    arrow = [r for b in stream_members(members, table, "k", columns) for r in b.to_pylist()]
    assert [{k: (type(v), v) for k, v in r.items()} for r in rows] == [
        {k: (type(v), v) for k, v in r.items()} for r in arrow
    ]
    assert rows[1] == {"k": 2} | dict.fromkeys(columns)


def test_types_the_driver_gives_otherwise_than_arrow_are_not_plain() -> None:
    for dtype in ("timestamp('UTC')", "timestamp(9)", "decimal(38, 0)", "uuid", "interval"):
        assert not plain_types(ibis.schema({"x": dtype})), dtype
    for dtype in ("timestamp(6)", "timestamp", "decimal(38, 2)", "uint64", "float32", "time"):
        assert plain_types(ibis.schema({"x": dtype})), dtype
    assert RowBatch(("a",), []).num_rows == 0


def test_stream_of_an_empty_segment_yields_nothing(engine: Engine) -> None:
    nobody = {
        "name": "t",
        "rules": [{"conditions": {"attribute": "City", "op": "equals", "value": "Atlantis"}}],
    }
    assert (
        sum(
            b.num_rows
            for b in stream_members(engine.compile(nobody), engine.profile, KEY, ["City"])
        )
        == 0
    )


def test_member_ids_and_snapshot_diff(engine: Engine, tmp_path: Path) -> None:
    first = snapshot_from(member_ids(engine.compile(SEVEN), batch_size=2))
    assert first.to_pylist() == SEVEN_IDS
    lisbon = {
        "name": "t",
        "rules": [{"conditions": {"attribute": "City", "op": "contains", "value": "lisb"}}],
    }
    second = snapshot_from(member_ids(engine.compile(lisbon)))  # C01 C02 C03 C09
    assert diff_snapshots(first, second) == SnapshotDiff(entered=1, left=4, stayed=3)
    assert diff_snapshots(None, second) == SnapshotDiff(entered=4, left=0, stayed=0)
    path = tmp_path / "snapshots" / "segment-1.parquet"
    assert read_snapshot(path) is None
    write_snapshot(second, path)
    restored = read_snapshot(path)
    assert restored is not None
    assert restored.to_pylist() == ["C01", "C02", "C03", "C09"]
    assert not path.with_name(path.name + ".partial").exists()


def test_snapshot_ids_are_strings_unique_and_sorted() -> None:
    ids = snapshot_from([pa.array([3, 1, 2]), pa.array([2, 10])])
    assert ids.type == pa.string()
    assert ids.to_pylist() == ["1", "10", "2", "3"]


def test_suggest_top_values_of_a_text_attribute(engine: Engine) -> None:
    result = suggest(engine.profile, "LoyaltyTier", AttrType.TEXT)
    assert result.total == 12
    assert result.empty_count == 1
    assert result.distinct_count == 5
    assert result.top_values == [
        ValueCount("Gold", 3),
        ValueCount("Silver", 3),
        ValueCount("Bronze", 2),
        ValueCount("Platinum", 2),
        ValueCount("gold", 1),
    ]
    assert suggest(engine.profile, "LoyaltyTier", AttrType.TEXT, top=2).top_values == [
        ValueCount("Gold", 3),
        ValueCount("Silver", 3),
    ]


def test_suggest_counts_blank_text_as_empty(engine: Engine) -> None:
    result = suggest(engine.profile, "City", AttrType.TEXT)
    assert result.empty_count == 3
    assert sum(v.count for v in result.top_values) == 9


def test_suggest_booleans(engine: Engine) -> None:
    result = suggest(engine.profile, "IsSubscribed", AttrType.BOOLEAN)
    assert result.top_values == [ValueCount(True, 6), ValueCount(False, 3)]
    assert result.empty_count == 3


def test_suggest_percentiles_of_a_number(engine: Engine) -> None:
    result = suggest(engine.profile, "LifetimeValue", AttrType.NUMBER)
    # Sorted: -5 0 50 50 80.5 99.99 120 150 200 300 1000 (C04 is empty).
    expected: dict[str, Any] = {
        "min": -5.0,
        "p25": 50.0,
        "p50": 99.99,
        "p75": 175.0,
        "p90": 300.0,
        "max": 1000.0,
    }
    assert result.percentiles == pytest.approx(expected)
    assert result.empty_count == 1
    assert result.top_values == []


def test_suggest_percentiles_of_a_date(engine: Engine) -> None:
    result = suggest(engine.profile, "BirthDate", AttrType.DATE)
    assert result.percentiles["min"] == date(1965, 5, 5)
    assert result.percentiles["p50"] == date(1980, 1, 1)
    assert result.percentiles["max"] == date(2000, 2, 29)
    assert all(isinstance(v, date) for v in result.percentiles.values())


def test_suggest_refuses_an_unknown_attribute(duckdb_engine: Engine) -> None:
    with pytest.raises(InputError, match="unknown profile attribute 'Tier'"):
        suggest(duckdb_engine.profile, "Tier", AttrType.TEXT)
