"""Keeping profile tables apart from segsync's own tables (the metadata DB).

Three guards, applied when the profile engine connects and before every write:

- a profile table never takes the name of one of segsync's own tables (every table of the
  metadata plus ``alembic_version``), on any engine;
- a profile engine URL that names the metadata DB's own SQLite file is refused (SQLite has no
  schemas to keep the two apart);
- on PostgreSQL, when the database the profiles URL opens also holds segsync's metadata, the
  profile tables go to a schema of their own (``segsync_profiles``, or
  ``SEGSYNC_PROFILES_SCHEMA``); a schema that holds the metadata is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segsync.errors import InputError

PROFILES_SCHEMA = "segsync_profiles"
"""The schema profile tables go to when they share a PostgreSQL database with the metadata."""
VERSION_TABLE = "alembic_version"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class OwnTables:
    """segsync's own tables, as the profile engine must know them: their names (the metadata's
    tables and ``alembic_version``) and, when the metadata DB is a SQLite file, that file."""

    names: frozenset[str] = frozenset()
    metadata_file: Path | None = None

    def refuse(self, table: str) -> None:
        """``InputError`` when ``table`` is the name of one of segsync's own tables."""
        if table in self.names:
            raise InputError(
                f"table {table!r} is one of segsync's own tables (its metadata: exports, runs, "
                "the audit trail, ...), so no profile table may have that name and nothing was "
                f"changed; choose another name, e.g. {table}_data"
            )

    def holds_metadata(self, present: set[str]) -> bool:
        """Whether a namespace with the tables ``present`` holds segsync's metadata: Alembic's
        version table and more than half of segsync's own tables (an older or newer segsync
        has most of them; an unrelated application hardly any)."""
        own = self.names - {VERSION_TABLE}
        found = own & present
        return bool(own) and VERSION_TABLE in present and 2 * len(found) > len(own)


def engine_file(url: str) -> str | None:
    """The file path of a ``duckdb://`` or ``sqlite://`` URL as the engines read it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in {"duckdb", "sqlite"}:
        return None
    path = rest.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def refuse_metadata_file(url: str, own: OwnTables, shown_url: str) -> None:
    """``InputError`` when the profile engine URL opens the metadata DB's SQLite file."""
    path = engine_file(url)
    meta = own.metadata_file
    if path is None or meta is None or not (os.path.exists(path) and meta.exists()):
        return
    if os.path.samefile(path, meta):
        raise InputError(
            f"SEGSYNC_PROFILES_URL ({shown_url}) opens segsync's metadata DB file {meta}: "
            "SQLite has no schemas to keep profile tables apart from segsync's own tables. "
            "Use a file of its own, e.g. the default duckdb://DATA_DIR/profiles.duckdb"
        )


def place_postgres(backend: Any, own: OwnTables, requested: str | None) -> str | None:
    """Choose and use the schema of the profile tables on a PostgreSQL profile engine.

    ``requested`` (``SEGSYNC_PROFILES_SCHEMA``) is used when given; otherwise
    :data:`PROFILES_SCHEMA` when the connection's default schema holds segsync's metadata, and
    the default schema (``None`` returned, nothing changed) when it does not. A schema that
    holds the metadata is refused; a missing one is created. The connection's ``search_path``
    is then that schema alone, so every table name resolves inside it.
    """
    con = backend.con
    if requested is None:
        current = _one(con, "SELECT current_schema()")
        if current is None or not own.holds_metadata(_tables_in(con, str(current))):
            return None
        schema = PROFILES_SCHEMA
    else:
        if not _SCHEMA_NAME.fullmatch(requested):
            raise InputError(
                f"SEGSYNC_PROFILES_SCHEMA {requested!r} is not valid: use letters, digits and "
                "_, starting with a letter or _, at most 63 characters"
            )
        schema = requested
    present = _tables_in(con, schema)
    if own.holds_metadata(present):
        raise InputError(
            f"schema {schema!r} holds segsync's own tables ({VERSION_TABLE} and the metadata), "
            "so profile tables cannot go there; set SEGSYNC_PROFILES_SCHEMA to another schema "
            f"(unset, it is {PROFILES_SCHEMA!r} when profiles and metadata share a database)"
        )
    import psycopg  # here: only a PostgreSQL profile store pays for importing it

    quoted = '"' + schema.replace('"', '""') + '"'
    try:
        if _one(con, "SELECT 1 FROM pg_namespace WHERE nspname = %s", schema) is None:
            _run(con, f"CREATE SCHEMA {quoted}")
        _run(con, "SELECT set_config('search_path', %s, false)", quoted)
    except psycopg.Error as err:
        database = _one(con, "SELECT current_database()")
        why = "" if requested else f" (database {database!r} also holds segsync's metadata)"
        raise InputError(
            f"the profile tables' schema {schema!r}{why} cannot be used: {str(err).strip()}. "
            f"Create it for this user (CREATE SCHEMA {quoted}) or set SEGSYNC_PROFILES_SCHEMA "
            "to a schema the user may create tables in"
        ) from None
    return schema


def _one(con: Any, sql: str, *params: object) -> object:
    with con.cursor() as cursor, con.transaction():
        row = cursor.execute(sql, params or None).fetchone()
    return None if row is None else row[0]


def _run(con: Any, sql: str, *params: object) -> None:
    with con.cursor() as cursor, con.transaction():
        cursor.execute(sql, params or None)


def _tables_in(con: Any, schema: str) -> set[str]:
    # pg_class, not information_schema: it lists tables this user has no rights on too.
    with con.cursor() as cursor, con.transaction():
        rows = cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            (schema,),
        ).fetchall()
    return {str(row[0]) for row in rows}
