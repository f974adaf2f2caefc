"""Profile imports never touch segsync's own tables (S9): the real CLI on a data dir built
through the services, with a run against the simulator over HTTP, on SQLite metadata with
DuckDB profiles and on one PostgreSQL database holding both."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from segsync.cli import app
from segsync.profiles.placement import PROFILES_SCHEMA
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import SimulatorConfig, SimulatorHost
from tests.services.runs_support import API_KEY, people, setup

Invoke = Callable[..., Result]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest) -> str | None:
    """``None``: SQLite metadata and DuckDB profiles (the defaults); else one fresh PostgreSQL
    database for both."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_database")("shared"))


def _ran_once(
    settings: Settings, url: str | None, simulator_host: SimulatorHost, tmp_path: Path
) -> Invoke:
    """A data dir with profiles (30 people, group a), segments, a connection and an export that
    ran once, so the audit trail and the runs table have rows; ``url`` holds both the metadata
    and the profiles (``None``: the SQLite and DuckDB files of the data dir)."""
    settings = settings.model_copy(update={"database_url": url, "profiles_url": url})
    sim = simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0))
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(30), segments=("Seg A",))
    env = {name: None for name in ("SEGSYNC_DATA_DIR", "SEGSYNC_SECRET_KEY")}
    env |= {"SEGSYNC_DATABASE_URL": url, "SEGSYNC_PROFILES_URL": url}
    runner = CliRunner(env={**env, "COLUMNS": "200", "SEGSYNC_PROFILES_SCHEMA": None})

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    ran = run("exports", "run", "Newsletter", "--json")
    assert ran.exit_code == 0, ran.output
    return run


@pytest.fixture
def invoke(
    settings: Settings, shared_url: str | None, simulator_host: SimulatorHost, tmp_path: Path
) -> Invoke:
    return _ran_once(settings, shared_url, simulator_host, tmp_path)


def _json(invoke: Invoke, *args: str) -> object:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("table", ["audit_events", "runs"])
def test_importing_over_an_own_table_is_refused_and_changes_nothing(
    invoke: Invoke, tmp_path: Path, table: str
) -> None:
    audit_before = _json(invoke, "audit")
    runs_before = _json(invoke, "runs", "list")
    assert audit_before
    assert runs_before
    data = tmp_path / "evil.csv"
    data.write_text("id,action\n1,x\n2,y\n", encoding="utf-8")

    result = invoke("profiles", "import", str(data), "--table", table, "--replace")

    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"table '{table}' is one of segsync's own tables" in message
    assert "nothing was changed" in message
    assert "Traceback" not in result.output
    assert _json(invoke, "audit") == audit_before
    assert _json(invoke, "runs", "list") == runs_before
    assert invoke("audit").exit_code == 0
    schema = _json(invoke, "profiles", "schema")
    assert isinstance(schema, dict)
    assert [t["name"] for t in schema["tables"]] == ["people"]


def test_registering_an_own_table_is_refused(invoke: Invoke) -> None:
    result = invoke("profiles", "register", "users", "--key", "id")

    assert result.exit_code == 2, result.output
    assert "table 'users' is one of segsync's own tables" in " ".join(result.stderr.split())


def test_a_normal_import_lands_beside_the_metadata_safely_and_segments_count_from_it(
    invoke: Invoke, shared_url: str | None, tmp_path: Path
) -> None:
    data = tmp_path / "people.csv"
    rows = ["id,Email,FirstName,LastName,Grp,Score"]
    rows += [f"{i},p{i}@example.com,F{i},L{i},{'a' if i <= 7 else 'b'},1" for i in range(1, 13)]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = invoke("profiles", "import", str(data), "--table", "people", "--replace")

    assert result.exit_code == 0, result.output
    assert _json(invoke, "segments", "count", "Seg A") == {"name": "Seg A", "count": 7}
    if shared_url is None:
        return
    with psycopg.connect(shared_url) as conn:
        where = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'people'"
        ).fetchall()
        audit_columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'audit_events'"
            )
        }
    assert where == [(PROFILES_SCHEMA,)]
    assert {"action", "actor", "summary"} <= audit_columns


@pytest.mark.postgres
def test_the_metadata_schema_is_refused_as_the_profiles_schema(
    postgres_database: Callable[[str], str], settings: Settings
) -> None:
    url = postgres_database("public")
    runner = CliRunner(
        env={
            "SEGSYNC_DATABASE_URL": url,
            "SEGSYNC_PROFILES_URL": url,
            "SEGSYNC_PROFILES_SCHEMA": "public",
            "COLUMNS": "200",
        }
    )
    result = runner.invoke(app, ["--data-dir", str(settings.data_dir), "profiles", "schema"])

    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "schema 'public' holds segsync's own tables" in message
    with psycopg.connect(url) as conn:
        schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
    assert PROFILES_SCHEMA not in schemas


def test_a_profiles_url_on_the_metadata_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    metadata = settings.data_dir / "segsync.db"
    runner = CliRunner(env={"SEGSYNC_DATABASE_URL": None, "COLUMNS": "200"})
    data = tmp_path / "t.csv"
    data.write_text("id\n1\n", encoding="utf-8")

    def run(profiles_url: str | None, *args: str) -> Result:
        env = {"SEGSYNC_PROFILES_URL": profiles_url}
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args], env=env)

    assert run(None, "init").exit_code == 0
    for url in (f"sqlite:///{metadata}", f"duckdb://{metadata}"):
        result = run(url, "profiles", "import", str(data), "--table", "t")
        assert result.exit_code == 2, result.output
        assert "opens segsync's metadata DB file" in " ".join(result.stderr.split())
    assert run(None, "audit").exit_code == 0
    assert run(None, "profiles", "import", str(data), "--table", "t").exit_code == 0


def test_profiles_left_in_the_metadata_schema_get_a_way_to_move(
    settings: Settings,
    postgres_database: Callable[[str], str],
    simulator_host: SimulatorHost,
    tmp_path: Path,
) -> None:
    url = postgres_database("upgrade")
    invoke = _ran_once(settings, url, simulator_host, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:  # where an older segsync left it
        conn.execute(f"ALTER TABLE {PROFILES_SCHEMA}.people SET SCHEMA public")

    result = invoke("segments", "count", "Seg A")

    assert result.exit_code == 2, result.output
    move = f"ALTER TABLE people SET SCHEMA {PROFILES_SCHEMA}"
    assert move in " ".join(result.stderr.split())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(move)
    assert _json(invoke, "segments", "count", "Seg A") == {"name": "Seg A", "count": 30}
