"""`segsync init` and `segsync profiles ...` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli import app

runner = CliRunner(env={"COLUMNS": "200"})  # wide: Rich wraps long tmp paths otherwise
CUSTOMERS = "\ufeffCustomerId;City\n1;Lisbon\n2;Porto\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SEGSYNC_DATABASE_URL", "SEGSYNC_PROFILES_URL", "SEGSYNC_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def _run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    # Rich wraps error messages at the terminal width: compare them with spaces normalised.
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_init_creates_the_data_dir_and_migrates(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "init", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["data_dir"] == str(data_dir.resolve())
    assert data["revision"]
    assert (data_dir / "segsync.db").exists()
    code, out, _ = _run(data_dir, "init")
    assert code == 0
    assert "Metadata DB: sqlite:///" in out


def test_import_relate_schema(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "orders.jsonl").write_text(
        '{"OrderId": 1, "CustomerId": 1, "Amount": 9.5}\n'
        '{"OrderId": 2, "CustomerId": 2, "Amount": 3}\n'
    )
    code, out, err = _run(
        data_dir,
        "profiles",
        "import",
        str(tmp_path / "customers.csv"),
        "--table",
        "customers",
        "--key",
        "CustomerId",
        "--profile",
    )
    assert code == 0, err
    assert "Imported 2 rows into customers (the profile table)" in out
    code, out, err = _run(
        data_dir,
        "profiles",
        "import",
        str(tmp_path / "orders.jsonl"),
        "--table",
        "orders",
        "--key",
        "OrderId",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["attributes"] == {
        "OrderId": "number",
        "CustomerId": "number",
        "Amount": "number",
    }
    code, out, _ = _run(data_dir, "profiles", "relate", "orders.CustomerId", "customers.CustomerId")
    assert code == 0
    assert "Related orders.CustomerId → customers.CustomerId" in out
    code, out, _ = _run(data_dir, "--json", "profiles", "schema")
    schema = json.loads(out)
    assert schema["profile_table"] == "customers"
    assert [(t["name"], t["row_count"]) for t in schema["tables"]] == [
        ("customers", 2),
        ("orders", 2),
    ]
    code, out, _ = _run(data_dir, "profiles", "schema")
    assert code == 0
    assert "customers" in out
    assert "CustomerId" in out
    assert "relationships" in out


def test_input_errors_exit_2_with_the_message(data_dir: Path, tmp_path: Path) -> None:
    code, _, err = _run(data_dir, "profiles", "import", str(tmp_path / "nope.csv"), "--table", "t")
    assert code == 2
    assert "nope.csv: file not found" in err
    code, _, err = _run(data_dir, "profiles", "relate", "orders", "customers.CustomerId")
    assert code == 2
    assert "'orders' is not TABLE.COLUMN" in err
    code, _, err = _run(data_dir, "profiles", "sample", "--profiles", "0")
    assert code == 2


def test_sample_then_schema(data_dir: Path) -> None:
    code, out, err = _run(data_dir, "profiles", "sample", "--profiles", "300", "--seed", "9")
    assert code == 0, err
    assert "Loaded 300 customers" in out
    code, out, _ = _run(data_dir, "profiles", "sample", "--profiles", "300", "--json")
    assert json.loads(out)["customers"] == 300
    code, out, _ = _run(data_dir, "profiles", "schema", "--json")
    tables = {t["name"]: t for t in json.loads(out)["tables"]}
    assert tables["customers"]["is_profile"]
    assert tables["customers"]["row_count"] == 300
    assert json.loads(out)["relationships"] == [
        {"child": "orders.CustomerId", "parent": "customers.CustomerId"}
    ]


def test_schema_before_anything_is_imported(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "profiles", "schema")
    assert code == 0
    assert "no profile table yet" in out
