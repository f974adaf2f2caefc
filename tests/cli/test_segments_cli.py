"""``segsync segments ...`` end to end: the real CLI on a data dir with a small profile table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services import profiles, users
from segsync.services.context import open_context
from segsync.settings import Settings
from tests.services.test_segments import CUSTOMERS, CUSTOMERS_WITHOUT_CITY, GOLD, LISBON

Invoke = Callable[..., Result]
CLEAN_ENV: dict[str, str | None] = {
    "SEGSYNC_DATA_DIR": None,
    "SEGSYNC_DATABASE_URL": None,
    "SEGSYNC_PROFILES_URL": None,
    "SEGSYNC_SECRET_KEY": None,
    "COLUMNS": "200",  # wide enough that Rich does not wrap tables and messages
}


def _import(settings: Settings, tmp_path: Path, text: str, *, replace: bool = False) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(text)
    with open_context(settings) as ctx:
        profiles.import_profiles(
            ctx, path, "customers", key="CustomerId", profile=True, replace=replace
        )


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    _import(settings, tmp_path, CUSTOMERS)
    with open_context(settings) as ctx:
        users.add_user(ctx, "viewer@example.com", "viewer")
    return settings.data_dir


@pytest.fixture
def invoke(data_dir: Path) -> Invoke:
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)

    return run


def _definition(tmp_path: Path, text: str, name: str = "def.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_create_refresh_list_show_count(invoke: Invoke, tmp_path: Path) -> None:
    created = invoke("segments", "create", "--file", _definition(tmp_path, LISBON))
    assert created.exit_code == 0, created.stderr
    assert "Created segment 'Lisbon' as a draft" in _flat(created.stdout)

    listed = json.loads(invoke("segments", "list", "--json").stdout)
    assert [(s["name"], s["status"], s["member_count"]) for s in listed] == [
        ("Lisbon", "draft", None)
    ]

    refreshed = invoke("segments", "refresh", "Lisbon", "--json")
    assert refreshed.exit_code == 0, refreshed.stderr
    [outcome] = json.loads(refreshed.stdout)
    assert (outcome["status"], outcome["member_count"], outcome["entered"]) == ("active", 3, 3)

    table = invoke("segments", "list")
    assert "Lisbon" in table.stdout
    assert "active" in table.stdout

    shown = json.loads(invoke("segments", "show", "Lisbon", "--json").stdout)
    assert shown["status"] == "active"
    assert shown["member_count"] == 3
    assert shown["last_entered"] == 3
    assert shown["definition"]["rules"][0]["conditions"]["all"][0]["attribute"] == "City"
    assert [h["member_count"] for h in shown["history"]] == [3]
    assert shown["exports"] == []
    human = invoke("segments", "show", "Lisbon")
    assert "Used by exports: none" in human.stdout
    assert "attribute: City" in human.stdout

    counted = invoke("segments", "count", "Lisbon", "--json")
    assert json.loads(counted.stdout) == {"name": "Lisbon", "count": 3}
    assert invoke("segments", "count", "Lisbon").stdout.strip() == "3"


def test_create_reads_stdin_and_reports_validation_errors_with_exit_2(
    invoke: Invoke, tmp_path: Path
) -> None:
    bad = invoke("segments", "create", "--file", "-", input=LISBON.replace("City", "Cty"))
    assert bad.exit_code == 2
    assert "rules[0].conditions.all[0]: unknown attribute 'Cty' (did you mean 'City'?)" in _flat(
        bad.stderr
    )
    assert json.loads(invoke("segments", "list", "--json").stdout) == []
    missing = invoke("segments", "create", "--file", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    good = invoke("segments", "create", "--file", "-", "--json", input=GOLD)
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["status"] == "draft"


def test_update_notes_the_stale_count_and_delete(invoke: Invoke, tmp_path: Path) -> None:
    invoke("segments", "create", "--file", _definition(tmp_path, LISBON))
    invoke("segments", "refresh", "Lisbon")
    porto = LISBON.replace("name: Lisbon", "name: Porto").replace("lisbon", "porto")
    updated = invoke("segments", "update", "Lisbon", "--file", _definition(tmp_path, porto))
    assert updated.exit_code == 0, updated.stderr
    out = _flat(updated.stdout)
    assert "Updated segment 'Porto' (renamed from 'Lisbon')" in out
    assert "Its member count (3) is out of date until `segsync segments refresh Porto`" in out

    deleted = invoke("segments", "delete", "Porto")
    assert deleted.exit_code == 0, deleted.stderr
    assert invoke("segments", "show", "Porto").exit_code == 2


def test_refresh_all_exits_1_when_one_segment_fails(
    invoke: Invoke, tmp_path: Path, settings: Settings
) -> None:
    invoke("segments", "create", "--file", _definition(tmp_path, LISBON, "a.yaml"))
    invoke("segments", "create", "--file", _definition(tmp_path, GOLD, "b.yaml"))
    assert invoke("segments", "refresh", "--all").exit_code == 0
    _import(settings, tmp_path, CUSTOMERS_WITHOUT_CITY, replace=True)
    result = invoke("segments", "refresh", "--all")
    assert result.exit_code == 1
    assert "1 of 2 segments failed to refresh: Lisbon" in _flat(result.stderr)
    assert "unknown attribute 'City'" in result.stdout
    listed = {
        s["name"]: s["status"] for s in json.loads(invoke("segments", "list", "--json").stdout)
    }
    assert listed == {"Gold": "active", "Lisbon": "failed"}
    assert invoke("segments", "refresh").exit_code == 2
    assert invoke("segments", "refresh", "Gold", "--all").exit_code == 2


def test_preview_members_csv_and_suggest(invoke: Invoke, tmp_path: Path) -> None:
    invoke("segments", "create", "--file", _definition(tmp_path, LISBON))
    preview = json.loads(invoke("segments", "preview", "Lisbon", "--limit", "2", "--json").stdout)
    assert preview["columns"] == ["CustomerId", "City", "Tier", "Score"]
    assert [r["CustomerId"] for r in preview["rows"]] == [1, 3]
    assert "LISBON" in invoke("segments", "preview", "Lisbon").stdout

    target = tmp_path / "lisbon.csv"
    written = invoke("segments", "members", "Lisbon", "--csv", str(target))
    assert written.exit_code == 0, written.stderr
    assert "Wrote 3 members of 'Lisbon'" in _flat(written.stdout)
    assert pa_csv.read_csv(target).column("CustomerId").to_pylist() == [1, 3, 5]

    city = json.loads(invoke("segments", "suggest", "City", "--json").stdout)
    assert city["top_values"][0] == {"value": "Lisbon", "count": 2}
    human = invoke("segments", "suggest", "Score")
    assert human.exit_code == 0, human.stderr
    assert "p50" in human.stdout
    assert invoke("segments", "suggest", "Nope").exit_code == 2


def test_viewers_are_refused_changes_with_exit_2(invoke: Invoke, tmp_path: Path) -> None:
    path = _definition(tmp_path, LISBON)
    assert invoke("segments", "create", "--file", path).exit_code == 0
    as_viewer = ("--as", "viewer@example.com", "segments")
    for args in (
        ("create", "--file", _definition(tmp_path, GOLD, "gold.yaml")),
        ("update", "Lisbon", "--file", path),
        ("refresh", "Lisbon"),
        ("delete", "Lisbon"),
    ):
        result = invoke(*as_viewer, *args)
        assert result.exit_code == 2, args
        assert "viewers can see segments but not" in result.stderr
    assert invoke(*as_viewer, "list").exit_code == 0
    assert invoke(*as_viewer, "count", "Lisbon").stdout.strip() == "3"
