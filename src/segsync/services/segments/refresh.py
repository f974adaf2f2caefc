"""Refreshing segments (S4): evaluate, activate, count, compare with the last snapshot.

A refresh evaluates the segment's definition on the profile engine with the context's clock,
makes it **active**, stores its member count and refresh time, appends a history row with how
many profiles entered and left since the previous refresh, and replaces the member snapshot
(profile ids, kept compressed in the metadata DB) the next refresh is compared with. A failing
segment becomes **failed** — its last good count and snapshot stay — and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from segsync.domain.catalog import Catalog
from segsync.domain.permissions import Action, require
from segsync.domain.segment_definition import parse_definition
from segsync.errors import InputError, SegsyncError
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import member_ids
from segsync.segments.snapshot import diff_snapshots, snapshot_from
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.storage.models.segments import RefreshStatus, SegmentStatus
from segsync.storage.repositories.segments import SegmentRecord, SegmentRepository

__all__ = ["RefreshOutcome", "RefreshProgress", "refresh_segments"]

log = logging.getLogger(__name__)

RefreshProgress = Callable[[str, int, int], None]
"""``(segment_name, done, total)``: told before each segment is evaluated, and once more with
``("", total, total)`` when all are done."""


@dataclass(frozen=True)
class RefreshOutcome:
    """How one segment's refresh ended. On failure ``error`` says why and the counts are
    ``None``; ``member_count`` is then the last good count, if any."""

    name: str
    status: SegmentStatus
    started_at: datetime
    ended_at: datetime
    member_count: int | None
    entered: int | None = None
    left: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "ok": self.ok,
            "member_count": self.member_count,
            "entered": self.entered,
            "left": self.left,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
        }


def _chosen(
    ctx: ServiceContext, names: Sequence[str] | None, all_segments: bool, active_only: bool
) -> list[SegmentRecord]:
    with ctx.db.session() as session:
        segments = SegmentRepository(session)
        if names:
            return [segments.get_by_name(n) for n in dict.fromkeys(names)]
        if not all_segments:
            raise InputError("name one or more segments to refresh, or use --all")
        listed = segments.list()
    if active_only:
        return [s for s in listed if s.status is not SegmentStatus.DRAFT]
    return listed


def refresh_segments(
    ctx: ServiceContext,
    names: Sequence[str] | None = None,
    *,
    all_segments: bool = False,
    active_only: bool = False,
    progress: RefreshProgress | None = None,
) -> list[RefreshOutcome]:
    """Refresh the named segments, or every segment with ``all_segments=True``.

    ``active_only=True`` skips drafts (what scheduled refreshes do, S4: only segments that were
    run once — active or failed — refresh on schedule). Segments refresh one after another; a
    failure is recorded on that segment and the others go on. Returns one outcome per segment,
    in order.
    """
    require(ctx.actor, Action.REFRESH_SEGMENT)
    chosen = _chosen(ctx, names, all_segments, active_only)
    try:
        cat: Catalog | None = catalog(ctx)
        catalog_error = None
    except SegsyncError as err:
        cat, catalog_error = None, err.message
    outcomes = []
    for done, record in enumerate(chosen):
        if progress is not None:
            progress(record.name, done, len(chosen))
        outcomes.append(_refresh_one(ctx, record, cat, catalog_error))
    if progress is not None:
        progress("", len(chosen), len(chosen))
    return outcomes


def _evaluate(ctx: ServiceContext, record: SegmentRecord, cat: Catalog, now: datetime) -> pa.Array:
    defn = parse_definition(record.definition, "json")
    members = compile_segment(defn, cat, ctx.profiles.table, now)
    return snapshot_from(member_ids(members))


def _refresh_one(
    ctx: ServiceContext, record: SegmentRecord, cat: Catalog | None, catalog_error: str | None
) -> RefreshOutcome:
    started = ctx.now()
    error = catalog_error
    ids: pa.Array | None = None
    if cat is not None:
        try:
            ids = _evaluate(ctx, record, cat, started)
        except SegsyncError as err:
            error = err.message
        except Exception as err:  # one segment's engine failure must not stop the others
            log.exception("refreshing segment %r failed", record.name)
            error = f"the profile engine failed to evaluate the segment: {err}"
    with ctx.db.session() as session:
        segments = SegmentRepository(session)
        ended = ctx.now()
        if ids is None:
            reason = error or "the segment could not be evaluated"
            segments.add_refresh(
                record.id,
                started_at=started,
                ended_at=ended,
                status=RefreshStatus.FAILED,
                error=reason,
            )
            updated = segments.update(record.id, now=ended, status=SegmentStatus.FAILED)
            log.warning("segment %r failed to refresh: %s", record.name, reason)
            return RefreshOutcome(
                record.name,
                SegmentStatus.FAILED,
                started,
                ended,
                updated.member_count,
                error=reason,
            )
        previous = segments.get_snapshot(record.id)
        before = None if previous is None else pa.array(previous.profile_ids, pa.string())
        diff = diff_snapshots(before, ids)
        segments.save_snapshot(record.id, ids.to_pylist(), taken_at=ended)
        segments.add_refresh(
            record.id,
            started_at=started,
            ended_at=ended,
            status=RefreshStatus.OK,
            member_count=len(ids),
            entered=diff.entered,
            left=diff.left,
        )
        segments.update(
            record.id,
            now=ended,
            status=SegmentStatus.ACTIVE,
            member_count=len(ids),
            last_refreshed_at=ended,
        )
    log.info(
        "segment %r refreshed: %d members (+%d, -%d)",
        record.name,
        len(ids),
        diff.entered,
        diff.left,
    )
    return RefreshOutcome(
        record.name, SegmentStatus.ACTIVE, started, ended, len(ids), diff.entered, diff.left
    )
