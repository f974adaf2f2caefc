"""Workers (docs/design.md "Scheduling and workers"): processes that claim queued runs and execute
them — ``segsync worker``, and the one inside ``segsync serve``.

A :class:`Worker` registers itself in the ``workers`` table and heartbeats it on a timer, so
``exports run`` can tell whether one is alive (:func:`workers_alive`). Its loop claims the next
run (:func:`segsync.services.runs.queue.claim_next`), executes it (:func:`execute_claim`) and, with
nothing to do, waits ``poll_interval`` seconds. :meth:`Worker.stop` (SIGTERM, SIGINT) makes it
stop claiming; the run in flight stops starting batches, lets the ones in flight be
acknowledged and committed, and goes back to **Queued** with its checkpoint, so another worker
(or the next start of this one) resumes it where it stopped.

:func:`follow_run` is ``exports run`` without ``--no-wait``: it follows a queued run until it
ends; while no worker is alive it claims and executes the run itself, in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from segsync.domain.runs import RunStatus
from segsync.errors import NotFound, SegsyncError
from segsync.services.connections.manage import export_actor
from segsync.services.context import ServiceContext
from segsync.services.runs.defaults import POLL_SECONDS
from segsync.services.runs.queue import Claim, claim_next, claim_run, release_run
from segsync.services.sync.engine import ConfigTuner, EngineParts, execute
from segsync.services.sync.finish import notify_run_end
from segsync.services.sync.lease import mark_active, new_lease_owner
from segsync.services.sync.tally import ProgressCallback, RunProgress
from segsync.services.sync.target import load_target
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository
from segsync.storage.repositories.workers import WorkerRecord, WorkerRepository

__all__ = [
    "FOLLOW_POLL_SECONDS",
    "POLL_SECONDS",
    "SCHEDULED_TRIGGER",
    "WORKER_HEARTBEAT_SECONDS",
    "WORKER_STALE_SECONDS",
    "Worker",
    "any_worker_alive",
    "execute_claim",
    "follow_run",
    "workers_alive",
]

log = logging.getLogger(__name__)

WORKER_HEARTBEAT_SECONDS = 10.0
"""How often a worker refreshes its row in the ``workers`` table."""
WORKER_STALE_SECONDS = 45.0
"""A worker whose heartbeat is older than this is taken for dead."""
SCHEDULED_TRIGGER = "scheduled"
"""Runs the scheduler queued act with the export user's authority (C3)."""
FOLLOW_POLL_SECONDS = 0.5


def execute_claim(
    ctx: ServiceContext,
    claim: Claim,
    *,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
    should_yield: Callable[[], bool] | None = None,
    parts: EngineParts | None = None,
) -> RunRecord:
    """Execute a claimed run in this thread until it ends (or goes back to the queue when
    ``should_yield()`` turns true; ``parts`` replaces what the engine talks to, in tests).
    Scheduled runs act as the connection's export user: when
    that user was removed or demoted, the run ends Failure saying who and why (C3). A run whose
    export was removed ends Canceled; one that cannot run (detached, no segment) ends Failure."""
    run = claim.run
    try:
        with ctx.db.session() as session:
            if run.export_id is None:
                raise NotFound("the export was removed")
            target = load_target(session, ExportRepository(session).get(run.export_id))
        run_ctx = ctx
        if run.trigger == SCHEDULED_TRIGGER:
            actor = export_actor(ctx, target.connection_id)
            run_ctx = ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=actor)
    except NotFound:
        return _end_early(ctx, claim, RunStatus.CANCELED, "stopped: the export was removed")
    except SegsyncError as err:
        return _end_early(ctx, claim, RunStatus.FAILURE, err.message)
    outcome = asyncio.run(
        execute(
            run_ctx,
            run,
            target,
            owner=claim.owner,
            progress=progress,
            tune=tune,
            should_yield=should_yield,
            parts=parts,
        )
    )
    if outcome.released:
        return release_run(ctx, run.id, owner=claim.owner)
    return outcome.record


def _end_early(ctx: ServiceContext, claim: Claim, status: RunStatus, message: str) -> RunRecord:
    """End a claimed run that could not start; notify like every run end."""
    try:
        with ctx.db.session() as session:
            record = RunRepository(session).finish(
                claim.run.id, status, now=ctx.now(), message=message
            )
    finally:
        mark_active(claim.owner, False)
    log.warning("run %s ended %s before starting: %s", record.id, status.label, message)
    notify_run_end(ctx, record)
    return record


# ---------------------------------------------------------------- workers alive


def _process_gone(worker: WorkerRecord) -> bool:
    if worker.host != socket.gethostname() or worker.pid == os.getpid():
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def workers_alive(ctx: ServiceContext) -> list[WorkerRecord]:
    """Registered workers that are alive: a heartbeat younger than
    :data:`WORKER_STALE_SECONDS`, and (on this host) a process that still exists."""
    stale_before = ctx.now() - timedelta(seconds=WORKER_STALE_SECONDS)
    with ctx.db.session() as session:
        workers = WorkerRepository(session).list()
    return [w for w in workers if w.heartbeat_at > stale_before and not _process_gone(w)]


def any_worker_alive(ctx: ServiceContext) -> bool:
    return bool(workers_alive(ctx))


# ---------------------------------------------------------------- the worker


class Worker:
    """One worker: call :meth:`run` (blocks until :meth:`stop`), or :meth:`run_once`.

    ``ctx`` gives the metadata DB, settings and clock; the worker opens the profile engine only
    while a run reads members. ``tune`` adjusts connection configs and ``parts`` replaces what
    the engine talks to (tests)."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        poll_interval: float = POLL_SECONDS,
        heartbeat_interval: float = WORKER_HEARTBEAT_SECONDS,
        tune: ConfigTuner | None = None,
        parts: EngineParts | None = None,
    ) -> None:
        self.ctx = ctx
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.tune = tune
        self.parts = parts
        self.id = new_lease_owner()
        self.executed: list[RunRecord] = []
        """The runs this worker executed (as they ended or went back to the queue)."""
        self.current_run: int | None = None
        self._stop = threading.Event()
        self._beat_stop = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop claiming; the run in flight goes back to the queue after its batches in
        flight (see the module docstring). Safe to call from a signal handler or a thread."""
        self._stop.set()

    def run_once(self) -> RunRecord | None:
        """Claim and execute one run; ``None`` when none can start now."""
        claim = claim_next(self.ctx)
        if claim is None:
            return None
        self.current_run = claim.run.id
        self._heartbeat()
        verb = "resuming" if claim.resumed else "starting"
        log.info("worker %s: %s run %s of %r", self.id, verb, claim.run.id, claim.run.export_name)
        try:
            record = execute_claim(
                self.ctx, claim, tune=self.tune, should_yield=self._stop.is_set, parts=self.parts
            )
        finally:
            self.current_run = None
        self.executed.append(record)
        log.info("worker %s: run %s is %s", self.id, record.id, record.status.label)
        return record

    def run(self, *, once: bool = False) -> None:
        """Work until :meth:`stop` — or, with ``once``, until no run can start."""
        self._register()
        beat = threading.Thread(target=self._beat, name="segsync-worker-heartbeat", daemon=True)
        beat.start()
        try:
            while not self._stop.is_set():
                try:
                    record = self.run_once()
                except SegsyncError as err:
                    log.error("worker %s: %s", self.id, err.message)
                    record = None
                if record is None:
                    if once:
                        break
                    self._stop.wait(self.poll_interval)
        finally:
            self._beat_stop.set()
            beat.join()
            self._unregister()

    def _register(self) -> None:
        with self.ctx.db.session() as session:
            WorkerRepository(session).register(
                self.id, host=socket.gethostname(), pid=os.getpid(), now=self.ctx.now()
            )

    def _unregister(self) -> None:
        try:
            with self.ctx.db.session() as session:
                WorkerRepository(session).remove(self.id)
        except SegsyncError as err:
            log.warning("worker %s could not unregister: %s", self.id, err.message)

    def _heartbeat(self) -> None:
        with self.ctx.db.session() as session:
            repo = WorkerRepository(session)
            if not repo.heartbeat(self.id, now=self.ctx.now(), run_id=self.current_run):
                repo.register(
                    self.id, host=socket.gethostname(), pid=os.getpid(), now=self.ctx.now()
                )

    def _beat(self) -> None:
        while not self._beat_stop.wait(self.heartbeat_interval):
            try:
                self._heartbeat()
            except Exception:
                log.exception("worker %s: heartbeat failed", self.id)


# ---------------------------------------------------------------- following a run


def _progress_of(run: RunRecord) -> RunProgress:
    if run.status.is_final:
        phase = "done"
    elif run.status is RunStatus.QUEUED:
        phase = "queued"
    else:
        phase = "sending" if run.items_total else "reading"
    return RunProgress(run.id, phase, run.items_done, run.items_total, run.counts)


def follow_run(
    ctx: ServiceContext,
    run_id: int,
    *,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
    poll_interval: float = FOLLOW_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Follow run ``run_id`` until it ends and return it, reporting its progress (read from
    the run's row every ``poll_interval`` seconds; ``sleep`` is injectable). While no worker is
    alive, the run is claimed and executed here — so ``exports run`` works with no worker."""
    while True:
        if not any_worker_alive(ctx):
            claim = claim_run(ctx, run_id)
            if claim is not None:
                record = execute_claim(ctx, claim, progress=progress, tune=tune)
                if record.status.is_final:
                    return record
        with ctx.db.session() as session:
            run = RunRepository(session).get(run_id)
        if progress is not None:
            progress(_progress_of(run))
        if run.status.is_final:
            return run
        sleep(poll_interval)
