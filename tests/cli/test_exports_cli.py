"""``segsync exports ...`` end to end: the real CLI on a data dir with sample profiles."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.services.users import add_user
from segsync.settings import Settings
from segsync.storage.models.runs import Run
from tests.services.export_fixtures import add_connection, add_run, with_sample

Invoke = Callable[..., Result]
CLEAN_ENV: dict[str, str | None] = {
    "SEGSYNC_DATA_DIR": None,
    "SEGSYNC_DATABASE_URL": None,
    "SEGSYNC_PROFILES_URL": None,
    "SEGSYNC_SECRET_KEY": None,
    "COLUMNS": "200",  # wide enough that Rich does not wrap tables and messages
}


@pytest.fixture
def data_dir(settings: Settings, frozen_now: Callable[[], datetime]) -> Path:
    with open_context(settings, now=frozen_now) as ctx:
        with_sample(ctx)
        add_connection(ctx, "Main", shared=True)
        add_connection(ctx, "Tiny", contract_limit=10)
        add_connection(ctx, "Spare")
    return settings.data_dir


@pytest.fixture
def invoke(data_dir: Path) -> Invoke:
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)

    return run


CREATE = [
    "exports", "create", "--name", "Newsletter", "--connection", "Main", "--email", "Email",
    "--first-name", "FirstName", "--segment", "Gold", "--segment", "Subscribed",
]  # fmt: skip


def _flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def _runs(data_dir: Path) -> list[Run]:
    settings = Settings(data_dir=data_dir, database_url=None)
    with open_context(settings) as ctx, ctx.db.session() as session:
        return list(session.scalars(select(Run)))


def test_create_prints_counts_and_sends_nothing(invoke: Invoke, data_dir: Path) -> None:
    result = invoke(*CREATE, "--map", "MailingCity=City", "--list-prefix", "CDP ")
    assert result.exit_code == 0, result.output
    assert "Saved export 'Newsletter' on connection 'Main'" in _flat(result.stdout)
    assert "Nothing was sent" in _flat(result.stdout)
    assert "CDP Gold" in result.stdout
    assert "Distinct total" in result.stdout
    assert _runs(data_dir) == []


def test_create_json_and_show_json_agree(invoke: Invoke) -> None:
    created = json.loads(invoke(*CREATE, "--json").stdout)
    shown = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)
    assert created == shown
    assert shown["connection"] == "Main"
    assert shown["connection_type"] == "autopilot"
    assert [s["name"] for s in shown["segments"]] == ["Gold", "Subscribed"]
    gold, subscribed = (s["members"] for s in shown["segments"])
    assert max(gold, subscribed) < shown["distinct_total"] <= gold + subscribed
    assert shown["mapping"] == [
        {"field": "Email", "attribute": "Email"},
        {"field": "FirstName", "attribute": "FirstName"},
    ]
    assert shown["removal_policy"] == "mirror"
    assert shown["schedule_description"] == "With every system refresh"


def test_bad_input_exits_2_naming_the_field(invoke: Invoke) -> None:
    result = invoke(*CREATE, "--map", "custom:date:Joined=LifetimeValue")
    assert result.exit_code == 2
    assert "attribute 'LifetimeValue' is number, but custom" in _flat(result.stderr)
    missing = invoke("exports", "create", "--name", "X", "--connection", "Main", "--email",
                     "Emal", "--segment", "Gold")  # fmt: skip
    assert missing.exit_code == 2
    assert "did you mean 'Email'" in missing.stderr
    nothing = invoke("exports", "show", "Nope")
    assert nothing.exit_code == 2
    assert "no export named 'Nope'" in nothing.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Company", "--map 'Company': write FIELD=ATTRIBUTE, e.g. Company=CompanyName"),
        ("=Employer", "--map '=Employer': the destination field before '=' is missing"),
        ("Company=", "--map 'Company=': the profile attribute after '=' is missing"),
        ("unsubscribed=IsSubscribed", "unsubscribed cannot be mapped: segsync never sends it"),
        ("Compnay=City", "unknown Autopilot field 'Compnay'; did you mean Company?"),
    ],
)
def test_map_options_are_read_by_the_cli_and_checked_by_the_destination(
    invoke: Invoke, data_dir: Path, text: str, message: str
) -> None:
    result = invoke(*CREATE, "--map", text)
    assert result.exit_code == 2
    assert message in _flat(result.stderr)


def test_map_options_are_canonicalised(invoke: Invoke) -> None:
    created = invoke(*CREATE, "--map", " mailingcity = City ", "--map", "CUSTOM:String:A  B=City")
    assert created.exit_code == 0, created.output
    shown = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)
    assert shown["mapping"][2:] == [
        {"field": "MailingCity", "attribute": "City"},
        {"field": "custom:string:A B", "attribute": "City"},
    ]


def test_show_warns_over_the_contract_limit(invoke: Invoke) -> None:
    invoke(*CREATE[:5], "Tiny", *CREATE[6:])
    result = invoke("exports", "show", "Newsletter")
    assert result.exit_code == 0
    assert "Contract limit:" in result.stdout
    assert "10 profiles" in result.stdout
    assert "warning:" in result.stderr
    assert "more than the contract" in _flat(result.stderr)


def test_list_search_sort_and_json(invoke: Invoke, data_dir: Path) -> None:
    invoke(*CREATE)
    invoke("exports", "duplicate", "Newsletter", "--name", "Copy", "--connection", "Spare")
    rows = json.loads(invoke("exports", "list", "--json").stdout)
    assert [row["name"] for row in rows] == ["Copy", "Newsletter"]
    assert rows[1]["your_permissions"] == "edit"
    found = json.loads(invoke("exports", "list", "--search", "spare", "--json").stdout)
    assert [row["name"] for row in found] == ["Copy"]
    desc = json.loads(invoke("--json", "exports", "list", "--sort", "name", "--desc").stdout)
    assert [row["name"] for row in desc] == ["Newsletter", "Copy"]
    table = invoke("exports", "list")
    assert "Your permissions" in table.stdout
    assert "Spare" in table.stdout
    bad = invoke("exports", "list", "--sort", "size")
    assert bad.exit_code == 2
    assert "sort: 'size'" in bad.stderr


def test_edit_schedule_and_settings(invoke: Invoke) -> None:
    invoke(*CREATE)
    result = invoke(
        "exports", "edit", "Newsletter", "--schedule", "weekly", "--days", "mon,thu",
        "--at", "06:00", "--tz", "Europe/Lisbon", "--removal", "add-only", "--segment", "Gold",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)
    assert shown["schedule_description"] == "Weekly on Mon, Thu at 06:00 (Europe/Lisbon)"
    assert shown["removal_policy"] == "add-only"
    assert [s["name"] for s in shown["segments"]] == ["Gold"]
    off = invoke("exports", "edit", "Newsletter", "--schedule", "off", "--first-name", "")
    assert off.exit_code == 0, off.output
    shown = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)
    assert shown["schedule"]["mode"] == "off"
    assert shown["schedule"]["weekdays"] == ["mon", "thu"]
    assert [m["field"] for m in shown["mapping"]] == ["Email"]
    moved = invoke("exports", "edit", "Newsletter", "--connection", "Spare", "--json")
    assert json.loads(moved.stdout)["connection"] == "Spare"
    assert invoke("exports", "edit", "Newsletter").exit_code == 2


def test_detach_attach(invoke: Invoke, data_dir: Path) -> None:
    invoke(*CREATE)
    detached = invoke("exports", "detach", "Newsletter")
    assert detached.exit_code == 0
    assert "has no connection now" in _flat(detached.stdout)
    rows = json.loads(invoke("exports", "list", "--json").stdout)
    assert rows[0]["connection"] == "No connection"
    attached = invoke("exports", "attach", "Newsletter", "--connection", "Main", "--json")
    assert attached.exit_code == 0
    assert json.loads(attached.stdout)["connection"] == "Main"


def test_remove_asks_first(
    invoke: Invoke, data_dir: Path, frozen_now: Callable[[], datetime]
) -> None:
    invoke(*CREATE)
    kept = invoke("exports", "remove", "Newsletter", input="n\n")
    assert kept.exit_code == 1
    assert "Nothing removed" in _flat(kept.stderr)
    assert invoke("exports", "show", "Newsletter").exit_code == 0
    export_id = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)["id"]
    with open_context(Settings(data_dir=data_dir), now=frozen_now) as ctx:
        queued = add_run(ctx, export_id, "queued")
    removed = invoke("exports", "remove", "Newsletter", input="y\n")
    assert removed.exit_code == 0
    assert "Removed export 'Newsletter'" in removed.stdout
    assert f"Canceled queued runs: {queued}." in removed.stdout
    assert [run.status for run in _runs(data_dir)] == ["canceled"]
    invoke(*CREATE)
    assert invoke("exports", "remove", "Newsletter", "--yes").exit_code == 0
    assert json.loads(invoke("exports", "list", "--json").stdout) == []


def test_as_user_applies_that_users_permissions(
    invoke: Invoke, settings: Settings, frozen_now: Callable[[], datetime]
) -> None:
    with open_context(settings, now=frozen_now) as ctx:
        add_user(ctx, "cora@example.com", "contributor")
        add_user(ctx, "vic@example.com", "viewer")
    invoke(*CREATE)  # on "Main", shared with contributors
    invoke(*CREATE[:3], "Private", *CREATE[4:5], "Spare", *CREATE[6:])
    viewer = invoke("--as", "vic@example.com", *CREATE[:3], "Mine", *CREATE[4:])
    assert viewer.exit_code == 2
    assert "viewers can see exports but not create them" in _flat(viewer.stderr)
    rows = json.loads(invoke("--as", "cora@example.com", "exports", "list", "--json").stdout)
    assert {row["name"]: row["your_permissions"] for row in rows} == {
        "Newsletter": "edit",
        "Private": "view",
    }
    refused = invoke("--as", "cora@example.com", "exports", "remove", "Private", "--yes")
    assert refused.exit_code == 2
    assert "'Spare', which is not shared" in _flat(refused.stderr)
    mine = invoke("--as", "cora@example.com", *CREATE[:3], "Mine", *CREATE[4:], "--json")
    assert mine.exit_code == 0, mine.output
