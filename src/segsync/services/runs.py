"""Run use cases (SPEC X1–X13): run an export (or resume its interrupted run), run all, list
and show runs, cancel, and download what a run set aside.

Starting a run of an export:

* its latest real run still **Processing** is resumed when its holder is gone — the lease
  expired, or the holder was a process on this host that no longer exists. The same run id
  carries on: it plans again against the sync state, so it sends only what was not yet
  acknowledged, and its counts accumulate;
* a run still held by a live process is refused ("already in progress (run N)");
* a **Queued** run of the export (``--no-wait``, the scheduler) is claimed and started;
* otherwise a new run starts.

:func:`run_export` is the synchronous entry point for the CLI: it runs the async engine with
``asyncio.run`` and reports progress through a callback.
"""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from segsync.domain.mapping import FieldMapping
from segsync.domain.permissions import Action, ExportRef, require
from segsync.domain.plan import RemovalPolicy
from segsync.domain.runs import RunStatus, duration_seconds, run_record
from segsync.domain.schedule import ExportMode, ExportSchedule
from segsync.errors import Conflict, InputError
from segsync.services.checkpoint import (
    LEASE_SECONDS,
    ProgressCallback,
    RunProgress,
    new_lease_owner,
    owner_is_dead,
)
from segsync.services.context import ServiceContext
from segsync.services.export_views import export_ref
from segsync.services.members import SegmentSource
from segsync.services.runner import ConfigTuner, RunTarget, execute
from segsync.settings import Settings
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.runs import RejectRecord, RunRecord, RunRepository
from segsync.storage.repositories.segments import SegmentRepository

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


def _target(session: Any, record: ExportRecord) -> RunTarget:
    if record.connection_id is None:
        raise InputError(
            f"export {record.name!r} has no connection; attach one with "
            f"`segsync exports attach {record.name} --connection C`"
        )
    connection = ExportRepository(session).connection(record.connection_id)
    segments = SegmentRepository(session)
    sources = []
    for segment_id in record.segment_ids:
        segment = segments.get(segment_id)
        sources.append(SegmentSource(str(segment.id), segment.name, segment.definition))
    if not sources:
        raise InputError(f"export {record.name!r} has no segments; add one with `exports edit`")
    return RunTarget(
        export_id=record.id,
        export_name=record.name,
        connection_id=connection.id,
        connection_name=connection.name,
        connection_type=connection.type,
        contract_limit=connection.contract_limit,
        mapping=FieldMapping.from_dict(record.mapping),
        removal=RemovalPolicy.parse(record.removal_policy),
        list_prefix=record.list_prefix or "",
        segments=tuple(sources),
    )


def start_run(
    ctx: ServiceContext, name: str, *, dry_run: bool = False, trigger: str = "manual"
) -> StartedRun:
    """Create, claim or resume the export's run and take its lease (see the module docstring).

    Raises ``NotFound`` (no such export), ``PermissionDenied``, ``InputError`` (detached export)
    and ``Conflict`` (a live process is running it)."""
    now = ctx.now()
    owner = new_lease_owner()
    expires = now + timedelta(seconds=LEASE_SECONDS)
    with ctx.db.session() as session:
        record = ExportRepository(session).get_by_name(name)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(record))
        target = _target(session, record)
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
    return asyncio.run(
        execute(ctx, started.run, started.target, owner=started.owner, progress=progress, tune=tune)
    )


def run_export(
    ctx: ServiceContext,
    name: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
) -> RunRecord:
    """Run the export now (or resume its interrupted run) and wait for the end (X1).

    ``progress`` receives :class:`RunProgress` events (items done / total) for a progress bar;
    ``tune`` may adjust the destination's connection config (tests). Returns the finished run;
    a run that failed is returned too (status Failure, a message saying why)."""
    started = start_run(ctx, name, dry_run=dry_run)
    return execute_started(ctx, started, progress=progress, tune=tune)


def run_all(
    ctx: ServiceContext, *, progress: ProgressCallback | None = None
) -> list[RunRecord | str]:
    """Run every export whose schedule is on (X1 "Run all"), one after another. Administrators
    only. Returns per export its finished run, or the reason it did not run (a string)."""
    require(ctx.actor, Action.RUN_ALL)
    with ctx.db.session() as session:
        records = ExportRepository(session).list()
    results: list[RunRecord | str] = []
    for record in records:
        if ExportSchedule.from_dict(record.schedule).mode is ExportMode.OFF:
            continue
        if record.connection_id is None:
            results.append(f"{record.name}: no connection; not run")
            continue
        try:
            results.append(run_export(ctx, record.name, progress=progress))
        except (Conflict, InputError) as err:
            results.append(f"{record.name}: {err.message}")
    return results


def spawn_background_run(
    settings: Settings, ctx: ServiceContext, name: str, *, dry_run: bool
) -> int:
    """``exports run --no-wait``: queue a run and start ``segsync exports run NAME`` in a
    detached process that claims it. Returns the run id to follow with ``runs show``."""
    with ctx.db.session() as session:
        record = ExportRepository(session).get_by_name(name)
        require(ctx.actor, Action.RUN_EXPORT, export_ref(record))
        target = _target(session, record)
        runs = RunRepository(session)
        if not dry_run:
            current = runs.processing_run(record.id)
            if current is not None and not owner_is_dead(current.lease_owner):
                expired = current.lease_expires_at is None or current.lease_expires_at <= ctx.now()
                if not expired:
                    raise Conflict(
                        f"a run of this export is already in progress (run {current.id})"
                    )
        run = runs.queued_run(record.id, dry_run=dry_run) or runs.create(
            export_id=target.export_id,
            export_name=target.export_name,
            connection_id=target.connection_id,
            actor=ctx.actor.email,
            now=ctx.now(),
            dry_run=dry_run,
        )
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


def list_runs(
    ctx: ServiceContext, *, export: str | None = None, limit: int = 50
) -> list[RunRecord]:
    """Runs newest first, optionally of one export (by name)."""
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        export_id = None
        if export is not None:
            export_id = ExportRepository(session).get_by_name(export).id
        return RunRepository(session).list(export_id=export_id, limit=limit)


def get_run(ctx: ServiceContext, run_id: int) -> RunRecord:
    require(ctx.actor, Action.VIEW)
    with ctx.db.session() as session:
        return RunRepository(session).get(run_id)


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
    """Write the run's rejects as CSV (email, profile id, kind, reason); return how many."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", newline="", encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err}") from None
    count = 0
    with handle:
        writer = csv.writer(handle)
        writer.writerow(REJECT_COLUMNS)
        for item in rejects(ctx, run_id):
            writer.writerow([item.email or "", item.profile_id or "", item.kind, item.reason])
            count += 1
    return count


def run_json(run: RunRecord) -> dict[str, Any]:
    """The run record of SPEC.md (``exports run --json``)."""
    return run_record(run.id, run.status, run.counts, run.started_at, run.ended_at, run.message)


def duration(run: RunRecord) -> float | None:
    """Seconds the run took (``None`` while it runs)."""
    return duration_seconds(run.started_at, run.ended_at)
