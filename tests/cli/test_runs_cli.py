"""``segsync exports run|run-all`` and ``segsync runs ...`` end to end: the real CLI on a data
dir built through the services, against the simulator over HTTP."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from tests.services.runs_support import API_KEY, Person, contacts, people, setup

Invoke = Callable[..., Result]
CLEAN_ENV: dict[str, str | None] = {
    "SEGSYNC_DATA_DIR": None,
    "SEGSYNC_DATABASE_URL": None,
    "SEGSYNC_PROFILES_URL": None,
    "SEGSYNC_SECRET_KEY": None,
    "COLUMNS": "200",
}


@pytest.fixture
def sim(simulator_host: SimulatorHost) -> RunningSimulator:
    """A fresh simulator behind the session's loopback server."""
    return simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0))


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, [*people(120), Person(500, "nope")], segments=("Seg A",))
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def test_exports_run_json_prints_the_run_record(invoke: Invoke, sim: RunningSimulator) -> None:
    result = invoke("exports", "run", "Newsletter", "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) == {"id", "status", "counts", "started_at", "ended_at", "message"}
    assert record["status"] == "successful"
    assert record["counts"]["added"] == 120
    assert record["counts"]["invalid"] == 1
    assert len(contacts(sim)) == 120


def test_exports_run_shows_progress_counts_and_warnings(invoke: Invoke) -> None:
    result = invoke("exports", "run", "Newsletter")

    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Run 1 of export 'Newsletter'" in text
    assert "Successful" in text
    assert "120 added" in text
    assert "set aside: 1 empty or invalid email" in text


def test_a_dry_run_prints_the_plan_and_sends_nothing(invoke: Invoke, sim: RunningSimulator) -> None:
    result = invoke("exports", "run", "Newsletter", "--dry-run")

    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Plan per list" in text
    assert "requests at least 3" in text  # a list to create + 2 batches
    assert "Sample payloads for list 'Seg A'" in text
    assert re.search(r'"Email": "p\d+@example\.com"', result.output)
    assert contacts(sim) == {}
    as_json = json.loads(invoke("exports", "run", "Newsletter", "--dry-run", "--json").stdout)
    assert as_json["plan"]["batches"] == 2


def test_runs_list_show_and_rejects(invoke: Invoke, tmp_path: Path) -> None:
    invoke("exports", "run", "Newsletter")

    listed = json.loads(invoke("runs", "list", "--export", "Newsletter", "--json").stdout)
    shown = json.loads(invoke("runs", "show", "1", "--json").stdout)
    table = invoke("runs", "list").output
    written = invoke("runs", "rejects", "1", "--csv", str(tmp_path / "r.csv"))

    assert [run["id"] for run in listed] == [1]
    assert shown["items_done"] == shown["items_total"] == 120
    assert "Newsletter" in table
    assert "Successful" in table
    assert written.exit_code == 0
    with (tmp_path / "r.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"email": "nope", "profile_id": "500", "kind": "invalid", "reason": rows[0]["reason"]}
    ]
    assert rows[0]["reason"].startswith("invalid")


def test_a_failed_run_exits_1_with_the_reason(invoke: Invoke, sim: RunningSimulator) -> None:
    sim.simulator.faults.revoke_key(API_KEY)

    result = invoke("exports", "run", "Newsletter", "--json")

    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["status"] == "failure"
    assert "API key was rejected" in record["message"]
    assert API_KEY not in result.output


def test_cancel_an_ended_run_is_refused_and_unknown_runs_are_named(invoke: Invoke) -> None:
    invoke("exports", "run", "Newsletter")

    ended = invoke("runs", "cancel", "1")
    missing = invoke("runs", "show", "99")

    assert ended.exit_code == 2
    assert "already ended" in ended.output
    assert missing.exit_code == 2
    assert "no run with id 99" in missing.output


def test_run_all_queues_the_exports_whose_schedule_is_on(invoke: Invoke) -> None:
    result = invoke("exports", "run-all", "--json")
    human = invoke("exports", "run-all")

    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert (record["status"], record["export"]) == ("queued", "Newsletter")
    assert f"Newsletter: run {record['id']} Queued" in human.stdout  # the same run, not a second


@pytest.mark.slow  # a background process
def test_no_wait_starts_the_run_in_the_background(invoke: Invoke, sim: RunningSimulator) -> None:
    started = invoke("exports", "run", "Newsletter", "--no-wait", "--json")

    assert started.exit_code == 0, started.output
    run_id = json.loads(started.stdout)["id"]
    deadline = time.monotonic() + 60
    while True:  # poll the run's record until the background process ended it
        shown = json.loads(invoke("runs", "show", str(run_id), "--json").stdout)
        if shown["status"] not in {"queued", "processing"}:
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert shown["status"] == "successful"
    assert len(contacts(sim)) == 120
