"""The send stage of a run: the plan's upsert batches go to the destination, as many in flight
as it wants to hold its rate limit, each acknowledged batch handed to the :class:`Committer`.

No new batch starts once ``stop()`` says so (a cancel, a worker stopping, a lost lease) or a
commit failed — asked before a batch's intent is written (a stop between batches leaves none
intended but unsent) and again after (a stop seen meanwhile holds even that batch back); the batches
already in flight are acknowledged and committed before the stage returns. Even when sending
fails, what was acknowledged is committed first (then the error is raised), so nothing Autopilot
accepted is left out of the sync state.

Write-ahead intents: before batches leave, what they may create is committed as pending
(``intend``) — in one write for as many batches as the destination has room for in flight
right now, which it then takes at once (so a crash leaves only the batches in flight intended
but unanswered — should the room shrink during the write, the rest of them follow as room
frees — and a batch waits for one intent write with the others, not one each behind the
database thread's commits). A crash between a batch's arrival at the destination and its
acknowledgement's commit then leaves pending rows, which later runs confirm or remove —
whatever the data does meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from segsync.destinations.base import BatchResult, Destination
from segsync.destinations.base import UpsertItem as OutgoingItem
from segsync.domain.plan import UpsertItem
from segsync.services.sync.committer import Committer
from segsync.services.sync.switching import sending_collections
from segsync.services.sync.tally import Ack

Intend = Callable[[Sequence[UpsertItem]], Awaitable[int | None]]
"""Records what items may create before they leave; the intent's id, if it has one."""


def outgoing(batch: Sequence[UpsertItem], list_ids: Mapping[str, str]) -> list[OutgoingItem]:
    """A planned batch as the destination takes it: each segment becomes its list's id."""
    return [
        OutgoingItem(
            i.email, i.fields, i.custom, None if i.segment is None else list_ids[i.segment]
        )
        for i in batch
    ]


class Batches(Protocol):
    """Where :func:`send_batches` takes its batches from."""

    async def take(self, most: int) -> list[list[UpsertItem]]:
        """Up to ``most`` (≥ 1) batches, at least one while any are left; [] at the end."""
        ...


class Planned:
    """A plan's batches, in order (:class:`Batches`)."""

    def __init__(self, batches: Sequence[list[UpsertItem]]) -> None:
        self._batches, self._start = batches, 0

    async def take(self, most: int) -> list[list[UpsertItem]]:
        chunk = list(self._batches[self._start : self._start + most])
        self._start += len(chunk)
        return chunk


async def send_batches(
    destination: Destination,
    batches: Batches,
    list_ids: Mapping[str, str],
    committer: Committer[Ack],
    *,
    stop: Callable[[], bool],
    intend: Intend,
    send: Callable[[Sequence[OutgoingItem]], Awaitable[BatchResult]] | None = None,
) -> bool:
    """Send every batch of ``batches`` (a plan's, :class:`Planned`, or those of a first run
    made while it is read); True when all were sent, False when ``stop()`` (or a failed commit)
    ended the stage early. No batch leaves before ``intend`` has recorded its items, and one
    ``intend`` records the batches that leave together right after. The committer is closed
    before returning. ``send`` sends one batch (default: the destination's
    ``upsert_batch``). Each batch takes its list ids from ``list_ids`` as it starts, so a list
    made anew meanwhile is used. An error in taking batches is raised once the batches in
    flight are acknowledged and committed."""
    stopped = False
    # Handed to the destination, not yet answered: each batch with the intent that holds it.
    in_flight: dict[int, tuple[list[UpsertItem], int | None]] = {}
    failed: Exception | None = None

    async def feed() -> AsyncIterator[list[OutgoingItem]]:
        nonlocal stopped, failed
        index = 0
        while True:
            # Pulled only when there is room: the destination takes as many as it has room
            # for, one after another with no wait between, so these leave right after.
            try:
                chunk = await batches.take(max(1, destination.max_in_flight() - len(in_flight)))
            except Exception as err:  # raised once what is in flight is committed
                failed = err
                return
            if not chunk:
                return
            if stop() or committer.failed:  # before the intent: a stop leaves none unsent
                stopped = True
                return
            intent = await intend([item for batch in chunk for item in batch])
            if stop() or committer.failed:  # a stop seen meanwhile: not even these
                stopped = True
                return
            for batch in chunk:
                in_flight[index] = (batch, intent)
                index += 1
                yield outgoing(batch, list_ids)

    try:
        with sending_collections():
            async for index, result in destination.upsert_batches(feed(), send):
                batch, intent = in_flight.pop(index)
                committer.add(Ack(batch, result, intent))
    finally:
        await committer.close()
    if failed is not None:
        raise failed
    return not stopped
