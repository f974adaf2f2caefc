"""Start-up: help screens and ``runs list`` do not import the heavy stacks (docs/design.md,
"Start-up"). Deterministic: each test reads which modules a fresh interpreter imported, never how
long it took. A failure names the module and the chain that pulled it in; move that import into
the function that needs it (docs/contributing.md, "Keeping start-up light")."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from segsync.cli.app import COMMANDS, build_command

HEAVY = (
    "sqlalchemy",
    "alembic",
    "ibis",
    "duckdb",
    "pyarrow",
    "faker",
    "fastapi",
    "uvicorn",
    "httpx",
    "jinja2",
    "pandas",
)
"""Never imported by a help screen or ``--version``."""

NOT_FOR_HELP = (*HEAVY, "pydantic_settings")
"""Help screens do not read the settings either: a command reads them when it first needs
them (``CliState.settings``), though the root callback runs for ``segsync runs --help`` too."""

DB_ONLY = tuple(name for name in HEAVY if name != "sqlalchemy")
"""``runs list`` reads the metadata DB (SQLAlchemy) and nothing else heavy: no migration run
(Alembic), no profile engine, no web or HTTP stack."""

HELP_ONLY_EXCEPTIONS = {("connections", "add"), ("connections", "edit")}
"""Help screens allowed to load more: ``connections add --help`` lists the destination types
and both list the types' own settings (``--region``), which the registry knows only by loading
each destination (and its HTTP client)."""


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a fresh ``python ARGS`` to its end; it must succeed."""
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


def _imported_by(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """Run ``python -X importtime -m segsync ARGS``: each top-level package it imported, with
    the first module of ours that led to it, and the command's output."""
    result = _python("-X", "importtime", "-m", "segsync", *args, env=env)
    found: dict[str, str] = {}
    chain: list[tuple[int, str]] = []  # (depth, module) of the imports being reported, outermost
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    # -X importtime reports a module after its own imports; read backwards to see parents first.
    for line in reversed(lines):
        name_field = line.rsplit("|", 1)[1]
        depth = (len(name_field) - len(name_field.lstrip())) // 2
        module = name_field.strip()
        chain = [(d, m) for d, m in chain if d < depth] + [(depth, module)]
        top = module.split(".")[0]
        if top in NOT_FOR_HELP and top not in found:
            ours = [m for _, m in chain if m.startswith("segsync")]
            found[top] = " <- ".join(reversed(ours)) or module
    return found, result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["runs", "--help"],
        ["runs", "list", "--help"],
        ["--data-dir", "/nonexistent/segsync", "exports", "run", "--help"],
    ],
    ids=" ".join,
)
def test_the_command_line_starts_without_the_heavy_packages(args: list[str]) -> None:
    found, output = _imported_by(*args)
    assert output.strip(), "the command printed nothing"
    assert not found, f"`segsync {' '.join(args)}` imported {found}"


# Renders every help screen of the command tree in one interpreter, then lists what is loaded.
_EVERY_HELP = """
import json, sys
import typer
from typer.testing import CliRunner
from segsync.cli import app

skip = {skip}
heavy = {heavy}

def walk(command, path):
    yield path
    if isinstance(command, typer.core.TyperGroup):
        context = typer.Context(command)
        for name in command.list_commands(context):
            yield from walk(command.get_command(context, name), [*path, name])

runner = CliRunner()
screens = [path for path in walk(typer.main.get_command(app), []) if tuple(path) not in skip]
for path in screens:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
loaded = sorted({{m.split(".")[0] for m, module in sys.modules.items() if module}} & set(heavy))
print(json.dumps({{"screens": len(screens), "loaded": loaded}}))
"""


def test_no_help_screen_imports_the_heavy_packages() -> None:
    code = _EVERY_HELP.format(skip=sorted(HELP_ONLY_EXCEPTIONS), heavy=list(NOT_FOR_HELP))
    report = json.loads(_last_line(_python("-c", code)))
    assert report["screens"] > 50  # the whole tree was walked
    assert report["loaded"] == [], f"help screens imported {report['loaded']}"


def test_runs_list_reads_the_metadata_db_without_migrating_or_the_profile_engine(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEGSYNC_DATA_DIR": str(data_dir)}
    first, _ = _imported_by("init", env=env)
    assert "alembic" in first  # the first open migrates: the check below is not vacuous
    found, output = _imported_by("runs", "list", "--json", env=env)
    assert json.loads(output) == []
    assert "sqlalchemy" in found
    assert not {name: found[name] for name in DB_ONLY if name in found}


_MODULES_AFTER = """
import json, sys
from segsync.cli import app
try:
    app({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(name for name, module in sys.modules.items() if module)))
"""


def _modules_after(*argv: str, env: dict[str, str]) -> tuple[set[str], str]:
    """Run ``segsync ARGV`` in a fresh interpreter: the modules it had imported at its end (a
    ``None`` in ``sys.modules`` is a refused import, not one), and what it printed before."""
    result = _python("-c", _MODULES_AFTER.format(argv=list(argv)), env=env)
    output, _, modules = result.stdout.strip().rpartition("\n")
    return set(json.loads(modules)), output


def test_a_command_printing_json_never_imports_rich_nor_httpx_its_own_cli(tmp_path: Path) -> None:
    """rich draws tables and coloured lines, and its console is made on first use; httpx's own
    command line (click, rich, pygments) is never imported by segsync: a run's ``--json``
    start pays for neither (docs/design.md, "Start-up"). The same command in a table does."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEGSYNC_DATA_DIR": str(tmp_path)}
    _python("-m", "segsync", "init", env=env)
    watched = {"rich", "httpx", "httpx._main", "pygments"}
    as_json, output = _modules_after("runs", "list", "--json", env=env)
    assert json.loads(output) == []
    assert as_json & watched == set()
    as_table, _ = _modules_after("runs", "list", env=env)
    assert as_table & watched == {"rich"}
    code = "import segsync, httpx, json, sys; print(json.dumps([m for m in sys.modules]))"
    loaded = json.loads(_python("-c", code).stdout)
    assert "httpx" in loaded
    assert "pygments" not in loaded
    assert "click" not in loaded


def test_runs_list_loads_only_the_runs_commands(tmp_path: Path) -> None:
    """The top-level commands are built on first use (cli/app.py, COMMANDS): ``runs list``
    imports the module of ``runs`` (which adds ``exports run`` to the exports group) and none
    of the others'."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEGSYNC_DATA_DIR": str(tmp_path)}
    modules, _ = _modules_after("runs", "list", "--json", env=env)
    loaded = {name for name in modules if name.startswith("segsync.cli.")}
    own = {COMMANDS["runs"].module, COMMANDS["exports"].module}
    others = {entry.module for entry in COMMANDS.values()} - own
    assert own <= loaded
    assert not loaded & others, f"runs list imported {sorted(loaded & others)}"


def test_every_command_group_is_reachable_from_the_root() -> None:
    """A Typer group defined in a CLI module but missing from COMMANDS would never be listed
    nor run: every one is named there (or added to a group that is)."""
    named = {(entry.module, entry.attribute) for entry in COMMANDS.values()}
    reachable: set[int] = set()
    for module_name, attribute in named:
        target = getattr(importlib.import_module(module_name), attribute)
        if isinstance(target, typer.Typer):
            reachable.update(id(group.typer_instance) for group in target.registered_groups)
            reachable.add(id(target))
    package = Path(importlib.import_module("segsync.cli").__file__ or "").parent
    groups = {
        f"{module.name}.{name}"
        for module in pkgutil.iter_modules([str(package)])
        for name, value in vars(importlib.import_module(f"segsync.cli.{module.name}")).items()
        if isinstance(value, typer.Typer) and id(value) not in reachable and name != "app"
    }
    assert not groups, f"groups not in segsync.cli.app.COMMANDS: {sorted(groups)}"


def test_the_root_help_lists_each_command_as_built_in_full() -> None:
    """``segsync --help`` draws each group from its summary (not its commands): the summary
    carries the same name, help and panel as the full build."""

    def listed(command: Any) -> tuple[object, ...]:
        return (
            command.name,
            command.get_short_help_str(80),
            command.hidden,
            command.deprecated,
            getattr(command, "rich_help_panel", None),
        )

    for name in COMMANDS:
        full, summary = build_command(name), build_command(name, summary=True)
        assert listed(summary) == listed(full), name
        assert listed(summary)[1], f"{name} has no help to list"


def test_a_command_reads_the_settings_and_sets_up_logging_when_it_needs_them(
    tmp_path: Path,
) -> None:
    """The root callback no longer reads the settings; the first command that needs them does,
    and sets up logging at ``SEGSYNC_LOG_LEVEL`` then — a help screen does neither."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SEGSYNC_DATA_DIR": str(tmp_path / "data"),
        "SEGSYNC_LOG_LEVEL": "DEBUG",
    }
    code = (
        "import logging, sys\n"
        "from segsync.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(logging.getLevelName(logging.getLogger().level))\n"
    )

    help_screen = _python("-c", code, "runs", "--help", env=env)
    assert _last_line(help_screen) == "WARNING"  # Python's default: nothing set up
    assert _last_line(_python("-c", code, "runs", "list", "--json", env=env)) == "DEBUG"


def test_embedded_stores_do_not_import_the_postgresql_driver(tmp_path: Path) -> None:
    """On SQLite metadata and DuckDB profiles (the embedded defaults) a command that opens the
    profile engine leaves psycopg unimported: only a PostgreSQL store pays for it (0.13 s of
    every run's start-up on this machine)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEGSYNC_DATA_DIR": str(tmp_path)}
    _python("-m", "segsync", "init", env=env)
    code = (
        "import sys\n"
        "from segsync.cli import app\n"
        "try:\n"
        "    app(['profiles', 'schema'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', 'psycopg')))\n"
    )
    loaded = _last_line(_python("-c", code, env=env))
    assert "'duckdb'" in loaded  # the profile engine was opened: the check is not vacuous
    assert "psycopg" not in loaded


def test_the_command_sets_everything_apart_from_the_collector_at_exit() -> None:
    """Python's full collections while it takes the modules apart at exit cost every command
    0.50–0.72 s with the run engine loaded; ``segsync`` freezes the heap at exit instead. An
    exit handler registered before the command (so it runs after the command's) sees it."""
    code = (
        "import atexit, gc, sys\n"
        "from segsync.cli import main\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "print('frozen before:', gc.get_freeze_count() > 0)\n"
        "sys.argv = ['segsync', '--version']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    lines = result.stdout.strip().splitlines()
    assert (lines[0], lines[-1]) == ("frozen before: False", "frozen at exit: True")
