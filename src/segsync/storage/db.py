"""The metadata DB: one engine, sessions, and migrations applied on open.

Opening a DB already at the newest schema costs one query: the revisions in
``alembic_version`` are compared with the heads of the migration files shipped in the package
(read as text), and Alembic is imported only when they differ. See docs/design.md ("Start-up").
"""

from __future__ import annotations

import fcntl
import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from segsync.errors import FatalError, InputError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every segsync process.
_MIGRATION_LOCK_KEY = 0x5E65_711C
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Alembic keeps its migration context in a module global: one upgrade at a time per process.
_ALEMBIC_LOCK = threading.Lock()


def normalise_url(url: str) -> URL:
    """Parse a metadata DB URL; ``postgresql://``/``postgres://`` use the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise InputError(f"database URL {url!r} is not a valid SQLAlchemy URL: {err}") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise InputError(
            f"database URL {parsed.render_as_string()!r}: only sqlite:/// and postgresql:// "
            "are supported for the metadata DB"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


# `revision = "0002_x"` / `down_revision = "0001_y"` (or None, or a tuple) in a migration file.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


@functools.cache
def shipped_heads() -> frozenset[str]:
    """The head revisions of the migrations shipped in the package, read from the files as text
    (no Alembic import). Empty when a file cannot be read that way: then callers ask Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found: dict[str, str] = {}
        for key, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, value)
        if not found:
            continue  # the package's __init__.py
        revision = _QUOTED.findall(found.get("revision", ""))
        if len(revision) != 1 or "down_revision" not in found:
            return frozenset()
        revisions.add(revision[0])
        parents.update(_QUOTED.findall(found["down_revision"]))
    return frozenset(revisions - parents)


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


class Database:
    """The metadata DB. Build it with :meth:`open`; use :meth:`session` for units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Connect to ``url`` (SQLite file or Postgres) and apply pending migrations.

        SQLite: the file's directory is created; WAL mode, foreign keys and a busy timeout are
        set on every connection. Postgres: ``postgresql://`` is rewritten to psycopg 3.
        """
        parsed = normalise_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
        db = cls(engine)
        if migrate and not db.at_shipped_heads():
            try:
                db.migrate()
            except BaseException:
                engine.dispose()
                raise
        return db

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, fit for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def at_shipped_heads(self) -> bool:
        """Whether the DB is at the newest schema this version ships, by one query and without
        Alembic. ``False`` when in doubt (no version table yet, an unreadable DB, migration files
        not readable as text): then :meth:`migrate` decides and reports any error."""
        heads = shipped_heads()
        if not heads:
            return False
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                current = {str(row[0]) for row in rows}
        except SQLAlchemyError:
            return False
        return current == heads

    def migrate(self) -> str | None:
        """Apply every pending migration; return the head revision. Safe to call repeatedly.

        On Postgres a transaction-scoped advisory lock serialises processes that start at once.
        """
        from alembic import command

        config = alembic_config()
        try:
            with _ALEMBIC_LOCK, self._sqlite_file_lock(), self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as err:
            raise FatalError(
                f"could not migrate the metadata DB at {self.display_url}: {err}"
            ) from err
        return self.current_revision()

    @contextmanager
    def _sqlite_file_lock(self) -> Iterator[None]:
        """On a SQLite file, an exclusive lock on ``<db>.migrate.lock`` beside it, so processes
        starting at once migrate one after the other."""
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).expanduser().with_suffix(".migrate.lock")
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current_revision(self) -> str | None:
        """The revision the DB is at (``None`` before any migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision shipped with this version of segsync."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
