"""Run use cases (X1–X13): run an export (or resume its interrupted run), run all, list
and show runs, cancel, and download what a run set aside.

Running an export (:func:`run_export`, ``exports run``) goes through the queue
(:mod:`segsync.services.runs.queue`):

* its latest real run still **Processing** is resumed when its holder is gone — the lease
  expired, or the holder was a process on this host that no longer exists. The same run id
  carries on: it plans again against the sync state, so it sends only what was not yet
  acknowledged, and its counts accumulate;
* a run still held by a live process is refused ("already in progress (run N)");
* a **Queued** run of the export (``--no-wait``, the scheduler) is the one followed;
* otherwise a new run is queued.

Then the run is followed until it ends (:func:`segsync.services.runs.worker.follow_run`): a worker
executes it, or — no worker alive — this process does, so the CLI works on its own. At most
one real run per connection runs at a time; a run of another export on the same connection
waits Queued. Dry runs send nothing and run at once in this process (:func:`start_run`).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from segsync.domain.permissions import Action, ExportRef, require
from segsync.domain.runs import RunStatus
from segsync.domain.schedule import ExportMode, ExportSchedule
from segsync.errors import Conflict
from segsync.services.context import ServiceContext
from segsync.services.exports.views import export_ref
from segsync.services.runs.csv_files import write_csv
from segsync.services.runs.history import duration, get_run, list_runs, run_json
from segsync.services.runs.queue import enqueue_run
from segsync.services.runs.worker import FOLLOW_POLL_SECONDS, any_worker_alive, follow_run
from segsync.services.sync.engine import ConfigTuner, RunTarget, execute
from segsync.services.sync.lease import LEASE_SECONDS, mark_active, new_lease_owner, owner_is_dead
from segsync.services.sync.tally import ProgressCallback, RunProgress
from segsync.services.sync.target import load_target
from segsync.settings import Settings
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RejectRecord, RunRecord, RunRepository

__all__ = [
    "RejectRecord",
    "RunProgress",
    "RunRecord",
    "StartedRun",
    "cancel_run",
    "duration",
    "execute_started",
    "get_run",
    "list_runs",
    "rejects",
    "run_all",
    "run_export",
    "run_json",
    "spawn_background_run",
    "start_run",
    "write_rejects_csv",
]


@dataclass(frozen=True)
class StartedRun:
    """A run this process now holds: ``resumed`` when it continues an interrupted run."""

    run: RunRecord
    target: RunTarget
    owner: str
    resumed: bool


def start_run(
    ctx: ServiceContext, name: str, *, dry_run: bool = False, trigger: str = "manual"
) -> StartedRun:
    """Create, claim or resume the export's run and take its lease (see the module docstring).

    Raises ``NotFound`` (no such export), ``PermissionDenied``, ``InputError`` (detached export)
    and ``Conflict`` (a live process is running it)."""
    now = ctx.now()
    owner = new_lease_owner()
    mark_active(owner, True)  # no other thread of this process may judge it dead
    expires = now + timedelta(seconds=LEASE_SECONDS)
    with ctx.db.session() as session:
        record = ExportRepository(session).get_by_name(name)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(record))
        target = load_target(session, record)
        runs = RunRepository(session)
        resumed = False
        run: RunRecord | None = None
        if not dry_run:
            current = runs.processing_run(record.id)
            if current is not None:
                expired = current.lease_expires_at is None or current.lease_expires_at <= now
                if not (expired or owner_is_dead(current.lease_owner)):
                    raise Conflict(
                        f"a run of this export is already in progress (run {current.id}); "
                        f"follow it with `segsync runs show {current.id}` or stop it with "
                        f"`segsync runs cancel {current.id}`"
                    )
                if not runs.claim(
                    current.id, previous_owner=current.lease_owner, owner=owner, expires_at=expires
                ):
                    raise Conflict(
                        f"a run of this export is already in progress (run {current.id})"
                    )
                run, resumed = runs.get(current.id), True
        if run is None:
            queued = runs.queued_run(record.id, dry_run=dry_run)
            if queued is not None and runs.claim_queued(
                queued.id, owner=owner, expires_at=expires, now=now
            ):
                run = runs.get(queued.id)
        if run is None:
            run = runs.create(
                export_id=record.id,
                export_name=record.name,
                connection_id=record.connection_id,
                actor=ctx.actor.email,
                now=now,
                dry_run=dry_run,
                trigger=trigger,
                status=RunStatus.PROCESSING,
                lease_owner=owner,
                lease_expires_at=expires,
            )
    return StartedRun(run=run, target=target, owner=owner, resumed=resumed)


def execute_started(
    ctx: ServiceContext,
    started: StartedRun,
    *,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
) -> RunRecord:
    """Run a started run to its end in this thread (``asyncio.run``)."""
    outcome = asyncio.run(
        execute(ctx, started.run, started.target, owner=started.owner, progress=progress, tune=tune)
    )
    return outcome.record


def run_export(
    ctx: ServiceContext,
    name: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
    poll_interval: float = FOLLOW_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Run the export now (or resume its interrupted run) and wait for the end (X1): queue
    it and follow it (see the module docstring); a dry run executes here at once.

    ``progress`` receives :class:`RunProgress` events (items done / total) for a progress bar
    (phase ``queued`` while it waits); ``tune`` may adjust the destination's connection config
    (tests); ``poll_interval``/``sleep`` pace the following of a run a worker executes.
    Returns the finished run; a run that failed is returned too (status Failure, a message
    saying why)."""
    if dry_run:
        started = start_run(ctx, name, dry_run=True)
        return execute_started(ctx, started, progress=progress, tune=tune)
    enqueued = enqueue_run(ctx, name)
    return follow_run(
        ctx,
        enqueued.run.id,
        progress=progress,
        tune=tune,
        poll_interval=poll_interval,
        sleep=sleep,
    )


def run_all(ctx: ServiceContext) -> list[RunRecord | str]:
    """Queue a run of every export whose schedule is on (X1 "Run all"); the workers of
    ``segsync serve`` / ``segsync worker`` execute them. Administrators only.

    Returns, per export whose schedule is not off, its Queued run (an export that already has
    one keeps it rather than getting a second) or the reason none was queued (a string): no
    connection, or a run already in progress."""
    require(ctx.actor, Action.RUN_ALL)
    now = ctx.now()
    results: list[RunRecord | str] = []
    with ctx.db.session() as session:
        runs = RunRepository(session)
        for record in ExportRepository(session).list():
            if ExportSchedule.from_dict(record.schedule).mode is ExportMode.OFF:
                continue
            if record.connection_id is None:
                results.append(f"{record.name}: no connection; not queued")
                continue
            current = runs.processing_run(record.id)
            if current is not None:
                results.append(f"{record.name}: a run is already in progress (run {current.id})")
                continue
            queued = runs.queued_run(record.id, dry_run=False)
            results.append(
                queued
                or runs.create(
                    export_id=record.id,
                    export_name=record.name,
                    connection_id=record.connection_id,
                    actor=ctx.actor.email,
                    now=now,
                    trigger="run_all",
                )
            )
    return results


def spawn_background_run(
    settings: Settings, ctx: ServiceContext, name: str, *, dry_run: bool
) -> int:
    """``exports run --no-wait``: queue a run and return its id (follow it with ``runs show``).

    A worker alive executes it. With none alive, a detached ``segsync exports run NAME``
    process is started that executes it (so ``--no-wait`` works without ``segsync worker``)."""
    run = enqueue_run(ctx, name, dry_run=dry_run).run
    if any_worker_alive(ctx):
        return run.id
    command = [sys.executable, "-m", "segsync", "--data-dir", str(settings.data_dir)]
    if ctx.actor.user_id is not None:
        command += ["--as", ctx.actor.email]
    command += ["exports", "run", name, "--json"]
    if dry_run:
        command.append("--dry-run")
    log_path = settings.data_dir / "logs" / f"run-{run.id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return run.id


def cancel_run(ctx: ServiceContext, run_id: int) -> RunRecord:
    """Cancel a run (X8): a Queued run ends Canceled at once; a Processing one is asked to stop
    after its batch in flight (it ends Canceled a moment later)."""
    with ctx.db.session() as session:
        runs = RunRepository(session)
        run = runs.get(run_id)
        ref = ExportRef(id=run_id, connection=None, name=run.export_name)
        if run.export_id is not None:
            ref = export_ref(ExportRepository(session).get(run.export_id))
        require(ctx.actor, Action.CANCEL_RUN, ref)
        return runs.request_cancel(run_id, now=ctx.now())


def rejects(ctx: ServiceContext, run_id: int) -> Iterator[RejectRecord]:
    """What the run set aside or Autopilot refused, each with its reason (X10)."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        yield from RunRepository(session).rejects(run_id)


REJECT_COLUMNS = ("email", "profile_id", "kind", "reason")


def write_rejects_csv(ctx: ServiceContext, run_id: int, path: Path) -> int:
    """Write the run's rejects as CSV (email, profile id, kind, reason); return how many.
    A cell a spreadsheet would run as a formula is written with a leading ``'``."""
    rows = (
        [item.email or "", item.profile_id or "", item.kind, item.reason]
        for item in rejects(ctx, run_id)
    )
    return write_csv(path, REJECT_COLUMNS, rows)
