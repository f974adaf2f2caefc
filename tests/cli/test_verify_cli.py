"""``segsync exports verify`` and ``exports verify-schedule`` end to end: the real CLI on a data
dir built through the services, against the simulator over HTTP, drift planted by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.cli.test_runs_cli import CLEAN_ENV, sim
from tests.services.runs_support import API_KEY, list_members, people, setup

Invoke = Callable[..., Result]
__all__ = ["sim"]  # fixtures


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(120))
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    assert run("exports", "run", "Newsletter").exit_code == 0
    return run


def by_hand(sim: RunningSimulator, method: str, path: str, body: object = None) -> None:
    response = httpx.request(
        method, sim.base_url + path, json=body, headers={"autopilotapikey": API_KEY}
    )
    assert response.status_code == 200, response.text


def seg_a(sim: RunningSimulator) -> str:
    return next(i.list_id for i in sim.simulator.state.lists.values() if i.title == "Seg A")


def test_verify_reports_drift_with_its_cost_then_repair_fixes_it(
    invoke: Invoke, sim: RunningSimulator
) -> None:
    list_id = seg_a(sim)
    by_hand(
        sim, "POST", "/contact", {"contact": {"Email": "x@example.org", "_autopilot_list": list_id}}
    )
    by_hand(sim, "DELETE", f"/list/{list_id}/contact/p7@example.com")

    found = invoke("exports", "verify", "Newsletter")

    assert found.exit_code == 1, found.output
    cost = (
        "about 3 request(s) to read the lists back (1 look at the lists + 2 page(s) over 1 list(s))"
    )
    assert cost in " ".join(found.stderr.split())
    text = " ".join(found.stdout.split())
    assert "1 orphan(s), 1 missing" in text
    assert "orphans: x@example.org" in text
    assert "missing: p7@example.com" in text
    assert "3 request(s)" in text

    repaired = invoke("exports", "verify", "Newsletter", "--repair", "--json")

    assert repaired.exit_code == 0, repaired.output
    report = json.loads(repaired.stdout)
    assert report["kind"] == "repair"
    assert report["repaired"]["added"] == 1
    assert report["repaired"]["removed"] == 1
    assert report["totals"]["orphans"] == 1
    assert list_members(sim)["Seg A"] == {f"p{i}@example.com" for i in range(1, 121)}

    clean = invoke("exports", "verify", "Newsletter", "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["drift"] == 0
    shown = invoke("runs", "show", str(report["run"]), "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["counts"]["removed"] == 1
    assert json.loads(shown.stdout)["kind"] == "repair"
    human = " ".join(invoke("runs", "show", str(report["run"])).stdout.split())
    assert f"Run {report['run']} of export 'Newsletter' (repair)" in human
    assert "orphans: x@example.org" in human


def test_bad_input_and_refused_users_exit_2(invoke: Invoke) -> None:
    assert invoke("exports", "verify", "Nope").exit_code == 2
    assert invoke("users", "add", "v@example.com", "--role", "viewer").exit_code == 0
    refused = invoke("--as", "v@example.com", "exports", "verify", "Newsletter", "--repair")
    assert refused.exit_code == 2
    assert "error:" in refused.stderr


def test_verify_schedule_is_set_shown_and_checked(invoke: Invoke) -> None:
    assert invoke("exports", "verify-schedule", "Newsletter", "--json").exit_code == 0
    done = invoke(
        "exports", "verify-schedule", "Newsletter", "weekly", "--days", "sun", "--at", "03:00"
    )
    assert done.exit_code == 0, done.output
    assert "Weekly on Sun at 03:00 (UTC)" in done.stdout
    shown = json.loads(invoke("exports", "verify-schedule", "Newsletter", "--json").stdout)
    assert shown["verify_schedule"]["mode"] == "own"
    details = json.loads(invoke("exports", "show", "Newsletter", "--json").stdout)
    assert details["verify_schedule_description"] == "Weekly on Sun at 03:00 (UTC)"
    bad = invoke("exports", "verify-schedule", "Newsletter", "weekly", "--at", "03:00")
    assert bad.exit_code == 2
    assert "--days" in bad.stderr
    assert invoke("exports", "verify-schedule", "Newsletter", "with-system").exit_code == 2
    off = invoke("exports", "verify-schedule", "Newsletter", "off", "--json")
    assert json.loads(off.stdout)["verify_schedule"]["mode"] == "off"
