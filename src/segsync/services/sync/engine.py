"""The run engine (X2–X13): read members → cap check → plan against the sync state → ensure
lists → send upsert batches → remove memberships, committing the sync state and the run's
progress after every acknowledged batch (docs/design.md "Sync state is the checkpoint").

:func:`execute` runs one attempt of a run that :mod:`segsync.services.runs.manage` created or
claimed (it holds the lease). It ends the run — Successful, Failure, Skipped or Canceled — and then
notifies (:func:`segsync.services.sync.inputs.notify_run_end`). Two other ways out:

* ``should_yield()`` turned true (a worker stopping on SIGTERM): the batches in flight are
  acknowledged and committed, no new batch starts, and the run goes back to **Queued** with
  its checkpoint (:func:`segsync.services.runs.queue.release_run`); any worker resumes it;
* the process dies: the run stays Processing until its lease lapses, then a worker (or the
  next ``exports run``) resumes it by planning again — what was acknowledged is in the sync
  state, so only the rest is sent.

The profile engine is held only while the members are read (a DuckDB file admits one
read-write process), unless the caller had it open already.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from segsync.destinations.base import BatchResult, ConnectionConfig, Destination
from segsync.destinations.base import UpsertItem as OutgoingItem
from segsync.destinations.registry import create_destination
from segsync.domain.emails import mask_email
from segsync.domain.plan import (
    SyncPlan,
    UpsertItem,
    build_plan,
    list_title,
)
from segsync.domain.runs import RunCounts, RunStatus
from segsync.errors import AuthenticationFailed, Conflict, FatalError, RetriableError, SegsyncError
from segsync.services.connections.manage import connection_config, flag_connection
from segsync.services.context import ServiceContext
from segsync.services.runs.queue import release_run
from segsync.services.sync.checkpoint import (
    LEASE_SECONDS,
    Checkpoint,
    ProgressCallback,
    mark_active,
)
from segsync.services.sync.inputs import load_state, notify_run_end, read_members
from segsync.services.sync.removals import remove_memberships
from segsync.services.sync.report import (
    done_message,
    dry_run_message,
    finish_run,
    forgotten_warning,
    plan_summary,
    set_aside_warning,
)
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository

log = logging.getLogger(__name__)

ConfigTuner = Callable[[ConnectionConfig], ConnectionConfig]
"""Adjusts the connection config before the destination is built (tests: fast backoff)."""

KEY_REJECTED = "key_rejected"
T = TypeVar("T")

__all__ = ["ConfigTuner", "RunTarget", "execute"]


class _Stop(Exception):
    """The run was asked to stop (cancel, or its export was removed)."""


class _Release(Exception):
    """This process stops (``should_yield``): the run goes back to the queue."""


async def execute(
    ctx: ServiceContext,
    run: RunRecord,
    target: RunTarget,
    *,
    owner: str,
    progress: ProgressCallback | None = None,
    tune: ConfigTuner | None = None,
    should_yield: Callable[[], bool] | None = None,
) -> RunRecord:
    """Run one attempt of ``run`` (Processing, leased by ``owner``) to its end, and notify.

    Returns the run as it ended — or, when ``should_yield`` turned true, as it went back to
    the queue (status Queued)."""
    mark_active(owner, True)
    checkpoint = Checkpoint(
        ctx,
        run_id=run.id,
        export_id=target.export_id,
        owner=owner,
        base=run.counts if run.attempts > 1 else RunCounts(),
        base_done=run.items_done if run.attempts > 1 else 0,
        progress=progress,
    )
    engine = _Engine(ctx, run, target, checkpoint, tune, should_yield or (lambda: False))
    try:
        record = await engine.run()
    finally:
        mark_active(owner, False)
    await asyncio.to_thread(notify_run_end, ctx, record)
    return record


class _Engine:
    def __init__(
        self,
        ctx: ServiceContext,
        run: RunRecord,
        target: RunTarget,
        checkpoint: Checkpoint,
        tune: ConfigTuner | None,
        should_yield: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.run_record = run
        self.target = target
        self.cp = checkpoint
        self.tune = tune
        self.should_yield = should_yield
        self.destination: Destination | None = None
        self.plan: SyncPlan | None = None
        self.warnings: list[str] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segsync-run-db")

    @property
    def requests(self) -> int:
        return 0 if self.destination is None else self.destination.requests_made

    def _finish(self, status: RunStatus, message: str) -> RunRecord:
        if self.destination is not None:
            self.cp.counts.requests = self.cp.base.requests + self.requests
        try:
            return finish_run(
                self.ctx,
                self.run_record,
                self.target,
                self.cp,
                self.plan,
                status=status,
                message=message,
                warnings=self.warnings,
            )
        except Conflict as err:  # another process holds the run now, or it already ended
            log.warning("run %s: not ended here: %s", self.run_record.id, err.message)
            with self.ctx.db.session() as session:
                return RunRepository(session).get(self.run_record.id)

    async def run(self) -> RunRecord:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            return await self._run()
        except _Stop:
            return self._finish(RunStatus.CANCELED, self._stop_message())
        except _Release:
            self._save_requests()
            self.cp.emit("queued")
            return release_run(self.ctx, self.run_record.id, owner=self.cp.owner)
        except AuthenticationFailed as err:
            return self._key_rejected(err)
        except RetriableError as err:
            self._save_requests()
            return self._finish(
                RunStatus.FAILURE,
                f"{self.target.connection_type.capitalize()} kept failing after retries: "
                f"{err.message}. Everything acknowledged so far is saved; run the export again "
                "to continue where it stopped",
            )
        except SegsyncError as err:
            self._save_requests()
            return self._finish(RunStatus.FAILURE, err.message)
        except Exception as err:
            if self._export_removed():  # its sync state went with it mid-commit (P2)
                return self._finish(RunStatus.CANCELED, self._stop_message())
            log.exception("run %s failed unexpectedly", self.run_record.id)
            self._save_requests()
            return self._finish(
                RunStatus.FAILURE, f"unexpected error ({type(err).__name__}): {err}"
            )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            if self.destination is not None:
                await self.destination.aclose()
            self._executor.shutdown(wait=True)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 4)
            try:
                await self._db(self.cp.heartbeat)
            except FatalError:
                raise  # taken over: the next commit stops the run
            except Exception:  # a passing DB error must not end the heartbeats for good
                log.warning("run %s: heartbeat failed; retrying", self.run_record.id, exc_info=True)

    def _db_future(self, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(call, *args))

    def _harvest(self, pending: list[asyncio.Future[list[str]]], *, wait: bool) -> None:
        """Report the batch commits that finished (in order); raise the first failure."""
        while pending and (wait or pending[0].done()):
            refused = pending.pop(0).result()
            self.cp.emit("sending")
            for email in refused:
                log.info("run %s: Autopilot refused %s", self.run_record.id, mask_email(email))

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        """Run a metadata-DB call on the engine's one DB thread: commits (and their fsyncs)
        then never stall the event loop, and they stay one after another."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args))

    def _save_requests(self) -> None:
        try:
            self.cp.requests(self.requests)
        except SegsyncError:
            log.warning("could not save the request count of run %s", self.run_record.id)

    def _export_removed(self) -> bool:
        with self.ctx.db.session() as session:
            return RunRepository(session).get(self.run_record.id).export_id is None

    def _stop_message(self) -> str:
        if self._export_removed():
            return "stopped: the export was removed; nothing more was sent"
        return "canceled: stopped after the batch in flight; what was acknowledged is saved"

    def _key_rejected(self, err: AuthenticationFailed) -> RunRecord:
        self._save_requests()
        message = (
            f"the {self.target.connection_type.capitalize()} API key was rejected "
            f"({err.message}); edit the key of connection {self.target.connection_name!r} "
            f"and check it with `segsync connections test {self.target.connection_name}`, "
            "then run the export again"
        )
        flag_connection(self.ctx, self.target.connection_id, KEY_REJECTED, message)
        return self._finish(RunStatus.FAILURE, message)

    # -- the run ----------------------------------------------------------------------------

    async def _run(self) -> RunRecord:
        target, cp = self.target, self.cp
        state = load_state(self.ctx, target)
        cp.emit("reading")

        def needs_payload(email: str, digest: str, segment: str) -> bool:
            return (
                state.hashes.get(email) != digest
                or state.list_ids.get(segment) is None
                or (segment, email) not in state.memberships
            )

        scan = await asyncio.to_thread(read_members, self.ctx, target, needs_payload)
        self._check_stop()
        cp.start(
            members=scan.members,
            invalid=scan.invalid,
            duplicates=scan.duplicates,
            conversion_rejected=scan.conversion_rejected,
            rejects=scan.rejects,
        )
        if scan.invalid or scan.duplicates or scan.conversion_rejected:
            self.warnings.append(
                set_aside_warning(scan.invalid, scan.duplicates, scan.conversion_rejected)
            )
        if scan.forgotten:
            self.warnings.append(forgotten_warning(scan.forgotten))
        if scan.contacts > target.contract_limit:
            return self._finish(
                RunStatus.SKIPPED,
                f"skipped: the export's segments hold {scan.contacts:,} distinct valid emails, "
                f"more than the contract limit of {target.contract_limit:,} of connection "
                f"{target.connection_name!r}; nothing was sent. Narrow the segments or raise "
                "the connection's contract limit",
            )
        plan = build_plan(
            scan.desired(),
            state,
            segments=[s.key for s in target.segments],
            removal=target.removal,
        )
        del scan
        self.plan = plan
        cp.planned(
            hashes=state.hashes,
            unchanged=plan.counts.unchanged,
            items=plan.counts.items + len(plan.removals),
        )
        with self.ctx.db.session() as session:
            RunRepository(session).set_plan(
                self.run_record.id,
                plan_summary(plan, target, with_samples=self.run_record.dry_run),
            )
        if self.run_record.dry_run:
            return self._finish(RunStatus.SUCCESSFUL, dry_run_message(plan))
        if plan.is_empty:
            return self._finish(RunStatus.SUCCESSFUL, "nothing changed: nothing was sent")
        self.destination = self._open_destination()
        list_ids = await self._ensure_lists(plan)
        await self._send(plan, list_ids)
        await self._remove(plan, list_ids)
        cp.requests(self.requests)
        rejected = cp.counts.rejected - cp.conversion_rejected
        if rejected:
            self.warnings.append(
                f"{rejected:,} contact(s) were refused by "
                f"{target.connection_type.capitalize()}; see `segsync runs rejects "
                f"{self.run_record.id} --csv FILE`"
            )
        return self._finish(RunStatus.SUCCESSFUL, done_message(cp.counts))

    def _open_destination(self) -> Destination:
        type_name, config = connection_config(self.ctx, self.target.connection_id)
        if self.tune is not None:
            config = self.tune(config)
        return create_destination(type_name, config)

    def _check_stop(self) -> None:
        """Raise ``_Stop`` if a cancel was asked for, ``_Release`` if this process stops."""
        with self.ctx.db.session() as session:
            self.cp.stop_requested = RunRepository(session).is_cancel_requested(self.run_record.id)
        if self.cp.stop_requested:
            raise _Stop
        if self.should_yield():
            raise _Release

    async def _ensure_lists(self, plan: SyncPlan) -> dict[str, str]:
        assert self.destination is not None
        list_ids = {key: value for key, value in plan.list_ids.items() if value is not None}
        if plan.lists_to_ensure:
            self.cp.emit("lists")
        for key in plan.lists_to_ensure:
            self._check_stop()
            title = _title(self.target, key)
            list_id = await self.destination.ensure_list(title)
            with self.ctx.db.session() as session:
                ExportRepository(session).save_list(
                    self.target.export_id, int(key), list_id, title, now=self.ctx.now()
                )
            list_ids[key] = list_id
            log.info("run %s: list %r is %s", self.run_record.id, title, list_id)
        return list_ids

    async def _send(self, plan: SyncPlan, list_ids: dict[str, str]) -> None:
        assert self.destination is not None
        batches = plan.batches
        stopped: _Stop | _Release | None = None

        self._check_stop()

        async def feed() -> AsyncIterator[list[OutgoingItem]]:
            nonlocal stopped
            for batch in batches:
                try:
                    self._check_stop()  # a cheap read: stop right after the batches in flight
                except (_Stop, _Release) as err:
                    stopped = err
                    return
                yield [_outgoing(item, list_ids) for item in batch]

        self.cp.emit("sending")
        # Commits run on the DB thread while sending goes on, in acknowledgement order. Batches
        # acknowledged while a commit runs are committed together by the next one.
        commits: list[asyncio.Future[list[str]]] = []
        waiting: list[tuple[list[UpsertItem], BatchResult]] = []

        def commit_waiting() -> None:
            if waiting and (not commits or commits[-1].done()):
                acks = list(waiting)
                waiting.clear()
                future = self._db_future(self.cp.batches_acknowledged, acks, self.requests)
                future.add_done_callback(lambda _: commit_waiting())
                commits.append(future)

        try:
            async for index, result in self.destination.upsert_batches(feed()):
                waiting.append((batches[index], result))
                commit_waiting()
                self._harvest(commits, wait=False)
            while waiting or (commits and not commits[-1].done()):
                await asyncio.wait([commits[-1]])
                commit_waiting()
        finally:
            # Even when sending failed, the batches Autopilot acknowledged are committed before
            # the run ends (a commit that ends starts the one of the batches waiting for it).
            while commits and not commits[-1].done():
                await asyncio.wait([commits[-1]])
            await asyncio.gather(*commits, return_exceptions=True)
        self._harvest(commits, wait=True)
        if stopped is not None:
            raise stopped

    async def _remove(self, plan: SyncPlan, list_ids: dict[str, str]) -> None:
        if not plan.removals:
            return
        assert self.destination is not None
        self._check_stop()
        self.cp.emit("removing")
        finished = await remove_memberships(
            self.destination,
            plan.removals,
            list_ids,
            commit=lambda done: self._db(self.cp.removals_acknowledged, done, self.requests),
            after_commit=lambda: self.cp.emit("removing"),
            stop=lambda: self.cp.stop_requested or self.should_yield(),
        )
        if not finished:
            self._check_stop()
            raise _Stop


def _outgoing(item: UpsertItem, list_ids: dict[str, str]) -> OutgoingItem:
    list_id = None if item.segment is None else list_ids[item.segment]
    return OutgoingItem(email=item.email, fields=item.fields, custom=item.custom, list_id=list_id)


def _title(target: RunTarget, key: str) -> str:
    return list_title(target.segment_name(key), target.list_prefix)
