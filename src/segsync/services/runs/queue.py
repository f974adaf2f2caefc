"""The run queue (docs/design.md "Scheduling and workers"): runs are rows; workers claim them.

* :func:`enqueue_run` queues a run of an export (``exports run``, the web UI; the scheduler
  creates its own rows with a due time). A run of the export already queued, or interrupted
  (its holder died), is reused instead of queueing another.
* :func:`claim_next` is what a worker calls: it first takes over a **processing** run whose
  lease lapsed — expired, or held by a process of this host that no longer exists — so the
  run resumes from its checkpoint; otherwise it starts the oldest **queued** run that is due
  and whose connection has no processing run. At most one real run per connection runs at a
  time (the rate limit belongs to the API key); dry runs send nothing and neither wait nor
  block. :func:`claim_run` does the same for one run (``exports run`` with no worker alive).
* :func:`release_run` puts a run back in the queue (a worker stopping on SIGTERM), lease
  dropped, so any worker resumes it.

How claims stay safe on each database is told in
:mod:`segsync.storage.repositories.run_queue`. A claim is held by a *lease owner*
(``host:pid:uuid``) until ``lease_expires_at``; the run engine extends it at every commit and
on a timer (:data:`segsync.services.sync.lease.LEASE_SECONDS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from segsync.domain.permissions import Action, require
from segsync.domain.runs import RunStatus
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.sync.lease import LEASE_SECONDS, mark_active, new_lease_owner, owner_is_dead
from segsync.services.sync.target import load_target
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.run_queue import RunQueueRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

__all__ = [
    "Claim",
    "Enqueued",
    "claim_next",
    "claim_run",
    "enqueue_run",
    "lease_lapsed",
    "release_run",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A run this process now holds (Processing, leased by ``owner``); ``resumed`` when it
    continues an attempt that was interrupted or put back in the queue."""

    run: RunRecord
    owner: str
    resumed: bool


@dataclass(frozen=True)
class Enqueued:
    """The run to follow: ``created`` is False when an already queued or interrupted run of
    the export was reused."""

    run: RunRecord
    created: bool


def lease_lapsed(owner: str | None, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a processing run's holder is gone: its lease expired, or it names a process of
    this host that no longer runs."""
    return expires_at is None or expires_at <= now or owner_is_dead(owner)


def enqueue_run(
    ctx: ServiceContext, export: int | str, *, dry_run: bool = False, trigger: str = "manual"
) -> Enqueued:
    """Queue a run of the export (by id — the web and the API — or by name — the CLI) for the
    workers (X1), acting as ``ctx.actor``.

    Reuses the export's queued run of the same kind, or its interrupted processing run (which
    then resumes). Raises ``NotFound``, ``PermissionDenied``, ``InputError`` (detached export,
    no segments) and ``Conflict`` (a live process is running the export)."""
    now = ctx.now()
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        record = repo.get(export) if isinstance(export, int) else repo.get_by_name(export)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(record))
        load_target(session, record)
        runs = RunRepository(session)
        if not dry_run:
            current = runs.processing_run(record.id)
            if current is not None:
                if not lease_lapsed(current.lease_owner, current.lease_expires_at, now):
                    raise Conflict(
                        f"a run of this export is already in progress (run {current.id}); "
                        f"follow it with `segsync runs show {current.id}` or stop it with "
                        f"`segsync runs cancel {current.id}`"
                    )
                return Enqueued(current, created=False)
        queued = runs.queued_run(record.id, dry_run=dry_run)
        if queued is not None:
            return Enqueued(queued, created=False)
        run = runs.create(
            export_id=record.id,
            export_name=record.name,
            connection_id=record.connection_id,
            actor=ctx.actor.email,
            now=now,
            dry_run=dry_run,
            trigger=trigger,
        )
    log.info("run %s of export %r queued (%s)", run.id, record.name, trigger)
    return Enqueued(run, created=True)


def claim_next(ctx: ServiceContext, *, owner: str | None = None) -> Claim | None:
    """Take the next run to execute (see the module docstring), or ``None`` if there is none.

    The returned run is Processing under ``owner``'s lease (a fresh owner by default) and is
    marked active in this process, so no other thread here judges its holder dead. Execute it
    with :func:`segsync.services.runs.worker.execute_claim`."""
    return _claim(ctx, owner or new_lease_owner(), run_id=None)


def claim_run(ctx: ServiceContext, run_id: int, *, owner: str | None = None) -> Claim | None:
    """Take run ``run_id`` if it can start now: queued, due, its connection free; or
    processing with a lapsed lease. ``None`` otherwise (it waits, or someone else has it)."""
    return _claim(ctx, owner or new_lease_owner(), run_id=run_id)


def _claim(ctx: ServiceContext, owner: str, *, run_id: int | None) -> Claim | None:
    mark_active(owner, True)
    claimed: tuple[int, bool] | None = None
    try:
        now = ctx.now()
        expires = now + timedelta(seconds=LEASE_SECONDS)
        with ctx.db.session() as session:
            queue = RunQueueRepository(session)
            queue.begin_claims()
            runs = RunRepository(session)
            for lease in queue.leases(run_id=run_id):
                if lease_lapsed(lease.owner, lease.expires_at, now) and runs.claim(
                    lease.run_id, previous_owner=lease.owner, owner=owner, expires_at=expires
                ):
                    log.info("run %s: taking over from %s", lease.run_id, lease.owner)
                    claimed = (lease.run_id, True)
                    break
            if claimed is None:
                claimed = _claim_queued(queue, owner, now, ctx.now, run_id)
        if claimed is None:
            return None
        with ctx.db.session() as session:
            run = RunRepository(session).get(claimed[0])
        return Claim(run=run, owner=owner, resumed=claimed[1] or run.attempts > 1)
    finally:
        if claimed is None:
            mark_active(owner, False)


def _claim_queued(
    queue: RunQueueRepository,
    owner: str,
    now: datetime,
    clock: Callable[[], datetime],
    run_id: int | None,
) -> tuple[int, bool] | None:
    for candidate in queue.candidates(now=now, run_id=run_id):
        if not queue.lock_queued(candidate.run_id, now=now):
            continue
        if not candidate.dry_run and (
            not queue.lock_connection(candidate.connection_id)
            or queue.connection_busy(candidate.connection_id)
        ):
            continue
        # The locks may have waited for another claim or a run's end: the run starts now, not
        # when this claim began (else its start could precede the end of the run it waited for).
        started = clock()
        if queue.claim(
            candidate.run_id,
            owner=owner,
            expires_at=started + timedelta(seconds=LEASE_SECONDS),
            now=started,
            connection_id=candidate.connection_id,
        ):
            return candidate.run_id, False
    return None


def release_run(ctx: ServiceContext, run_id: int, *, owner: str) -> RunRecord:
    """Put a processing run held by ``owner`` back in the queue (its checkpoint kept) and
    drop the lease; any worker resumes it. Returns the run as it now is."""
    with ctx.db.session() as session:
        released = RunQueueRepository(session).release(run_id, owner=owner)
        run = RunRepository(session).get(run_id)
    mark_active(owner, False)
    if released:
        log.info("run %s put back in the queue; a worker resumes it", run_id)
    return run


def waiting_reason(ctx: ServiceContext, run: RunRecord) -> str | None:
    """Why a queued run has not started, in words (``None`` if nothing holds it back)."""
    if run.status is not RunStatus.QUEUED or run.connection_id is None or run.dry_run:
        return None
    with ctx.db.session() as session:
        busy = RunQueueRepository(session).busy_run(run.connection_id)
    if busy is None or busy.id == run.id:
        return None
    return (
        f"waiting for run {busy.id} of export {busy.export_name!r}, which uses the same connection"
    )
