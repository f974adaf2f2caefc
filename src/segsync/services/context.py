"""The composition root: what every use case needs, built once per CLI command or web app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from segsync.domain.permissions import Actor, Role
from segsync.settings import Settings
from segsync.storage.db import Database
from segsync.storage.models import load_all

if TYPE_CHECKING:
    # Imported on first use: Ibis, DuckDB and Arrow are needed only when profiles are read.
    from segsync.profiles.engine import ProfileEngine
    from segsync.profiles.placement import OwnTables


def utc_now() -> datetime:
    return datetime.now(UTC)


LOCAL_ADMIN = Actor(user_id=None, email="local-admin", role=Role.ADMINISTRATOR)
"""Who the CLI acts as without ``--as``: whoever can read the data dir administers it."""


@dataclass
class ServiceContext:
    """Settings, the metadata DB, the clock, and (opened on first use) the profile engine.

    Services take a context as their first argument. Tests inject ``now`` to freeze time.
    Extend it with fields that have defaults (e.g. the acting user) so existing callers keep
    working. Use it as a context manager, or call :meth:`close`.
    """

    settings: Settings
    db: Database
    now: Callable[[], datetime] = utc_now
    actor: Actor = LOCAL_ADMIN
    _profiles: ProfileEngine | None = field(default=None, repr=False)

    @property
    def profiles(self) -> ProfileEngine:
        """The profile engine at ``settings.profile_engine_url``, connected on first use."""
        if self._profiles is None:
            from segsync.profiles.engine import ProfileEngine

            self._profiles = ProfileEngine.connect(
                self.settings.profile_engine_url,
                own=own_tables(self.db),
                schema=self.settings.profiles_schema,
                data_dir=self.settings.data_dir,
            )
        return self._profiles

    @property
    def profiles_opened(self) -> bool:
        return self._profiles is not None

    def close_profiles(self) -> None:
        """Close the profile engine if it is open: this process lets go of a DuckDB file, which
        admits one process at a time."""
        if self._profiles is not None:
            self._profiles.close()
            self._profiles = None

    def close(self) -> None:
        """Close the profile engine (if opened) and the metadata DB's connections."""
        self.close_profiles()
        self.db.dispose()

    def __enter__(self) -> ServiceContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def own_tables(db: Database) -> OwnTables:
    """segsync's own tables (the metadata's and Alembic's), which profile tables keep away
    from; with the metadata DB's SQLite file, if that is where it lives."""
    from segsync.profiles.placement import VERSION_TABLE, OwnTables

    names = frozenset(load_all().metadata.tables) | {VERSION_TABLE}
    database = db.engine.url.database
    if db.dialect != "sqlite" or not database or database == ":memory:":
        return OwnTables(names=names)
    return OwnTables(names=names, metadata_file=Path(database))


def open_context(
    settings: Settings, *, now: Callable[[], datetime] | None = None
) -> ServiceContext:
    """Create the data dir, open the metadata DB and apply pending migrations."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(settings.metadata_url)
    return ServiceContext(settings=settings, db=db, now=now or utc_now)


@dataclass(frozen=True)
class InitReport:
    data_dir: str
    database: str
    revision: str | None


def initialise(settings: Settings) -> InitReport:
    """Create the data dir and bring the metadata DB to the newest schema (``segsync init``)."""
    with open_context(settings) as ctx:
        return InitReport(
            data_dir=str(settings.data_dir.resolve()),
            database=ctx.db.display_url,
            revision=ctx.db.current_revision(),
        )
