"""The profile engine on DuckDB (a file in tmp), on a fresh PostgreSQL database and on a fresh
Spark database (local mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from segsync.profiles.engine import ProfileEngine


@pytest.fixture(scope="session")
def postgres_profiles_url(postgres_database: Callable[[str], str]) -> str:
    return postgres_database("profiles")


ENGINES = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'engine' / 'profiles.duckdb'}"
    if request.param == "spark":  # a fresh database on the worker's one SparkContext
        return str(request.getfixturevalue("spark_session")("profiles"))
    url = str(request.getfixturevalue("postgres_profiles_url"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def engine(engine_url: str) -> Iterator[ProfileEngine]:
    opened = ProfileEngine.connect(engine_url)
    yield opened
    opened.close()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[ProfileEngine]:
    opened = ProfileEngine.connect(f"duckdb://{tmp_path / 'duck.duckdb'}")
    yield opened
    opened.close()
