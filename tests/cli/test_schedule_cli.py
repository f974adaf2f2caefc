"""``segsync schedule show|set|off`` and ``segsync status`` through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.services.users import add_user
from segsync.settings import Settings
from tests.services.export_fixtures import add_connection, with_sample

Invoke = Callable[..., Result]
CLEAN_ENV: dict[str, str | None] = {
    "SEGSYNC_DATA_DIR": None,
    "SEGSYNC_DATABASE_URL": None,
    "SEGSYNC_PROFILES_URL": None,
    "SEGSYNC_SECRET_KEY": None,
    "COLUMNS": "200",
}


@pytest.fixture
def invoke(settings: Settings) -> Invoke:
    with open_context(settings) as ctx:
        with_sample(ctx, profiles=50)
        add_connection(ctx, "Main", shared=True)
        add_user(ctx, "viewer@example.com", "viewer")
        add_user(ctx, "contrib@example.com", "contributor")
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def test_set_show_and_off(invoke: Invoke) -> None:
    set_ = invoke(
        "schedule", "set", "--weekly", "mon,thu", "--times", "06:00,18:00", "--tz", "Europe/Lisbon"
    )
    shown = invoke("schedule", "show", "--json")
    human = invoke("schedule", "show", "--next", "2")
    off = invoke("schedule", "off", "--json")

    assert set_.exit_code == 0, set_.output
    assert "Weekly on Mon, Thu at 06:00 and 18:00 (Europe/Lisbon)" in set_.stdout
    data = json.loads(shown.stdout)
    assert (data["enabled"], data["frequency"], data["weekdays"], data["times"]) == (
        True,
        "weekly",
        ["mon", "thu"],
        ["06:00", "18:00"],
    )
    assert len(data["next_due"]) == 5
    due = [datetime.fromisoformat(d.replace("Z", "+00:00")) for d in data["next_due"]]
    assert due == sorted(due)
    assert all(d > datetime.now(UTC) for d in due)
    local = [datetime.fromisoformat(d) for d in data["next_due_local"]]
    assert {(d.hour, d.minute) for d in local} <= {(6, 0), (18, 0)}
    assert {d.weekday() for d in local} <= {0, 3}
    assert human.stdout.count("Europe/Lisbon") == 1
    assert human.stdout.count(" WE") == 2  # two next times, local with WET or WEST
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["enabled"] is False
    assert json.loads(off.stdout)["times"] == ["06:00", "18:00"]


@pytest.mark.parametrize("who", ["viewer@example.com", "contrib@example.com"])
def test_only_administrators_use_the_schedule_commands(invoke: Invoke, who: str) -> None:
    for args in (
        ["schedule", "show"],
        ["schedule", "set", "--daily", "--times", "06:00", "--tz", "UTC"],
        ["schedule", "off"],
    ):
        result = invoke("--as", who, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "only administrators change the system refresh schedule" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--daily", "--times", "01:00,02:00,03:00,04:00,05:00", "--tz", "UTC"], "times: 5 times"),
        (["--daily", "--times", "06:00", "--tz", "Mars/Olympus"], "tz: unknown time zone"),
        (["--times", "06:00", "--tz", "UTC"], "frequency: give --daily"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    invoke: Invoke, args: list[str], message: str
) -> None:
    result = invoke("schedule", "set", *args)
    shown = invoke("schedule", "show", "--json")

    assert result.exit_code == 2
    assert message in result.output
    assert json.loads(shown.stdout)["enabled"] is False


def test_status_lists_data_sources_segments_and_exports(invoke: Invoke) -> None:
    invoke(
        "exports", "create", "--name", "Newsletter", "--connection", "Main", "--email", "Email",
        "--segment", "Gold",
    )  # fmt: skip
    invoke("schedule", "set", "--daily", "--times", "06:00", "--tz", "UTC")

    result = invoke("--as", "viewer@example.com", "status", "--json")
    human = invoke("status")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    tasks = {(t["kind"], t["name"]): t for t in data["tasks"]}
    assert set(tasks) == {
        ("data_source", "customers"),
        ("data_source", "orders"),
        ("segment", "Gold"),
        ("segment", "Subscribed"),
        ("export", "Newsletter"),
    }
    assert tasks[("data_source", "customers")]["status"] == "generated"
    assert tasks[("segment", "Gold")]["status"] == "draft"
    assert tasks[("export", "Newsletter")]["status"] == "never run"
    assert tasks[("export", "Newsletter")]["next_due"] == data["system"]["next_due"]
    assert data["system"]["next_due"].endswith("06:00:00+00:00")
    assert human.exit_code == 0, human.output
    assert "System schedule: Daily at 06:00 (UTC)" in human.stdout
    assert "Newsletter" in human.stdout
    assert "never run" in human.stdout
