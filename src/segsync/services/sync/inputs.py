"""What a run reads before it sends — the members of its segments and its export's sync state —
and what it tells others when it ended (notifications)."""

from __future__ import annotations

import logging

from segsync.domain.plan import SyncStateView
from segsync.services.context import ServiceContext
from segsync.services.notifications.manage import on_run_finished
from segsync.services.sync.members import MemberScan, NeedsPayload, scan_members
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord
from segsync.storage.repositories.sync import SyncStateRepository

log = logging.getLogger(__name__)


def read_members(ctx: ServiceContext, target: RunTarget, needs_payload: NeedsPayload) -> MemberScan:
    """Read the members, holding the profile engine only meanwhile: a DuckDB file admits one
    read-write process, and ``serve``, workers and the CLI share it. When ``ctx`` has the
    engine open already, its owner keeps it. People forgotten with ``segsync forget`` are set
    aside, never read as contacts to send."""
    with ctx.db.session() as session:
        suppressed = ErasureRepository(session).suppressed_digests()
    if ctx.profiles_opened:
        return scan_members(
            ctx, target.segments, target.mapping, needs_payload=needs_payload, suppressed=suppressed
        )
    reader = ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=ctx.actor)
    try:
        return scan_members(
            reader,
            target.segments,
            target.mapping,
            needs_payload=needs_payload,
            suppressed=suppressed,
        )
    finally:
        if reader.profiles_opened:
            reader.profiles.close()


def load_state(ctx: ServiceContext, target: RunTarget) -> SyncStateView:
    """The export's sync state: what was acknowledged, which lists exist."""
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        hashes = sync.hashes(target.export_id)
        memberships = {(str(s), e) for s, e in sync.memberships(target.export_id)}
        lists = ExportRepository(session).lists(target.export_id)
    list_ids: dict[str, str | None] = {
        s.key: lists[int(s.key)][0] if int(s.key) in lists else None for s in target.segments
    }
    return SyncStateView(hashes=hashes, memberships=memberships, list_ids=list_ids)


def notify_run_end(ctx: ServiceContext, run: RunRecord) -> None:
    """Tell :func:`segsync.services.notifications.manage.on_run_finished` that a real run ended
    (T4). Every path that ends a run calls this once (the engine, and a worker that could not start
    a run). Never raises: a failure here is logged and the run's outcome stands."""
    if run.dry_run or not run.status.is_final or run.export_id is None:
        return
    try:
        on_run_finished(
            ctx,
            export_id=run.export_id,
            export_name=run.export_name,
            run_id=run.id,
            status=run.status.value,
            message=run.message,
        )
    except Exception:
        log.exception("could not notify the end of run %s", run.id)
