"""`segsync profiles register` through the command line, on the data dir's DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from segsync.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir whose profile engine file already holds customers, made by the duckdb client."""
    for name in ("SEGSYNC_DATABASE_URL", "SEGSYNC_PROFILES_URL", "SEGSYNC_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with duckdb.connect(str(data_dir / "profiles.duckdb")) as con:
        con.execute("CREATE TABLE customers (CustomerId BIGINT, City VARCHAR)")
        con.execute("INSERT INTO customers VALUES (1, 'Lisbon'), (2, 'Porto'), (3, NULL)")
    return data_dir


def _run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_register_reads_the_table_in_place(data_dir: Path) -> None:
    code, out, err = _run(
        data_dir, "profiles", "register", "customers", "--key", "CustomerId", "--profile"
    )
    assert code == 0, err
    assert "Registered customers as the profile table, read in place: 3 rows" in out
    code, out, err = _run(data_dir, "profiles", "register", "customers", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["key"], data["is_profile"], data["format"], data["rows"]) == (
        "CustomerId",
        True,
        "table",
        3,
    )
    assert data["attributes"] == {"CustomerId": "number", "City": "text"}
    code, out, _ = _run(data_dir, "profiles", "schema", "--json")
    [table] = json.loads(out)["tables"]
    assert (table["name"], table["format"], table["source"]) == ("customers", "table", None)


def test_register_errors_exit_2_with_the_message(data_dir: Path) -> None:
    code, _, err = _run(data_dir, "profiles", "register", "Customer", "--key", "CustomerId")
    assert code == 2
    assert "no table 'Customer' in the profile engine (duckdb) (did you mean 'customers'?)" in err
    code, _, err = _run(data_dir, "profiles", "register", "customers", "--key", "City")
    assert code == 2
    assert "table 'customers': 1 row(s) have an empty key 'City' (row 3)" in err
