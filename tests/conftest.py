"""Fixtures every test package may use: a temporary data dir, a frozen clock, a service
context, and fresh PostgreSQL databases on the local server; and the test tiers
(docs/testing.md).

PostgreSQL (127.0.0.1:5432, user ``postgres``, trust auth): tests that need it skip with a
reason when it is unreachable, unless ``SEGSYNC_TEST_REQUIRE_ALL=1``, which turns the skip into
a failure (CI sets it).

Markers are applied here, so a new test gets them without asking: ``postgres`` for every test
that uses :func:`postgres_database` (directly or through another fixture; fixtures that pick
PostgreSQL by parameter mark that parameter), ``browser`` for everything under
``tests/browser``, ``slow`` for everything under ``tests/e2e`` (other slow tests carry
``@pytest.mark.slow`` themselves). ``pytest --fast`` is the inner loop: it deselects the three,
runs the property tests with the ``fast`` Hypothesis profile, and fails a test that reaches
PostgreSQL without the ``postgres`` marker.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from psycopg import sql

from segsync.services.context import ServiceContext, open_context
from segsync.settings import Settings
from segsync.simulator import SimulatorHost, host_in_thread

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
FROZEN_NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)

TESTS = Path(__file__).resolve().parent
FAST_OPTION = "--fast"
FAST_DESELECTS = ("slow", "postgres", "browser", "integration", "spark")
INTEGRATION_DIRS = ("services", "web", "cli", "e2e")
"""Where tests go through the use cases and the edges (web, CLI): the integration tier. The
run engine's own stages (``services/sync``) stay in the fast tier."""
SLOW_SECONDS = 2.0
"""A test that takes longer than this (setup, call and teardown) belongs in the slow tier."""
FAST_EXAMPLES = 25
"""Examples per property test in the fast tier (``make test`` runs each test's own number)."""
_FAST_ENV = "SEGSYNC_TEST_FAST"

hypothesis_settings.register_profile("fast", max_examples=FAST_EXAMPLES, deadline=None)

# pytest-xdist starts its workers with COLUMNS=80 and LINES=24 set, which Rich would take as the
# fixed width of the CLI's console when segsync.cli is imported; without them the width the CLI
# tests ask for (their CliRunner's COLUMNS) applies, as in a run without workers.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)


def examples(n: int) -> int:
    """The number of examples a property test asks for: ``n``, or at most
    :data:`FAST_EXAMPLES` in the fast tier (``pytest --fast``)."""
    return min(n, FAST_EXAMPLES) if os.environ.get(_FAST_ENV) == "1" else n


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        FAST_OPTION,
        action="store_true",
        help="the fast tier: deselect slow, postgres and browser tests; fewer property examples",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption(FAST_OPTION):
        os.environ[_FAST_ENV] = "1"  # read by examples() and the PostgreSQL guard
        hypothesis_settings.load_profile("fast")


def _under(item: pytest.Item, directory: str) -> bool:
    return (TESTS / directory) in item.path.parents


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if "spark_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
        if _under(item, "browser"):
            item.add_marker(pytest.mark.browser)
        if _under(item, "e2e"):
            item.add_marker(pytest.mark.slow)
        if any(_under(item, d) for d in INTEGRATION_DIRS) and not _under(item, "services/sync"):
            item.add_marker(pytest.mark.integration)
    if not config.getoption(FAST_OPTION):
        return
    kept, dropped = [], []
    for item in items:
        skip = any(item.get_closest_marker(name) for name in FAST_DESELECTS)
        (dropped if skip else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


_durations: dict[str, float] = {}
_unmarked_slow: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    total = _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if report.when != "teardown" or total <= SLOW_SECONDS:
        return
    if not any(name in report.keywords for name in FAST_DESELECTS):
        _unmarked_slow[report.nodeid] = total


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the fast-tier tests that took longer than :data:`SLOW_SECONDS`: candidates for the
    ``slow`` marker or a faster fixture. Informative only: a busy machine is slower."""
    if not _unmarked_slow:
        return
    terminalreporter.write_sep("-", f"fast-tier tests over {SLOW_SECONDS:g}s")
    for nodeid, seconds in sorted(_unmarked_slow.items(), key=lambda pair: -pair[1]):
        terminalreporter.write_line(f"{seconds:6.1f}s {nodeid}")


def _pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_pg_url("postgres"), autocommit=True, connect_timeout=3)


def _require_postgres() -> None:
    if os.environ.get(_FAST_ENV) == "1":
        pytest.fail(
            "this test uses PostgreSQL but is not marked `postgres`: mark it (or the fixture "
            "parameter that chooses PostgreSQL), so the fast tier leaves it out"
        )
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


SPARK_TEST_OPTIONS = (
    "master=local[2]&spark.sql.shuffle.partitions=2&spark.default.parallelism=2"
    "&spark.ui.enabled=false&spark.sql.adaptive.enabled=false"
    "&spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1"
)
"""Spark as the tests run it, tuned for many tiny queries: two threads and two partitions
(Spark's default of 200 shuffle partitions costs seconds per query), no adaptive re-planning,
the JVM's quick compiler only (C1: the tests end before C2 would pay off), no web UI."""


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """A factory of ``pyspark://`` profile engine URLs, each a fresh database in a fresh
    warehouse directory; all share this worker's one SparkContext (started here, once: it
    takes seconds). Skips with the reason when Java or PySpark is missing, unless
    ``SEGSYNC_TEST_REQUIRE_ALL=1``, which makes it a failure."""
    from segsync.errors import SegsyncError
    from segsync.profiles import spark

    if os.environ.get(_FAST_ENV) == "1":
        pytest.fail(
            "this test uses Spark but is not marked `spark`: mark it (or the fixture parameter "
            "that chooses Spark), so the fast tier leaves it out"
        )
    reason = None
    if not spark.available():
        reason = "PySpark is not installed (pip install -e '.[test]')"
    elif shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Java is missing (make java: apt-get install openjdk-17-jre-headless)"
    root = tmp_path_factory.mktemp("spark")
    made = 0

    def url(label: str) -> str:
        nonlocal made
        made += 1
        name = f"{label}_{made}"
        return f"pyspark://local/{root / name}?database={name}&{SPARK_TEST_OPTIONS}"

    if reason is None:
        try:
            spark.connect(url("start"), None)
        except SegsyncError as err:
            reason = f"Spark does not start: {err}"
    if reason is not None:
        if os.environ.get("SEGSYNC_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason} (SEGSYNC_TEST_REQUIRE_ALL=1)")
        pytest.skip(reason)
    return url


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


def fresh_settings(data_dir: Path) -> Settings:
    """Settings on ``data_dir``, ignoring any SEGSYNC_* variables of the environment."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=None,
        profiles_url=None,
        profiles_schema=None,
        secret_key=None,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data dir, ignoring any SEGSYNC_* variables of the environment."""
    return fresh_settings(tmp_path / "data")


@pytest.fixture
def service_context(
    settings: Settings, frozen_now: Callable[[], datetime]
) -> Iterator[ServiceContext]:
    """A :class:`ServiceContext` on ``settings`` (SQLite + DuckDB in tmp) with the frozen clock."""
    with open_context(settings, now=frozen_now) as ctx:
        yield ctx


@pytest.fixture(scope="session")
def simulator_host() -> Iterator[SimulatorHost]:
    """One loopback server for the whole run: ``simulator_host.serve(SimulatorConfig(...))``
    puts a fresh simulator behind it and returns it as running there, so tests that need a
    simulator over HTTP pay for no server start and stop of their own."""
    with host_in_thread() as host:
        yield host
