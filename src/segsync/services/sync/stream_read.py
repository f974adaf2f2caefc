"""A first run's reading (:mod:`.stream`): the DuckDB query, the clean stage and the packing,
done on the run's reading thread or in a reading process (:mod:`.apart`), which hand out what
it makes differently — hence an :class:`Outlet`, and nothing here of the event loop.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, Literal, Protocol

from segsync.domain.batches import BlockPacker
from segsync.domain.emails import mask_email
from segsync.domain.plan import UpsertItem, contact_items
from segsync.errors import FatalError
from segsync.services.context import ServiceContext
from segsync.services.sync.by_email import sort_memory, sorted_rows
from segsync.services.sync.clean import Cleaner
from segsync.services.sync.compiled import Catalog
from segsync.services.sync.read import profile_reader
from segsync.services.sync.stream_query import StreamQuery
from segsync.services.sync.target import RunTarget

log = logging.getLogger(__name__)

DRAIN_ROWS = 1_000  # member rows cleaned between two drains of the cleaner (at an email's end)
FIRST_DRAIN_ROWS = 200  # rows before the first drain: fewer, so the first batch comes sooner

Which = Literal["accepted", "started", "read"]
"""What the reading tells the run, in this order: it may stream (the members are being
sorted), the sort is done (batches come), and what it found (every member read)."""


class Outlet(Protocol):
    """Where a reading hands out its batches and tells the run how it goes."""

    def batch(self, batch: list[UpsertItem]) -> None: ...

    def tell(self, which: Which, value: Any) -> None: ...


class Reading:
    """One first run's reading: :meth:`read` it once, on whatever thread or process reads.
    Its counts are the run's (:meth:`.stream.FirstRun.plan`)."""

    def __init__(
        self,
        ctx: ServiceContext,
        target: RunTarget,
        suppressed: frozenset[str],
        max_batch: int,
        out: Outlet,
    ) -> None:
        self.ctx, self.target, self.suppressed, self.max_batch = ctx, target, suppressed, max_batch
        self.out = out
        self.several: set[str] = set()
        """The emails with more than one item (the tally counts each contact once)."""
        self.to_add: Counter[str] = Counter()
        """Items (new memberships) per segment key, so far."""
        self.contacts = 0
        self.items = 0
        self.batches = 0
        self.walk_kept = False  # the next run's walk SQL is kept already (StreamQuery.kept)
        self._last = ""

    def read(
        self,
        catalog: Catalog | None = None,
        given: tuple[StreamQuery | None, bool] | None = None,
    ) -> bool:
        """Read, clean and pack every member, handing out the batches; False when the run
        cannot stream (nothing was handed out). In a reading process: the stream's query as
        ``given`` (compiled by the run's process), else as kept, with ``catalog`` for its
        stamp (:class:`~.stream_query.NotKept` where it was not)."""
        target = self.target
        if not self.ctx.settings.profiles_on_duckdb:
            log.info("first run: read and planned (the profile engine is not DuckDB)")
            return False  # without opening a warehouse's engine only to find out
        # Not fewer_collections(): what reading makes here is sent and let go, and sending
        # makes reference cycles the collector should find young (a million members' first run
        # peaked 110 MB higher with the young generation looked at every 100,000 allocations).
        with profile_reader(self.ctx) as reader:
            query, self.walk_kept = given or StreamQuery.kept(reader, target, catalog)
            if query is None:
                log.info("first run: read and planned (the profile engine cannot sort it)")
                return False
            import duckdb  # the profile engine has it loaded

            with sort_memory(reader.profiles.duckdb) as cursor:
                try:
                    why = query.refusal(cursor, target.contract_limit)
                    if why is None:
                        self.out.tell("accepted", True)
                        names, chunks = sorted_rows(cursor, query.members)
                except duckdb.Error as err:  # out of memory for the sort, above all
                    why = f"DuckDB: {err}"
                if why is not None:
                    log.info("first run: read and planned, not streamed (%s)", why)
                    return False
                self.out.tell("started", True)
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
        self.out.tell("read", scan)

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
        self.batches += 1
        self.out.batch(batch)
