"""``segsync forget``, ``segsync erasures ...`` and ``segsync notifications ...``: the real CLI on
a data dir whose export really ran against the simulator over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.services.notifications import on_run_finished
from segsync.services.runs import run_export
from segsync.services.users import add_user
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from segsync.storage.models.runs import Run
from tests.services.runs_support import API_KEY, contacts, fast, people, setup

Invoke = Callable[..., Result]
CLEAN_ENV: dict[str, str | None] = {
    "SEGSYNC_DATA_DIR": None,
    "SEGSYNC_DATABASE_URL": None,
    "SEGSYNC_PROFILES_URL": None,
    "SEGSYNC_SECRET_KEY": None,
    "SEGSYNC_SMTP_HOST": None,
    "SEGSYNC_WEBHOOK_URL": None,
    "COLUMNS": "200",
}


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(SimulatorConfig(api_keys=[API_KEY], rate_limit=0))


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[RunningSimulator]:
    with serve_in_thread(simulator) as running:
        yield running


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(3))
        assert run_export(ctx, "Newsletter", tune=fast).status == "successful"
        add_user(ctx, "viewer@example.com", "viewer")
        add_user(ctx, "writer@example.com", "contributor")
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def test_forget_erases_and_erasures_list_shows_only_a_digest(
    invoke: Invoke, sim: RunningSimulator
) -> None:
    result = invoke("forget", "P1@example.com", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["found"] is True
    assert report["pending"] is False
    assert report["email"] == "p•••@e•••.com"
    assert [(c["connection"], c["status"], c["deleted"]) for c in report["connections"]] == [
        ("Sim", "done", True)
    ]
    assert "p1@example.com" not in contacts(sim)
    assert "p1@example.com" not in result.stdout

    listed = invoke("erasures", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert sorted(row["status"] for row in rows) == ["done", "suppressed"]
    assert {row["email"] for row in rows} == {rows[0]["email"]}  # one digest, nothing in clear
    assert rows[0]["email"].startswith("sha256:")
    assert "p1@example.com" not in listed.stdout

    human = invoke("forget", "p1@example.com")
    assert human.exit_code == 0, human.output
    assert "was not found in any export's sync state; nothing sent" in human.stdout


def test_forget_with_the_destination_down_exits_1_and_retry_finishes_it(
    invoke: Invoke, sim: RunningSimulator, simulator: Simulator
) -> None:
    simulator.faults.fail_next(1000)  # every request answers 500 for now
    result = invoke("forget", "p2@example.com")
    assert result.exit_code == 1, result.output
    assert "pending" in result.stdout
    assert "erasures retry" in " ".join(result.stdout.split())

    pending = invoke("erasures", "list", "--pending", "--json")
    (row,) = json.loads(pending.stdout)
    assert row["email"] == "p•••@e•••.com"
    assert "500" in row["last_error"]

    simulator.faults.fail_next(0)
    retried = invoke("erasures", "retry", "--json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout) == {"done": 1, "pending": 0}
    assert "p2@example.com" not in contacts(sim)


@pytest.mark.parametrize("who", ["viewer@example.com", "writer@example.com"])
def test_only_administrators_may_forget(invoke: Invoke, sim: RunningSimulator, who: str) -> None:
    result = invoke("--as", who, "forget", "p1@example.com")
    assert result.exit_code == 2
    assert "only administrators erase" in result.output
    assert "p1@example.com" in contacts(sim)
    assert invoke("--as", who, "erasures", "list").exit_code == 2
    assert invoke("--as", who, "notifications", "list").exit_code == 2


def test_notifications_list_and_read(invoke: Invoke, settings: Settings) -> None:
    assert json.loads(invoke("notifications", "list", "--json").stdout) == []
    with open_context(settings) as ctx:
        with ctx.db.session() as session:
            now = ctx.now()
            row = Run(
                export_id=1,
                export_name="Newsletter",
                status="failure",
                actor="a",
                queued_at=now,
                started_at=now,
                ended_at=now,
                message="key rejected",
            )
            session.add(row)
            session.flush()
            run_id = row.id
        notice = on_run_finished(
            ctx,
            export_id=1,
            export_name="Newsletter",
            run_id=run_id,
            status="failure",
            message="key rejected",
        )
        assert notice is not None

    listed = invoke("notifications", "list", "--unread", "--json")
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.stdout)
    assert (item["kind"], item["export"], item["run_id"]) == ("export_failed", "Newsletter", run_id)

    table = invoke("notifications", "list")
    assert "export_failed" in table.stdout
    assert "Newsletter" in table.stdout

    assert invoke("notifications", "read").exit_code == 2  # neither ids nor --all
    missing = invoke("notifications", "read", "999")
    assert missing.exit_code == 2
    assert "999" in missing.output
    marked = invoke("notifications", "read", str(item["id"]), "--json")
    assert json.loads(marked.stdout) == {"marked_read": 1}
    assert json.loads(invoke("notifications", "list", "--unread", "--json").stdout) == []
    assert invoke("notifications", "read", "--all").exit_code == 0
