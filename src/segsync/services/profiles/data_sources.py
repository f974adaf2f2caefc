"""Data sources re-read by the system refresh (T2): files registered with ``profiles
import`` are imported again when they changed.

A file changed when its size or modification time differs from the fingerprint recorded at its
last import *and* its SHA-256 differs too (a file touched but not changed is not re-imported).
It is re-imported into the same table, with the same key and profile mark, replacing the old
rows. Generated data (``profiles sample``) has no file and is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from segsync.errors import SegsyncError
from segsync.profiles.readers import fingerprint
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.profiles.manage import import_profiles
from segsync.storage.repositories.profiles import DataSourceRecord, DataSourceRepository

__all__ = ["FileState", "SourceOutcome", "file_sources", "file_state", "reread_sources"]

log = logging.getLogger(__name__)

FileState = Literal["unchanged", "changed", "missing"]
Status = Literal["reimported", "unchanged", "missing", "failed"]


@dataclass(frozen=True)
class SourceOutcome:
    """What the refresh did with one data source: ``reimported`` (with ``rows``),
    ``unchanged``, ``missing`` (the file is gone) or ``failed`` (``error`` says why)."""

    table: str
    path: str
    status: Status
    rows: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "path": self.path,
            "status": self.status,
            "rows": self.rows,
            "error": self.error,
        }


def file_sources(ctx: ServiceContext) -> list[DataSourceRecord]:
    """The data sources imported from a file, the profile table first."""
    with ctx.db.session() as session:
        sources = DataSourceRepository(session).list()
    chosen = [s for s in sources if s.source_path and s.fingerprint is not None]
    return sorted(chosen, key=lambda s: (not s.is_profile, s.table_name))


def file_state(source: DataSourceRecord) -> FileState:
    """A quick look (size and modification time, no hashing): has the file changed since it
    was imported? Files without a recorded fingerprint count as unchanged."""
    if not source.source_path:
        return "unchanged"
    path = Path(source.source_path)
    if not path.is_file():
        return "missing"
    if source.fingerprint is None:
        return "unchanged"
    stat = path.stat()
    mtime = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    same = stat.st_size == source.fingerprint.size and mtime == source.fingerprint.mtime
    return "unchanged" if same else "changed"


def _changed(source: DataSourceRecord) -> FileState:
    state = file_state(source)
    if state != "changed" or source.fingerprint is None:
        return state
    assert source.source_path is not None
    current = fingerprint(Path(source.source_path))
    return "unchanged" if current.sha256 == source.fingerprint.sha256 else "changed"


def reread_sources(ctx: ServiceContext) -> list[SourceOutcome]:
    """Re-import every file data source that changed; one outcome per file source. A failure
    is logged, audited and reported; the other sources go on."""
    outcomes: list[SourceOutcome] = []
    for source in file_sources(ctx):
        assert source.source_path is not None
        path = source.source_path
        try:
            state = _changed(source)
        except OSError as err:
            outcomes.append(SourceOutcome(source.table_name, path, "failed", error=str(err)))
            continue
        if state == "missing":
            log.warning("data source %r: file %s is missing", source.table_name, path)
            outcomes.append(
                SourceOutcome(source.table_name, path, "missing", error=f"{path} not found")
            )
            continue
        if state == "unchanged":
            outcomes.append(SourceOutcome(source.table_name, path, "unchanged"))
            continue
        outcomes.append(_reimport(ctx, source, path))
    return outcomes


def _reimport(ctx: ServiceContext, source: DataSourceRecord, path: str) -> SourceOutcome:
    try:
        report = import_profiles(
            ctx,
            path,
            source.table_name,
            key=source.key_column,
            profile=source.is_profile,
            replace=True,
        )
    except SegsyncError as err:
        error = err.message
    except Exception as err:  # one bad file must not stop the refresh
        log.exception("re-importing data source %r failed", source.table_name)
        error = f"the profile engine failed to import {path}: {err}"
    else:
        _audit(ctx, source.table_name, f"re-imported {report.rows:,} rows from {path}", "ok")
        return SourceOutcome(source.table_name, path, "reimported", rows=report.rows)
    log.warning("data source %r not re-imported: %s", source.table_name, error)
    _audit(ctx, source.table_name, f"re-import from {path} failed: {error}", "failed")
    return SourceOutcome(source.table_name, path, "failed", error=error)


def _audit(ctx: ServiceContext, table: str, summary: str, outcome: str) -> None:
    with ctx.db.session() as session:
        audit.record(
            session,
            at=ctx.now(),
            actor=ctx.actor,
            action="data_source.reimported",
            target_type="data_source",
            target=table,
            summary=f"Data source {table!r} {summary}",
            details={"outcome": outcome},
        )
