"""The run engine (X2–X13): one attempt of a run, as a pipeline of small stages

    read → clean → plan → send → checkpoint → remove → finish

— :mod:`.read`, :mod:`.clean`, :func:`segsync.domain.plan.build_plan`, :mod:`.send`,
:mod:`.committer` with :mod:`.tally`, :mod:`.removals`, :mod:`.finish` — with every
metadata-DB call on one thread through the attempt's :class:`~.store.RunStore`. A first run
into an empty sync state reads, cleans, packs and sends at once (:mod:`.stream`); how an attempt
ends is :mod:`.ending`. docs/design.md "The run engine" tells the whole story.

:func:`execute` runs an attempt of a run that :mod:`segsync.services.runs` created or claimed
(it holds the lease) and returns a :class:`RunOutcome`: the run as it ended — or
``released``, when ``should_yield()`` turned true (a worker stopping): the batches in flight
were acknowledged and committed, and the caller puts the run back in the queue.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from segsync.destinations.base import Destination
from segsync.destinations.registry import capabilities
from segsync.domain.emails import mask_email
from segsync.domain.plan import SyncPlan, build_plan
from segsync.domain.runs import RunStatus
from segsync.domain.sync_state import SyncStateView
from segsync.errors import AuthenticationFailed, FatalError, RetriableError, SegsyncError
from segsync.services.context import ServiceContext
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.committer import Committer
from segsync.services.sync.ending import RunEnding
from segsync.services.sync.finish import notify_run_end
from segsync.services.sync.hold import hold_gate
from segsync.services.sync.lease import mark_active
from segsync.services.sync.lists import RunLists
from segsync.services.sync.parts import ConfigTuner, EngineParts, RunOutcome
from segsync.services.sync.pending import check_pending
from segsync.services.sync.removals import Membership as Pair
from segsync.services.sync.removals import remove_memberships
from segsync.services.sync.report import (
    dry_run_message,
    gave_up_message,
    over_limit_message,
    plan_summary,
    read_warnings,
)
from segsync.services.sync.send import Batches, Planned, send_batches
from segsync.services.sync.store import RunStore
from segsync.services.sync.stream import FirstRun, begin, send_streamed
from segsync.services.sync.switching import attempt_settings, fewer_collections
from segsync.services.sync.tally import Ack, ProgressCallback, Tally
from segsync.services.sync.target import RunTarget
from segsync.services.sync.undo import UNDO_KIND, undo_plan
from segsync.storage.repositories.runs import RunRecord

log = logging.getLogger(__name__)

__all__ = ["ConfigTuner", "EngineParts", "RunOutcome", "RunTarget", "execute"]


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
    parts: EngineParts | None = None,
) -> RunOutcome:
    """Run one attempt of ``run`` (Processing, leased by ``owner``) to its end, and notify."""
    parts = parts or EngineParts()
    mark_active(owner, True)
    released = False
    try:
        store = parts.store(
            ctx,
            run_id=run.id,
            export_id=target.export_id,
            owner=owner,
            lease_seconds=parts.lease_seconds,
        )
        with attempt_settings():
            async with store:
                engine = _Engine(ctx, run, target, store, parts, progress, tune, should_yield)
                outcome = await engine.run()
        released = outcome.released
    finally:
        if not released:  # a released run stays ours until the caller has put it back
            mark_active(owner, False)
    if not outcome.released:
        await asyncio.to_thread(notify_run_end, ctx, outcome.record)
    return outcome


@dataclass
class _Engine(RunEnding):
    ctx: ServiceContext
    run_record: RunRecord
    target: RunTarget
    store: RunStore
    parts: EngineParts
    progress: ProgressCallback | None
    tune: ConfigTuner | None
    should_yield: Callable[[], bool] | None
    tally: Tally = field(init=False)
    destination: Destination | None = None
    plan: SyncPlan | None = None
    state: SyncStateView = field(default_factory=SyncStateView)
    """The sync state the plan is made against (all of it, or the unsettled contacts')."""
    warnings: list[str] = field(default_factory=list)
    lists: RunLists = field(init=False)
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.lists = RunLists(self.store, self.target, self.warnings)
        resumed = self.run_record.attempts > 1
        self.tally = (
            Tally(self.run_record.counts, self.run_record.items_done) if resumed else Tally()
        )

    # -- around the pipeline ----------------------------------------------------------------

    def emit(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(self.tally.progress(self.run_record.id, phase))

    def stopping(self) -> bool:
        """Whether to start nothing new: a cancel, a lost lease, or this process stopping."""
        store = self.store
        yielding = self.should_yield is not None and self.should_yield()
        return store.cancel_requested or store.lost or yielding

    def check_stop(self) -> None:
        """Raise what ends the run here, if anything asks it to stop."""
        if self.store.lost:
            raise FatalError(
                f"run {self.run_record.id} was taken over by another process; this one stops"
            )
        if self.store.cancel_requested:
            raise _Stop
        if self.should_yield is not None and self.should_yield():
            raise _Release

    async def run(self) -> RunOutcome:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            return await self._pipeline()
        except _Stop:
            return await self._end(RunStatus.CANCELED, await self._stop_message())
        except _Release:
            await self._save_requests()
            self.emit("queued")
            return RunOutcome(await self.store.record(), released=True)
        except AuthenticationFailed as err:
            return await self._key_rejected(err)
        except RetriableError as err:
            await self._save_requests()
            return await self._end(RunStatus.FAILURE, gave_up_message(self.target, err.message))
        except SegsyncError as err:
            await self._save_requests()
            return await self._end(RunStatus.FAILURE, err.message)
        except Exception as err:
            if await self._export_removed():  # its sync state went with it mid-commit (P2)
                return await self._end(RunStatus.CANCELED, await self._stop_message())
            log.exception("run %s failed unexpectedly", self.run_record.id)
            await self._save_requests()
            return await self._end(
                RunStatus.FAILURE, f"unexpected error ({type(err).__name__}): {err}"
            )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await self.lists.drop_ahead()
            if self.destination is not None:
                await self.destination.aclose()

    async def _heartbeat(self) -> None:
        while not self.store.lost:
            await asyncio.sleep(self.parts.lease_seconds / 4)
            try:
                await self.store.heartbeat()
            except FatalError:
                return  # taken over: stopping() now says so
            except Exception:  # a passing DB error must not end the heartbeats for good
                log.warning("run %s: heartbeat failed; retrying", self.run_record.id, exc_info=True)

    # -- the pipeline -----------------------------------------------------------------------

    async def _pipeline(self) -> RunOutcome:
        target = self.target
        state = await self.store.sync_state(target, light=True)  # list ids, pending, sizes
        if not self.run_record.dry_run and any(state.list_ids.values()):
            state = await self.lists.check(await self._open(), state)  # lists deleted by hand
        if self.run_record.kind == UNDO_KIND:  # the plan comes from the undone run's record
            self.state = state = await self.store.sync_state(target)
            undo = await undo_plan(self.store, self.run_record, target, state, self.warnings)
            plan = await self._planned(undo, state)
        else:
            first = await self._first_run(state)
            if first is not None and (streamed := await self._streamed(first, state)):
                return streamed  # else its sort failed: read and plan (the lists are made)
            if (scan := await self._read(state)).contacts > target.contract_limit:
                return await self._end(RunStatus.SKIPPED, over_limit_message(target, scan.contacts))
            plan = await self._plan(scan, self.state)
            del scan
        state = self.state
        if held := await hold_gate(self.store, self.run_record, target, plan, state, self.warnings):
            return await self._end(RunStatus.HELD, held)
        if self.run_record.dry_run:
            return await self._end(RunStatus.SUCCESSFUL, dry_run_message(plan))
        if plan.is_empty:
            return await self._end(RunStatus.SUCCESSFUL, "nothing changed: nothing was sent")
        list_ids = await self._lists(plan)
        await self._send(Planned(plan.batches), list_ids)
        await self.lists.finish()
        await self._remove(plan, list_ids, state)
        return await self._done()

    async def _first_run(self, light: SyncStateView) -> FirstRun | None:
        """A first run sent while it is read (:mod:`.stream`), begun; None: read and plan."""
        run, make = self.run_record, self.parts.first_run
        approved = (run.hold or {}).get("approved") is not None
        if make is None or run.dry_run or approved or any(light.recorded_per_segment().values()):
            return None  # (the light state's sizes count pending memberships too)
        if not await self.store.is_empty():  # contacts without a membership, say
            return None
        self.emit("reading")
        batch = capabilities(self.target.connection_type).max_batch_size
        first = make(self.ctx, self.target, await self.store.suppressed(), batch)
        if any(light.list_ids.get(s.key) is None for s in self.target.segments):
            self.lists.ask_ahead(self._open)  # while DuckDB is opened and asked
        if (began := await begin(first)) is None:
            await self.lists.drop_ahead()  # read and planned: the lists are looked up then
        return began

    async def _streamed(self, first: FirstRun, state: SyncStateView) -> RunOutcome | None:
        """Make the lists while DuckDB sorts, then send as the members are read; None when
        the sort failed (the run reads and plans: its lists are made)."""
        keys = [s.key for s in self.target.segments]
        self.plan = base = build_plan((), state, segments=keys, removal=self.target.removal)
        try:
            list_ids = await self._lists(base)
            self.tally.planned(hashes=state.hashes, unchanged=0, items=0, several=first.several)
            await self.store.read_done(self.tally.snapshot(), [])  # an earlier attempt's go
            if not await first.sorted():  # (then reading and planning count and save anew)
                return None
            first.taken = self.tally.more_items
            found = functools.partial(self._found, first, state)
            await send_streamed(first, list_ids, send=self._send, found=found)
        finally:
            await first.close()
        await self.lists.finish()
        return await self._done()

    async def _found(self, first: FirstRun, state: SyncStateView, scan: MemberScan) -> None:
        """What a streamed first run's reading found, and the plan it amounts to."""
        self.tally.read(scan.members, scan.invalid, scan.duplicates, scan.conversion_rejected)
        self.warnings.extend(read_warnings(scan))
        await self.store.read_done(self.tally.snapshot(), scan.rejects, replace=False)
        assert self.plan is not None
        await self._planned(first.plan(self.plan), state)

    async def _read(self, light: SyncStateView) -> MemberScan:
        """Find the settled contacts apart where the state has memberships (:mod:`.settled`),
        load the state of the others (of all when none were found), read and clean their
        members, keeping payloads only where needed (both walks in a thread)."""
        target, ctx, apart = self.target, self.ctx, None
        suppressed = await self.store.suppressed()
        self.emit("reading")
        if sum(light.recorded_per_segment().values()):
            apart = await asyncio.to_thread(
                self.parts.settle, ctx, target.export_id, target.segments, target.mapping, light,
                suppressed,
            )  # fmt: skip
        if apart is None:  # all of the state, as the lists check left it
            self.state = state = await self.store.sync_state(target)
        else:
            self.state = state = apart.state(light)
        scan = await asyncio.to_thread(
            self.parts.read, ctx, target.segments, target.mapping, state.needs, suppressed,
            state.hashes, apart,
        )  # fmt: skip
        self.tally.read(scan.members, scan.invalid, scan.duplicates, scan.conversion_rejected)
        await self.store.read_done(self.tally.snapshot(), scan.rejects)
        self.check_stop()
        self.emit("planning")
        self.warnings.extend(read_warnings(scan))
        return scan

    async def _plan(self, scan: MemberScan, state: SyncStateView) -> SyncPlan:
        with fewer_collections():  # a few objects per member, as in reading
            plan = build_plan(
                scan.desired(settled_apart=True),
                state,
                segments=[s.key for s in self.target.segments],
                removal=self.target.removal,
                max_batch=capabilities(self.target.connection_type).max_batch_size,
                settled=scan.settled(),
                apart=(scan.apart, scan.apart_per_segment),
            )
        return await self._planned(plan, state)

    async def _planned(self, plan: SyncPlan, state: SyncStateView) -> SyncPlan:
        self.plan = plan
        self.tally.planned(
            hashes=state.hashes,
            unchanged=plan.counts.unchanged,
            items=plan.counts.items + len(plan.removals),
            several=plan.several,
        )
        summary = plan_summary(plan, self.target, with_samples=self.run_record.dry_run)
        await self.store.planned(self.tally.snapshot(), summary)
        return plan

    async def _open(self) -> Destination:
        async with self._opening:  # the first run's look-up of lists may open it meanwhile
            if self.destination is None:
                type_name, config = await self.store.connection(self.target.connection_id)
                config = config if self.tune is None else self.tune(config)
                self.destination = self.parts.open_destination(type_name, config)
        return self.destination

    async def _lists(self, plan: SyncPlan) -> dict[str, str]:
        destination = await self._open()
        return await self.lists.ensure(
            destination, plan, check_stop=self.check_stop, started=lambda: self.emit("lists")
        )

    async def _send(self, batches: Batches, list_ids: dict[str, str]) -> None:
        assert self.destination is not None
        await self.store.heartbeat()  # a fresh look for a cancel before the first batch
        self.check_stop()
        self.emit("sending")
        committer = Committer(self._commit)
        send = self.lists.sender(self.destination)
        if not await send_batches(
            self.destination,
            batches,
            list_ids,
            committer,
            stop=self.stopping,
            intend=lambda items: self.store.intend(items, self.tally.changing(items)),
            send=send,
        ):
            self.check_stop()
            raise _Stop

    async def _commit(self, acks: Sequence[Ack]) -> None:
        changes = self.tally.acknowledge(acks)
        self.tally.requests(self.requests)
        await self.store.commit(self.tally.snapshot(), changes)
        for email in changes.refused:
            log.info("run %s: the destination refused %s", self.run_record.id, mask_email(email))
        self.emit("sending")

    async def _remove(self, plan: SyncPlan, list_ids: dict[str, str], state: SyncStateView) -> None:
        if not plan.removals:
            return
        assert self.destination is not None
        self.check_stop()
        self.emit("removing")
        removals = plan.removals
        if any(m in state.pending for m in removals):
            sizes = state.recorded_per_segment()
            check = await check_pending(self.destination, removals, state.pending, sizes, list_ids)
            if check.absent:
                await self._commit_removals(check.absent, [])
            removals = check.to_send
        finished = await remove_memberships(
            self.destination,
            removals,
            list_ids,
            commit=self._commit_removals,
            after_commit=lambda: self.emit("removing"),
            stop=self.stopping,
            intend=self.store.intend_removals,
        )
        if not finished:
            self.check_stop()
            raise _Stop

    async def _commit_removals(self, done: Sequence[Pair], were_members: Sequence[Pair]) -> None:
        self.tally.removed(len(done), len(were_members))
        self.tally.requests(self.requests)
        await self.store.removed(self.tally.snapshot(), done, were_members)
