"""``segsync runs approve|dismiss|undo`` and the hold options of ``exports edit`` end to end: the
real CLI on a data dir built through the services, against the simulator over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.cli.test_runs_cli import CLEAN_ENV, Invoke, sim
from tests.services.runs_support import list_members, people, setup, write_profiles

__all__ = ["sim"]  # fixture


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(50), hold=("20%", "3x"))
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def drop_to(settings: Settings, tmp_path: Path, n: int) -> None:
    with open_context(settings) as ctx:
        write_profiles(ctx, tmp_path / "people.csv", people(n))


def test_a_held_run_exits_1_shows_its_plan_and_is_approved(
    invoke: Invoke, settings: Settings, sim: RunningSimulator, tmp_path: Path
) -> None:
    assert invoke("exports", "run", "Newsletter").exit_code == 0
    drop_to(settings, tmp_path, 20)  # 60% leave

    held = invoke("exports", "run", "Newsletter", "--json")

    assert held.exit_code == 1, held.output
    record = json.loads(held.stdout)
    assert record["status"] == "held"
    assert record["hold"]["lists"][0]["to_remove"] == 30
    shown = " ".join(invoke("runs", "show", str(record["id"])).output.split())
    assert "Held" in shown
    assert "would lose 30 of its 50 members (60%" in shown
    assert "would leave: p21@example.com" in shown
    assert len(list_members(sim)["Seg A"]) == 50

    approved = invoke("runs", "approve", str(record["id"]), "--json")

    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["status"] == "successful"
    assert len(list_members(sim)["Seg A"]) == 20


def test_dismiss_then_hold_off_then_undo(
    invoke: Invoke, settings: Settings, sim: RunningSimulator, tmp_path: Path
) -> None:
    assert invoke("exports", "run", "Newsletter").exit_code == 0
    drop_to(settings, tmp_path, 20)
    held_id = json.loads(invoke("exports", "run", "Newsletter", "--json").stdout)["id"]

    dismissed = invoke("runs", "dismiss", str(held_id))
    assert dismissed.exit_code == 0, dismissed.output
    assert f"run {held_id} dismissed: nothing was sent" in dismissed.output
    again = invoke("runs", "dismiss", str(held_id))
    assert again.exit_code == 2
    assert "not Held" in again.output

    bad = invoke("exports", "edit", "Newsletter", "--hold-removals", "lots")
    assert bad.exit_code == 2
    assert "hold removals 'lots'" in bad.output
    assert invoke("exports", "edit", "Newsletter", "--hold-removals", "off").exit_code == 0
    assert "Hold:" in invoke("exports", "show", "Newsletter").output
    sent = json.loads(invoke("exports", "run", "Newsletter", "--json").stdout)
    assert sent["status"] == "successful"
    assert len(list_members(sim)["Seg A"]) == 20

    dry = invoke("runs", "undo", str(sent["id"]), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert len(list_members(sim)["Seg A"]) == 20
    undone = invoke("runs", "undo", str(sent["id"]), "--json")
    assert undone.exit_code == 0, undone.output
    record = json.loads(undone.stdout)
    assert (record["status"], record["undo_of"]) == ("successful", sent["id"])
    assert len(list_members(sim)["Seg A"]) == 50
    refused = invoke("runs", "undo", str(sent["id"]))
    assert refused.exit_code == 2
    assert f"already undone by run {record['id']}" in " ".join(refused.output.split())
