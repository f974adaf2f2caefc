"""The profile engine keeps away from segsync's own tables (S9): reserved names on every engine,
no profiles in the metadata's SQLite file, a schema of their own on a shared PostgreSQL DB."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from segsync.errors import InputError
from segsync.profiles.engine import ProfileEngine
from segsync.profiles.placement import PROFILES_SCHEMA, OwnTables, engine_file
from segsync.services.context import own_tables
from segsync.storage.db import Database

OWN = OwnTables(names=frozenset({"alembic_version", "runs", "audit_events", "users"}))
DATA = pa.table({"id": [1, 2], "x": ["a", "b"]})


def _own_engine(url: str, **kwargs: object) -> ProfileEngine:
    return ProfileEngine.connect(url, own=OWN, **kwargs)  # type: ignore[arg-type]


def test_own_tables_are_every_metadata_table_and_alembics(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        own = own_tables(db)
    finally:
        db.dispose()
    assert {"runs", "audit_events", "users", "data_sources", "alembic_version"} <= own.names
    assert own.metadata_file == tmp_path / "meta.db"


@pytest.mark.parametrize("table", ["runs", "audit_events", "alembic_version"])
def test_an_own_name_is_refused_and_the_table_is_left_alone(
    engine_url: str, tmp_path: Path, table: str
) -> None:
    plain = ProfileEngine.connect(engine_url)
    try:  # a table of that name already exists where the profiles live
        plain.import_arrow(DATA, table)
    finally:
        plain.close()
    engine = _own_engine(engine_url)
    try:
        csv = tmp_path / "t.csv"
        csv.write_text("other\n9\n", encoding="utf-8")
        for write in (
            lambda: engine.import_file(csv, table, replace=True),
            lambda: engine.import_arrow(pa.table({"other": [9]}), table, replace=True),
            lambda: engine.drop_table(table),
        ):
            with pytest.raises(InputError, match=f"table '{table}' is one of segsync's own"):
                write()
        assert engine.table(table).to_pyarrow().to_pylist() == DATA.to_pylist()
        assert engine.schema is None  # no metadata here: the default schema stays
    finally:
        engine.close()


def test_other_names_import_as_before(engine_url: str) -> None:
    engine = _own_engine(engine_url)
    try:
        engine.import_arrow(DATA, "runs_data", key="id")
        assert engine.row_count("runs_data") == 2
    finally:
        engine.close()


def test_a_profiles_url_on_the_metadata_sqlite_file_is_refused(tmp_path: Path) -> None:
    meta = tmp_path / "segsync.db"
    db = Database.open(f"sqlite:///{meta}")
    own = own_tables(db)
    db.dispose()
    for url in (f"sqlite:///{meta}", f"sqlite:///{tmp_path}/../{tmp_path.name}/segsync.db"):
        with pytest.raises(InputError, match="opens segsync's metadata DB file"):
            ProfileEngine.connect(url, own=own)
    with pytest.raises(InputError, match="SQLite has no schemas"):
        ProfileEngine.connect(f"duckdb://{meta}", own=own)


def test_a_sqlite_profiles_file_of_its_own_replaces_in_one_go(tmp_path: Path) -> None:
    engine = ProfileEngine.connect(f"sqlite:///{tmp_path / 'profiles.db'}", own=OWN)
    try:
        engine.import_arrow(DATA, "t", key="id")
        engine.import_arrow(pa.table({"id": [3]}), "t", key="id", replace=True)
        assert engine.table("t").to_pyarrow().to_pylist() == [{"id": 3}]
        with pytest.raises(InputError, match="one of segsync's own tables"):
            engine.import_arrow(DATA, "users", replace=True)
    finally:
        engine.close()


def test_engine_file_reads_paths_as_the_engines_do() -> None:
    assert engine_file("duckdb:///tmp/a.duckdb") == "/tmp/a.duckdb"
    assert engine_file("sqlite://rel.db?mode=ro") == "rel.db"
    assert engine_file("duckdb://:memory:") is None
    assert engine_file("postgres://u@h/db") is None


def test_holding_the_metadata_needs_the_version_table_and_most_own_tables() -> None:
    assert OWN.holds_metadata({"alembic_version", "runs", "audit_events"})
    assert not OWN.holds_metadata({"alembic_version", "users"})  # another app's alembic
    assert not OWN.holds_metadata({"runs", "audit_events", "users"})
    assert not OwnTables().holds_metadata({"alembic_version"})


@pytest.fixture
def shared_postgres(postgres_database: Callable[[str], str]) -> str:
    """A fresh PostgreSQL database holding segsync's metadata (migrated)."""
    url = postgres_database("meta")
    Database.open(url).dispose()
    return url


def _pg_own(url: str) -> OwnTables:
    db = Database.open(url, migrate=False)
    try:
        return own_tables(db)
    finally:
        db.dispose()


def _schemas_of(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (table,)
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def test_a_database_holding_the_metadata_gives_profiles_their_schema(
    shared_postgres: str,
) -> None:
    engine = ProfileEngine.connect(shared_postgres, own=_pg_own(shared_postgres))
    try:
        assert engine.schema == PROFILES_SCHEMA
        assert "(schema segsync_profiles)" in engine.display_url
        engine.import_arrow(DATA, "customers", key="id")
        assert engine.list_tables() == ["customers"]  # segsync's own tables are not in view
        assert int(engine.table("customers").count().execute()) == 2
    finally:
        engine.close()
    assert _schemas_of(shared_postgres, "customers") == [PROFILES_SCHEMA]
    assert _schemas_of(shared_postgres, "runs") == ["public"]


def test_a_chosen_schema_is_used_and_the_metadata_schema_refused(shared_postgres: str) -> None:
    own = _pg_own(shared_postgres)
    engine = ProfileEngine.connect(shared_postgres, own=own, schema="crm")
    try:
        engine.import_arrow(DATA, "people")
    finally:
        engine.close()
    assert _schemas_of(shared_postgres, "people") == ["crm"]
    with pytest.raises(InputError, match="schema 'public' holds segsync's own tables"):
        ProfileEngine.connect(shared_postgres, own=own, schema="public")
    with pytest.raises(InputError, match="SEGSYNC_PROFILES_SCHEMA 'no-dash' is not valid"):
        ProfileEngine.connect(shared_postgres, own=own, schema="no-dash")


def test_a_schema_the_user_may_not_create_is_a_clear_error(shared_postgres: str) -> None:
    role = f"segsync_limited_{uuid.uuid4().hex[:8]}"  # roles are server-wide: a name of its own
    database = shared_postgres.rsplit("/", 1)[1]
    with psycopg.connect(shared_postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
        )
    limited = shared_postgres.replace("postgres@", f"{role}@")
    try:
        also = r"schema 'segsync_profiles' \(database '\w+' also holds segsync's metadata\)"
        with pytest.raises(InputError, match=also + " cannot be used"):
            ProfileEngine.connect(limited, own=_pg_own(shared_postgres))
        assert _schemas_of(shared_postgres, "runs") == ["public"]
    finally:
        with psycopg.connect(shared_postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
