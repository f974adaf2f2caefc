"""Bulk loads (docs/warehouses.md): COPY on PostgreSQL, Parquet on Spark, DuckDB's own readers.
Whatever the path, the engine holds exactly what the file or the Arrow data held: nulls stay
nulls, empty text stays empty, quotes, separators and line breaks inside values survive."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from segsync.profiles import pgcopy
from segsync.profiles.engine import ProfileEngine

TRICKY = pa.table(
    {
        "Id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "Text": ["", None, 'a "quoted", value', "two\nlines", "Évora ✓ \\N"],
        "Score": [0.1, None, -1e20, 3.0, 2.5],
        "Day": pa.array([date(2000, 2, 29), None, date(1970, 1, 1), None, date(2024, 6, 10)]),
        "At": pa.array(
            [datetime(2024, 6, 10, 9, 30, 15, 123456), None, None, None, datetime(1999, 1, 1)],
            pa.timestamp("us"),
        ),
        "Flag": [True, False, None, True, None],
    }
)


def _read_back(engine: ProfileEngine, table: str) -> pa.Table:
    data = engine.table(table).order_by("Id").to_pyarrow()
    return data.cast(TRICKY.schema)


def test_arrow_data_arrives_unchanged(engine: ProfileEngine) -> None:
    result = engine.import_arrow(TRICKY, "tricky", key="Id")

    assert result.rows == 5
    assert _read_back(engine, "tricky").to_pylist() == TRICKY.to_pylist()


def test_a_file_of_many_batches_arrives_whole_and_in_order(
    engine: ProfileEngine, tmp_path: Path
) -> None:
    rows = 150_000  # several of the readers' batches
    ids = pa.array(range(1, rows + 1), pa.int64())
    names = pc.binary_join_element_wise("n", pc.cast(ids, pa.string()), "")
    data = pa.table({"Id": ids, "Name": names})
    path = tmp_path / "many.csv"
    pa_csv.write_csv(data, path)

    result = engine.import_file(path, "many", key="Id")

    assert result.rows == rows
    back = engine.table("many")
    stats = back.aggregate(n=back.count(), low=back.Id.min(), high=back.Id.max()).to_pyarrow()
    assert stats.to_pylist() == [{"n": rows, "low": 1, "high": rows}]
    one = back.filter(back.Id == 77_777).Name.to_pyarrow().to_pylist()
    assert one == ["n77777"]


def test_copy_takes_plain_columns_and_leaves_nested_ones_to_inserts() -> None:
    assert pgcopy.copyable(TRICKY.schema)
    assert not pgcopy.copyable(pa.schema([("Tags", pa.list_(pa.string()))]))
    assert not pgcopy.copyable(pa.schema([("Blob", pa.binary())]))
