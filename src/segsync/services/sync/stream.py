"""A first run sent while it is read (X2): when the export's sync state is empty, every valid
contact is new and every membership is to add, so the plan needs nothing but the members
themselves — and each contact can be sent as soon as all of its member rows have been read.

The profile engine (DuckDB) gives every segment's member rows in one query, sorted by email key
(the email trimmed and lower-cased, as :func:`.by_email.email_key` makes it; DuckDB spills a
big sort to disk). A thread walks them one email at a time: its rows go through the clean stage's
:class:`~.clean.Cleaner`, which is drained every thousand rows or so, at an email's end
(:meth:`~.clean.Cleaner.drain`), the contacts' items — one per segment — go to a
:class:`~segsync.domain.batches.BlockPacker`, and each batch that fills is handed to the event
loop, which sends it (:func:`.send.send_batches` takes batches as they come, :class:`FirstRun`
being their source). Nothing of every contact is held: the run keeps two blocks of items, the
batches made ahead of sending (:data:`STREAM_AHEAD` in memory, the rest on disk in a
:class:`~.spool.Spool`, so reading never waits for the destination and lets go of the profile
engine as soon as it is done) and DuckDB's sort. The same contacts, items and batch count as a
planned run; the batches hold other neighbours. The run makes its lists while DuckDB sorts.
The reading itself is :class:`~.stream_read.Reading`'s. Where the command made a reading
process ready, that process reads and the thread relays what it hands out (:mod:`.apart`): the
run's own process is left to send.

A run streams only where nothing could tell it apart from the planned run (:meth:`FirstRun.start`
says False and the run reads and plans as before): the sync state holds no contact and no
membership, the run is no dry run, no undo and no approved held run, the profile engine is DuckDB
with the email in a text column, the profile table holds no more profiles than the contract
limit (so no more contacts either: the limit is never crossed halfway), and every email that is
not ASCII normalises (:func:`~segsync.domain.emails.normalise_email`) to DuckDB's key or to
nothing (so each email's rows come together). A list's first fill is never held (the hold
rule), so a first run needs no plan to judge either.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from segsync.domain.plan import ListCounts, PlanCounts, SyncPlan, UpsertItem
from segsync.services.context import ServiceContext
from segsync.services.sync.apart import APART_AHEAD, claim
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.compiled import member_sqls
from segsync.services.sync.read import profile_reader
from segsync.services.sync.spool import Spool, decode
from segsync.services.sync.stream_read import Reading, Which
from segsync.services.sync.target import RunTarget

log = logging.getLogger(__name__)

STREAM_AHEAD = 200
"""Batches made ahead of sending that are held in memory, at most (20,000 items at 100 a
batch: two seconds of sending at 100 requests a second). Those made beyond wait on disk
(:class:`~.spool.Spool`): reading never waits for the destination."""
_END = object()
_SPOOLED = object()  # the next batch is the spool's oldest


class _Closed(Exception):
    """The run stopped taking batches: the thread ends."""


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


class FirstRun:
    """A first run's batches, made on a thread of their own as the members are read (see the
    module). Make it on the event loop; :meth:`start` it; :meth:`take` its batches (what
    :func:`.send.send_batches` asks of a source); :meth:`close` it in the end, always."""

    reading_type: type[Reading] = Reading
    """What reads, on the thread (its counts kept either way)."""

    def __init__(
        self,
        ctx: ServiceContext,
        target: RunTarget,
        suppressed: frozenset[str],
        max_batch: int,
        *,
        ahead: int = STREAM_AHEAD,
    ) -> None:
        self.reading = self.reading_type(ctx, target, suppressed, max_batch, self)
        """The reading — what it reads for (its context, target, suppressed emails, batch size)
        and its counts (in a reading process's case, as it tells them)."""
        self.several = self.reading.several
        """The emails with more than one item (the tally counts each contact once)."""
        self.taken: Callable[[int], None] | None = None
        """Told how many items each :meth:`take` hands out (progress)."""
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.apart = claim(ctx)
        """The process that reads, where one does (:mod:`.apart`); None: this one's thread."""
        self.read_by: int | None = None
        """The reading process's id, once it has read every member (None: read here)."""
        # batches the queue may hold (a reading process's are decoded either way: fewer)
        self._room = threading.Semaphore(ahead if self.apart is None else min(ahead, APART_AHEAD))
        self._spool = Spool(ctx.settings.data_dir)
        self._closing = threading.Event()
        self._accepted: asyncio.Future[bool] = self._loop.create_future()
        self._started: asyncio.Future[bool] = self._loop.create_future()
        self.read: asyncio.Future[MemberScan] = self._loop.create_future()
        """What reading found, once every member was read."""
        self._thread = threading.Thread(target=self._produce, name="segsync-first-run")

    async def start(self) -> bool:
        """Begin: True once the run may stream and DuckDB sorts the members (a run makes its
        lists meanwhile); False when it cannot (the thread has ended; the reason is
        logged)."""
        self._thread.start()
        return await self._accepted

    async def sorted(self) -> bool:
        """True once the members are sorted and batches are coming; False when DuckDB's
        sort failed (logged; the run reads and plans instead)."""
        return await self._started

    async def take(self, most: int) -> list[list[UpsertItem]]:
        """Up to ``most`` batches, waiting for the first; [] once every batch was taken.
        Raises what failed while reading, after the batches made before it."""
        taken: list[list[UpsertItem]] = []
        while len(taken) < most and not (taken and self._queue.empty()):
            got = await self._queue.get()
            if isinstance(got, BaseException):
                self._queue.put_nowait(got)  # for the next take too
                if taken:
                    break
                raise got
            if got is _END:
                self._queue.put_nowait(got)
                break
            if got is _SPOOLED:
                got = self._spool.get()
            else:
                self._room.release()
            taken.append(got)
        if self.taken is not None and taken:
            self.taken(sum(map(len, taken)))
        return taken

    def plan(self, base: SyncPlan) -> SyncPlan:
        """``base`` (the lists: no contact, no item) with what was read and sent, counted."""
        r = self.reading
        counts = PlanCounts(
            contacts=r.contacts, added=r.contacts, new_memberships=r.items, items=r.items
        )
        per_list = {key: ListCounts(r.to_add[key], r.to_add[key]) for key in base.per_list}
        return SyncPlan(
            segments=base.segments,
            list_ids=base.list_ids,
            lists_to_ensure=base.lists_to_ensure,
            batches=[],
            removals=[],
            counts=counts,
            per_list=per_list,
            several=self.several,
            ordered=[],
            streamed=r.batches,
        )

    async def close(self) -> None:
        """Stop making batches (if it still does) and wait for the thread's end, which lets
        go of the profile engine."""
        self._closing.set()
        if self.apart is not None:
            self.apart.stop()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        self._spool.close()
        if self.read.done() and not self.read.cancelled():
            self.read.exception()  # seen: never "exception was never retrieved"

    # -- the thread -------------------------------------------------------------------------

    def _produce(self) -> None:
        outcome: Any
        try:
            outcome = self.reading.read() if self.apart is None else self.apart.read(self)
        except _Closed:
            outcome = True
        except BaseException as err:  # handed to the run, which raises it
            outcome = err
        self._loop.call_soon_threadsafe(self._ended, outcome)
        if outcome is True and not (self._closing.is_set() or self.reading.walk_kept):
            self._keep_walk_sql()

    def _keep_walk_sql(self) -> None:
        """Compile the settled walk's SQL for the export's next run and keep it (it was not
        kept beside the stream's, :mod:`.compiled`): now, while the run sends its last batches
        — Ibis is loaded — so that the next run never loads Ibis. Where it fails, the next run
        compiles it."""
        t = self.reading.target
        try:
            with profile_reader(self.reading.ctx) as reader:
                member_sqls(reader, t.export_id, ("walk",), t.segments, t.mapping)
        except Exception as err:  # only the next run's start-up is at stake
            log.warning("the next run's SQL was not compiled ahead: %s", err)

    def _ended(self, outcome: Any) -> None:
        if isinstance(outcome, BaseException) and self._started.done():
            _settle(self.read, outcome)
            self._queue.put_nowait(outcome)
        elif outcome is True:
            self._queue.put_nowait(_END)
        for future in (self._accepted, self._started):  # those not told yet: not streamed
            _settle(future, False if outcome is True else outcome)

    # -- the reading's outlet (Reading.out), called on the thread -----------------------------

    def batch(self, batch: list[UpsertItem] | bytes) -> None:
        """Hand a batch to the sending: in memory while there is room, else on the spool
        (bytes: the batch as a reading process sent it, :func:`.spool.encode`)."""
        if self._closing.is_set():
            raise _Closed
        if self._room.acquire(blocking=False):
            ready = decode(batch) if isinstance(batch, bytes) else batch
            self._loop.call_soon_threadsafe(self._queue.put_nowait, ready)
        else:  # the queue is full: on disk, and the queue says where the next one is
            self._spool.put(batch)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _SPOOLED)

    def tell(self, which: Which, value: Any) -> None:
        """Settle the run's future ``which`` (:data:`~.stream_read.Which`)."""
        futures: dict[str, asyncio.Future[Any]] = {
            "accepted": self._accepted, "started": self._started, "read": self.read
        }  # fmt: skip
        self._loop.call_soon_threadsafe(_settle, futures[which], value)

    @property
    def stopping(self) -> bool:
        """Whether the run stopped taking batches (:meth:`close`)."""
        return self._closing.is_set()


async def begin(first: FirstRun) -> FirstRun | None:
    """``first`` started, or None (closed) when the run cannot stream."""
    if await first.start():
        return first
    await first.close()
    return None


async def send_streamed(
    first: FirstRun,
    list_ids: dict[str, str],
    *,
    send: Callable[[FirstRun, dict[str, str]], Awaitable[None]],
    found: Callable[[MemberScan], Awaitable[None]],
) -> None:
    """``send`` the first run's batches as they come, to the lists of ``list_ids``; ``found``
    is told what reading found as soon as it has (sending goes on meanwhile). The caller
    closes the stream."""

    async def reading() -> None:
        scan = await first.read
        first.taken = None  # the plan's total counts every item from here
        await found(scan)

    task = asyncio.ensure_future(reading())
    try:
        await send(first, list_ids)
        await task
    finally:
        task.cancel()  # when sending failed first: reading's end is no longer awaited
        await asyncio.gather(task, return_exceptions=True)
