"""Fixtures every test package may use: a temporary data dir, a frozen clock, a service
context, and fresh PostgreSQL databases on the local server.

PostgreSQL (127.0.0.1:5432, user ``postgres``, trust auth): tests that need it skip with a
reason when it is unreachable, unless ``SEGSYNC_TEST_REQUIRE_ALL=1``, which turns the skip into
a failure (CI sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from segsync.services.context import ServiceContext, open_context
from segsync.settings import Settings

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
FROZEN_NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_pg_url("postgres"), autocommit=True, connect_timeout=3)


def _require_postgres() -> None:
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        reason = f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) is unreachable: {err}"
        if os.environ.get("SEGSYNC_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason} (SEGSYNC_TEST_REQUIRE_ALL=1)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[str], str]]:
    """A factory: ``postgres_database("label")`` creates a fresh, empty database for this test
    run and returns its URL (``postgresql://postgres@127.0.0.1:5432/segsync_test_...``).
    Every database it made is dropped when the run ends."""
    _require_postgres()
    made: list[str] = []
    run = uuid.uuid4().hex[:8]

    def create(label: str) -> str:
        name = f"segsync_test_{run}_{label}_{len(made)}".lower()
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return _pg_url(name)

    yield create
    with _admin() as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[str], str]) -> str:
    """One fresh database for this test run (dropped at the end)."""
    return postgres_database("run")


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> str:
    """The run's database with its ``public`` schema emptied first: each test starts blank."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_url


@pytest.fixture
def frozen_now() -> Callable[[], datetime]:
    """A clock stopped at ``FROZEN_NOW`` (2025-06-30 12:00 UTC)."""
    return lambda: FROZEN_NOW


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data dir, ignoring any SEGSYNC_* variables of the environment."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=None,
        profiles_url=None,
        secret_key=None,
    )


@pytest.fixture
def service_context(
    settings: Settings, frozen_now: Callable[[], datetime]
) -> Iterator[ServiceContext]:
    """A :class:`ServiceContext` on ``settings`` (SQLite + DuckDB in tmp) with the frozen clock."""
    with open_context(settings, now=frozen_now) as ctx:
        yield ctx
