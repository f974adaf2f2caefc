"""The CLI at a terminal's width and in a shell: list tables fit 80 columns (the columns left
out are named, ``--wide`` shows them), help reads as words, shell completion works, and a
near-miss name gets a "did you mean"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.cli.test_runs_cli import CLEAN_ENV, sim
from tests.services.runs_support import make_export, people, setup

Invoke = Callable[..., Result]
__all__ = ["sim"]  # fixtures
LONG_EXPORT = "Newsletter audiences for the long weekend in Lisbon"
LIST_COMMANDS = [
    ["runs", "list"],
    ["segments", "list"],
    ["segments", "preview", "Seg A"],
    ["exports", "list"],
    ["connections", "list"],
    ["status"],
    ["audit"],
    ["users", "list"],
]


@pytest.fixture
def invoke(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Invoke:
    """A data dir with two exports (one with a long name) and runs of each."""
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(40))
        make_export(ctx, name=LONG_EXPORT, segments=("Seg A", "Seg B"))

    def run(*args: str, columns: int = 80) -> Result:
        runner = CliRunner(env={**CLEAN_ENV, "COLUMNS": str(columns)})
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    for name in ("Newsletter", LONG_EXPORT):
        assert run("exports", "run", name).exit_code == 0
    assert run("exports", "run", LONG_EXPORT, "--dry-run").exit_code == 0
    return run


def test_list_tables_fit_80_columns_and_wide_shows_every_column(invoke: Invoke) -> None:
    for command in LIST_COMMANDS:
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        too_long = [line for line in result.stdout.splitlines() if len(line) > 80]
        assert not too_long, (command, too_long)

    narrow = invoke("runs", "list").stdout
    assert "Requests" not in narrow.split("\n(")[0]  # a column left out at 80 ...
    assert "left out to fit the terminal: " in narrow  # ... and named, with --wide
    assert "--wide shows them" in narrow
    for column in ("Run", "Export", "Status", "Started", "Added", "Removed", "Rejected"):
        assert column in narrow
    assert "Newsletter" in narrow
    wide = invoke("runs", "list", "--wide", columns=250).stdout
    for column in ("Run", "Export", "Status", "Started", "Added", "Requests", "Duration"):
        assert column in wide
    assert "left out" not in wide
    assert LONG_EXPORT in wide


def test_preview_keeps_the_profile_id_and_names_the_attributes_left_out(invoke: Invoke) -> None:
    narrow = invoke("segments", "preview", "Seg A", "--limit", "3", columns=40).stdout

    assert "id" in narrow.splitlines()[1]  # the profile id column is always shown
    assert "left out to fit the terminal" in narrow
    wide = invoke("segments", "preview", "Seg A", "--limit", "3", "--wide", columns=300).stdout
    assert "left out" not in wide


def _commands(command: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, [*path, name]))
    return found


def test_help_reads_as_words_in_every_command() -> None:
    runner = CliRunner(env={**CLEAN_ENV, "COLUMNS": "100"})
    root = typer.main.get_command(app)
    paths = _commands(root, [])
    assert len(paths) > 40
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path
        assert "<str>" not in result.stdout, path
    root_help = runner.invoke(app, ["--help"]).stdout
    assert "--install-completion" in root_help
    assert "--data-dir" in root_help


def _segsync() -> str:
    found = shutil.which("segsync", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the segsync command is not installed next to this Python")
    return found


def test_shell_completion_is_offered_and_completes_commands() -> None:
    segsync = _segsync()
    env = {**os.environ, "SHELL": "/bin/bash"}
    script = subprocess.run(
        [segsync, "--show-completion", "bash"], env=env, capture_output=True, text=True,
        check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "_SEGSYNC_COMPLETE=complete_bash" in script
    completing = {**env, "_SEGSYNC_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    words = subprocess.run(
        [segsync], env={**completing, "COMP_WORDS": "segsync exports r"}, capture_output=True,
        text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert {"run", "run-all", "remove"} <= set(words)
    assert "list" not in words


def test_a_near_miss_name_gets_a_did_you_mean(invoke: Invoke) -> None:
    export = invoke("exports", "show", "Newsleter")
    segment = invoke("segments", "preview", "Seg  a")
    connection = invoke("connections", "show", "sim")

    assert export.exit_code == 2
    assert "no export named 'Newsleter' (did you mean 'Newsletter'?)" in _flat(export.stderr)
    assert "(did you mean 'Seg A'?)" in _flat(segment.stderr)
    assert "no connection named 'sim' (did you mean 'Sim'?)" in _flat(connection.stderr)
    nothing = invoke("exports", "show", "Weekly digest")
    assert "did you mean" not in nothing.stderr


def _flat(text: str) -> str:
    return " ".join(text.split())
