"""Importing CSV, TSV, Parquet and JSON Lines: types, errors naming file/line/column, atomicity."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segsync.domain.catalog import AttrType, TableInfo
from segsync.errors import Conflict, InputError
from segsync.profiles.engine import ProfileEngine

CSV = (
    "CustomerId;Email;City;Spend;Joined;Vip\n"
    "1;ann@example.com;Lisbon;10.5;2024-01-02;true\n"
    "2;bob@example.com;Porto;7;2024-02-03;false\n"
    "3;;Évora;0;2023-12-31;true\n"
)
EXPECTED = {
    "CustomerId": AttrType.NUMBER,
    "Email": AttrType.TEXT,
    "City": AttrType.TEXT,
    "Spend": AttrType.NUMBER,
    "Joined": AttrType.DATE,
    "Vip": AttrType.BOOLEAN,
}


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _rows(engine: ProfileEngine, table: str) -> list[dict[str, object]]:
    data = engine.table(table).order_by("CustomerId").to_pyarrow()
    return list(data.to_pylist())


def test_csv_with_bom_and_semicolons(engine: ProfileEngine, tmp_path: Path) -> None:
    path = _write(tmp_path / "customers.csv", CSV, bom=True)
    result = engine.import_file(path, "customers", key="CustomerId")
    assert (result.table, result.rows, result.key, result.format) == (
        "customers",
        3,
        "CustomerId",
        "csv",
    )
    assert result.columns == EXPECTED
    assert engine.table_info("customers").columns == EXPECTED
    rows = _rows(engine, "customers")
    assert rows[2]["City"] == "Évora"
    assert rows[0]["Joined"] == date(2024, 1, 2)
    assert rows[0]["Vip"] is True


def test_tsv_and_gzipped_csv(engine: ProfileEngine, tmp_path: Path) -> None:
    tsv = _write(tmp_path / "c.tsv", CSV.replace(";", "\t"))
    assert engine.import_file(tsv, "c_tsv").columns == EXPECTED
    gz = tmp_path / "c.csv.gz"
    gz.write_bytes(gzip.compress(CSV.replace(";", ",").encode()))
    assert engine.import_file(gz, "c_gz").rows == 3
    assert engine.table_info("c_gz").columns == EXPECTED


def test_parquet(engine: ProfileEngine, tmp_path: Path) -> None:
    data = pa.table(
        {
            "CustomerId": ["C1", "C2"],
            "Spend": [1.5, None],
            "Joined": pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32()),
            "Vip": [True, False],
        }
    )
    pq.write_table(data, tmp_path / "c.parquet")
    result = engine.import_file(tmp_path / "c.parquet", "c", key="CustomerId")
    assert result.rows == 2
    assert result.columns == {
        "CustomerId": AttrType.TEXT,
        "Spend": AttrType.NUMBER,
        "Joined": AttrType.DATE,
        "Vip": AttrType.BOOLEAN,
    }


def test_json_lines(engine: ProfileEngine, tmp_path: Path) -> None:
    lines = [
        {"CustomerId": 1, "City": "Lisbon", "Spend": 2.5, "Vip": True},
        {"CustomerId": 2, "City": "Porto", "Spend": 3.0, "Vip": False},
    ]
    path = _write(tmp_path / "c.ndjson", "\n".join(json.dumps(line) for line in lines) + "\n")
    result = engine.import_file(path, "c", key="CustomerId")
    assert result.rows == 2
    assert result.columns == {
        "CustomerId": AttrType.NUMBER,
        "City": AttrType.TEXT,
        "Spend": AttrType.NUMBER,
        "Vip": AttrType.BOOLEAN,
    }


def test_progress_reaches_the_file_size(engine: ProfileEngine, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", CSV)
    seen: list[tuple[int, int]] = []
    engine.import_file(path, "c", progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert all(done <= total == size for done, total in seen)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, r"missing.csv: file not found"),
        ("empty.csv", "", r"empty.csv: the file is empty \(no rows\)"),
        ("header.csv", "CustomerId,City\n", r"header.csv: no rows to import"),
        ("data.xlsx", "x", r"data.xlsx: unknown file type .xlsx"),
    ],
)
def test_file_errors_name_the_file(
    engine: ProfileEngine, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        _write(tmp_path / name, content)
    with pytest.raises(InputError, match=message):
        engine.import_file(tmp_path / name, "c")
    assert "c" not in engine.list_tables()


def test_a_directory_is_not_a_file(engine: ProfileEngine, tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="not a file"):
        engine.import_file(tmp_path / "dir.csv", "c")


def test_missing_key_column_lists_the_columns(engine: ProfileEngine, tmp_path: Path) -> None:
    path = _write(tmp_path / "customers.csv", CSV)
    with pytest.raises(InputError) as err:
        engine.import_file(path, "customers", key="CustomerID")
    assert str(err.value) == (
        "column 'CustomerID' not found in customers.csv; "
        "columns are: CustomerId, Email, City, Spend, Joined, Vip"
    )


def test_empty_keys_are_counted_with_their_lines(engine: ProfileEngine, tmp_path: Path) -> None:
    text = "Id,City\nA,Lisbon\n,Porto\nC,Faro\n ,Braga\n"
    path = _write(tmp_path / "people.csv", text)
    expected = r"people.csv: 2 row\(s\) have an empty key 'Id' \(line 3, line 5\)"
    with pytest.raises(InputError, match=expected):
        engine.import_file(path, "people", key="Id")


def test_duplicate_keys_are_counted_with_examples(engine: ProfileEngine, tmp_path: Path) -> None:
    text = "Id,City\n1,a\n2,b\n1,c\n3,d\n2,e\n1,f\n4,g\n"
    path = _write(tmp_path / "people.csv", text)
    with pytest.raises(InputError) as err:
        engine.import_file(path, "people", key="Id")
    assert "people.csv: 2 value(s) of key 'Id' appear more than once (e.g. 1 ×3, 2 ×2)" in str(
        err.value
    )


def test_an_existing_table_needs_replace(engine: ProfileEngine, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", CSV)
    engine.import_file(path, "c")
    with pytest.raises(Conflict, match="add --replace"):
        engine.import_file(path, "c")


@pytest.mark.parametrize(
    "bad",
    [
        "Id,City\n1,a\n1,b\n",  # duplicate keys
        "Other,City\n1,a\n",  # key column missing
        "Id,City\n",  # no rows
    ],
)
def test_a_failed_replace_keeps_the_previous_table(
    engine: ProfileEngine, tmp_path: Path, bad: str
) -> None:
    engine.import_file(_write(tmp_path / "good.csv", "Id,City\n1,a\n2,b\n3,c\n"), "t", key="Id")
    with pytest.raises(InputError):
        engine.import_file(_write(tmp_path / "bad.csv", bad), "t", key="Id", replace=True)
    assert engine.row_count("t") == 3
    assert engine.table_info("t").columns == {"Id": AttrType.NUMBER, "City": AttrType.TEXT}
    assert engine.list_tables() == ["t"]


def test_a_refusing_check_keeps_the_previous_table(engine: ProfileEngine, tmp_path: Path) -> None:
    engine.import_file(_write(tmp_path / "a.csv", "Id,City\n1,a\n"), "t")
    seen: list[TableInfo] = []

    def refuse(info: TableInfo) -> None:
        seen.append(info)
        raise InputError("no thanks")

    with pytest.raises(InputError, match="no thanks"):
        engine.import_file(
            _write(tmp_path / "b.csv", "Id\n1\n2\n"), "t", replace=True, check=refuse
        )
    assert seen == [TableInfo("t", {"Id": AttrType.NUMBER}, 2)]
    assert engine.row_count("t") == 1


def test_replace_swaps_in_the_new_data(engine: ProfileEngine, tmp_path: Path) -> None:
    engine.import_file(_write(tmp_path / "a.csv", "Id,City\n1,a\n"), "t")
    engine.import_file(_write(tmp_path / "b.csv", "Id,Name\n1,x\n2,y\n"), "t", replace=True)
    assert engine.row_count("t") == 2
    assert list(engine.table_info("t").columns) == ["Id", "Name"]


def test_a_ragged_csv_is_reported_with_the_file(duck: ProfileEngine, tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "Id,City\n1,a\n2,b,c\n3,d\n")
    with pytest.raises(InputError, match=r"^bad.csv: .*as many fields as the header"):
        duck.import_file(path, "t")


def test_a_value_that_breaks_the_sampled_type_makes_the_column_text(
    duck: ProfileEngine, tmp_path: Path
) -> None:
    lines = ["Id,Amount", *(f"{i},{i}" for i in range(30_000)), "30000,n/a"]
    path = _write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    result = duck.import_file(path, "t", key="Id")
    assert result.rows == 30_001
    assert result.columns == {"Id": AttrType.NUMBER, "Amount": AttrType.TEXT}
