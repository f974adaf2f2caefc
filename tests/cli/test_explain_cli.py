"""``segsync explain EMAIL [--export NAME] [--json]``: the real CLI on a data dir whose export
really ran twice against the simulator over HTTP (tests/services/people_support.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.services.users import add_user
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.cli.test_forget_cli import CLEAN_ENV
from tests.services.people_support import build
from tests.services.runs_support import sim

__all__ = ["sim"]  # fixture
Invoke = Callable[..., Result]


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    with open_context(settings) as ctx:
        build(ctx, sim, tmp_path)
        add_user(ctx, "viewer@example.com", "viewer")
    runner = CliRunner(env=CLEAN_ENV)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def _json(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke("--as", "viewer@example.com", "explain", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_added_and_removed(invoke: Invoke) -> None:
    added = _json(invoke, "p1@example.com")
    assert added["exports"][0]["lists"][0]["state"] == "known"
    assert added["profiles"][0]["exports"][0]["status"] == "sent"
    removed = _json(invoke, "p2@example.com", "--export", "Newsletter")
    assert removed["exports"][0]["lists"][0]["state"] == "not on it"
    assert removed["profiles"][0]["segments"][0]["failed"]["path"] == "rules[0].conditions.all[0]"


def test_invalid_duplicate_and_erased(invoke: Invoke) -> None:
    invalid = _json(invoke, "not-an-email")
    assert invalid["profiles"][0]["exports"][0]["status"] == "invalid"
    duplicate = _json(invoke, "DUP@example.com")
    statuses = {p["profile_id"]: p["exports"][0]["status"] for p in duplicate["profiles"]}
    assert statuses == {"4": "sent", "5": "duplicate"}
    erased = _json(invoke, "p6@example.com")
    assert erased["forgotten"] is True
    assert erased["profiles"] == erased["exports"] == erased["runs"] == []


def test_the_text_answer(invoke: Invoke) -> None:
    result = invoke("explain", "p2@example.com")
    assert result.exit_code == 0, result.output
    assert "Profile 2 (Email: 'p2@example.com')" in result.stdout
    assert "export 'Newsletter': not in its segments" in result.stdout
    assert 'rule 1: Grp in ["a", "ab"] failed (the profile\'s Grp: empty)' in result.stdout
    assert "Export 'Newsletter': contact known" in result.stdout
    forgotten = invoke("explain", "p6@example.com")
    assert "forgotten (erased)" in forgotten.stdout
    assert "Profile" not in forgotten.stdout


def test_an_unknown_export_exits_2_with_a_hint(invoke: Invoke) -> None:
    result = invoke("explain", "p1@example.com", "--export", "Newsleter")
    assert result.exit_code == 2
    assert "did you mean 'Newsletter'?" in result.output
