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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

from segsync.domain.batches import BlockPacker
from segsync.domain.emails import mask_email, normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import ListCounts, PlanCounts, SyncPlan, UpsertItem, contact_items
from segsync.errors import FatalError
from segsync.profiles.sql import quote_identifier
from segsync.services.context import ServiceContext
from segsync.services.sync.batch_hash import column_types
from segsync.services.sync.by_email import (
    ASCII_ONLY,
    email_key,
    members_by_email,
    sort_memory,
    sorted_rows,
)
from segsync.services.sync.clean import Cleaner, MemberScan
from segsync.services.sync.compiled import member_sqls
from segsync.services.sync.read import MemberReading, SegmentSource, profile_reader
from segsync.services.sync.spool import Spool
from segsync.services.sync.target import RunTarget

log = logging.getLogger(__name__)

STREAM_AHEAD = 200
"""Batches made ahead of sending that are held in memory, at most (20,000 items at 100 a
batch: two seconds of sending at 100 requests a second). Those made beyond wait on disk
(:class:`~.spool.Spool`): reading never waits for the destination."""
DRAIN_ROWS = 1_000  # member rows cleaned between two drains of the cleaner (at an email's end)
FIRST_DRAIN_ROWS = 200  # rows before the first drain: fewer, so the first batch comes sooner
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


@dataclass
class _Query:
    """The stream's SQL: every segment's member rows (the email key, the segment key, then the
    row as :func:`.read.scan_members` reads it), by email key; and the profile table's emails."""

    members: str
    emails: str
    column: str

    @classmethod
    def of(
        cls, reader: ServiceContext, segments: Sequence[SegmentSource], mapping: FieldMapping
    ) -> _Query | None:
        reading = MemberReading.of(reader, mapping)
        profile = reading.profile
        if column_types(profile.schema()).get(mapping.email) != "string":
            return None
        members = members_by_email(reading, segments, mapping.email, hashed=False)
        if members is None:
            return None
        emails = str(profile._find_backend().compile(profile.select(mapping.email)))
        return cls(members, emails, mapping.email)

    @classmethod
    def kept(cls, reader: ServiceContext, target: RunTarget) -> tuple[_Query | None, bool]:
        """:meth:`of`, as kept when nothing it is made of has changed (:mod:`.compiled`); and
        whether the settled walk's SQL, for the next run, was kept beside it."""
        kept = member_sqls(reader, target.export_id, ("stream",), target.segments, target.mapping)
        query = kept["stream"]
        return (None if query is None else cls(**query)), "walk" in kept

    def refusal(self, cursor: Any, limit: int) -> str | None:
        """Why the stream could not stand for the planned run, or None: more profiles than
        the contract limit, or an email that is not ASCII and that DuckDB and Python normalise
        apart."""
        (profiles,) = cursor.execute(f"SELECT count(*) FROM ({self.emails}) AS p").fetchone()  # noqa: S608
        if profiles > limit:
            return f"{profiles:,} profiles, more than the contract limit of {limit:,}"
        email = quote_identifier(self.column)
        cursor.execute(
            f"SELECT DISTINCT {email}, {email_key(self.column)} FROM ({self.emails}) AS p "  # noqa: S608
            f"WHERE NOT regexp_matches({email}, {ASCII_ONLY})"
        )
        for raw, key in cursor.fetchall():
            normal, _ = normalise_email(raw)
            if normal is not None and normal != key:
                return "an email DuckDB and Python normalise apart"
        return None


def stream_sql(
    reader: ServiceContext, segments: Sequence[SegmentSource], mapping: FieldMapping
) -> dict[str, str] | None:
    """A first run's stream's SQL (:class:`_Query`) as :mod:`.compiled` keeps it."""
    query = _Query.of(reader, segments, mapping)
    return None if query is None else asdict(query)


class FirstRun:
    """A first run's batches, made on a thread of their own as the members are read (see the
    module). Make it on the event loop; :meth:`start` it; :meth:`take` its batches (what
    :func:`.send.send_batches` asks of a source); :meth:`close` it in the end, always."""

    def __init__(
        self,
        ctx: ServiceContext,
        target: RunTarget,
        suppressed: frozenset[str],
        max_batch: int,
        *,
        ahead: int = STREAM_AHEAD,
    ) -> None:
        self.ctx, self.target, self.suppressed, self.max_batch = ctx, target, suppressed, max_batch
        self.several: set[str] = set()
        """The emails with more than one item (the tally counts each contact once)."""
        self.to_add: Counter[str] = Counter()
        """Items (new memberships) per segment key, so far."""
        self.contacts = 0
        self.items = 0
        self.batches = 0
        self._last = ""
        self._walk_kept = False  # the next run's walk SQL is kept already (:meth:`_Query.kept`)
        self.taken: Callable[[int], None] | None = None
        """Told how many items each :meth:`take` hands out (progress)."""
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._room = threading.Semaphore(ahead)  # batches the queue may hold
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
        counts = PlanCounts(
            contacts=self.contacts,
            added=self.contacts,
            new_memberships=self.items,
            items=self.items,
        )
        per_list = {key: ListCounts(self.to_add[key], self.to_add[key]) for key in base.per_list}
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
            streamed=self.batches,
        )

    async def close(self) -> None:
        """Stop making batches (if it still does) and wait for the thread's end, which lets
        go of the profile engine."""
        self._closing.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        self._spool.close()
        if self.read.done() and not self.read.cancelled():
            self.read.exception()  # seen: never "exception was never retrieved"

    # -- the thread -------------------------------------------------------------------------

    def _produce(self) -> None:
        outcome: Any
        try:
            outcome = self._read()
        except _Closed:
            outcome = True
        except BaseException as err:  # handed to the run, which raises it
            outcome = err
        self._loop.call_soon_threadsafe(self._ended, outcome)
        if outcome is True and not (self._closing.is_set() or self._walk_kept):
            self._keep_walk_sql()

    def _keep_walk_sql(self) -> None:
        """Compile the settled walk's SQL for the export's next run and keep it (it was not
        kept beside the stream's, :mod:`.compiled`): now, while the run sends its last batches
        — Ibis is loaded — so that the next run never loads Ibis. Where it fails, the next run
        compiles it."""
        t = self.target
        try:
            with profile_reader(self.ctx) as reader:
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

    def _read(self) -> bool:
        """Read, clean and pack every member, handing out the batches; False when the run
        cannot stream (nothing was handed out)."""
        target = self.target
        if not self.ctx.settings.profiles_on_duckdb:
            log.info("first run: read and planned (the profile engine is not DuckDB)")
            return False  # without opening a warehouse's engine only to find out
        # Not fewer_collections(): what reading makes here is sent and let go, and sending
        # makes reference cycles the collector should find young (a million members' first run
        # peaked 110 MB higher with the young generation looked at every 100,000 allocations).
        with profile_reader(self.ctx) as reader:
            query, self._walk_kept = _Query.kept(reader, target)
            if query is None:
                log.info("first run: read and planned (the profile engine cannot sort it)")
                return False
            import duckdb  # the profile engine has it loaded

            with sort_memory(reader.profiles.duckdb) as cursor:
                try:
                    why = query.refusal(cursor, target.contract_limit)
                    if why is None:
                        self._loop.call_soon_threadsafe(_settle, self._accepted, True)
                        names, chunks = sorted_rows(cursor, query.members)
                except duckdb.Error as err:  # out of memory for the sort, above all
                    why = f"DuckDB: {err}"
                if why is not None:
                    log.info("first run: read and planned, not streamed (%s)", why)
                    return False
                self._loop.call_soon_threadsafe(_settle, self._started, True)
                self._walk(names, chain.from_iterable(chunks))
        return True

    def _walk(self, names: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
        mapping, segments = self.target.mapping, self.target.segments
        columns = names[2:]
        cleaner = Cleaner(mapping, columns[0], None, self.suppressed)
        packer: BlockPacker[UpsertItem] = BlockPacker(len(segments), self.max_batch)
        rows_of: Counter[str] = Counter()
        since, drain = 0, FIRST_DRAIN_ROWS
        for key, group in groupby(rows, key=itemgetter(0)):
            for row in group:
                rows_of[row[1]] += 1
                since += 1
                cleaner.row(row[1], dict(zip(columns, row[2:], strict=True)))
            if since < drain and key is not None:
                continue
            since, drain = 0, DRAIN_ROWS
            for batch in self._items(cleaner, packer):
                self._put(batch)
        for batch in self._items(cleaner, packer):
            self._put(batch)
        for batch in packer.finish():
            self._put(batch)
        scan = cleaner.scan
        scan.per_segment = {s.key: rows_of[s.key] for s in segments}
        self._loop.call_soon_threadsafe(_settle, self.read, scan)

    def _items(
        self, cleaner: Cleaner, packer: BlockPacker[UpsertItem]
    ) -> Iterator[list[UpsertItem]]:
        """The batches filled by the contacts cleaned since the last drain."""
        for email, entry in cleaner.drain().items():
            if email <= self._last:  # each email's rows come together, in order
                raise FatalError(
                    f"first run: the members' emails came out of order at {mask_email(email)}"
                )
            self._last = email
            self.contacts += 1
            keys = sorted(entry.segments) if len(entry.segments) > 1 else entry.segments
            if len(keys) > 1:  # (sorted, as the planner orders a contact's items)
                self.several.add(email)
            for segment in keys:
                self.to_add[segment] += 1
            group = contact_items(entry.desired(email), keys)
            self.items += len(group)
            yield from packer.add(group)

    def _put(self, batch: list[UpsertItem]) -> None:
        if self._closing.is_set():
            raise _Closed
        self.batches += 1
        if self._room.acquire(blocking=False):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, batch)
        else:  # the queue is full: on disk, and the queue says where the next one is
            self._spool.put(batch)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _SPOOLED)


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
