"""Removing list memberships (mirror policy, E7): one request per removal (Autopilot has no bulk
removal), enough in flight to hold the rate limit, each confirmation committed as soon as the
one commit task (:class:`~.committer.Committer`) is free — those confirmed meanwhile together.
A crash then re-sends at most the removals in flight and one round confirmed but not yet
committed (removing again is harmless).

Write-ahead, as for batches (:mod:`.send`): before a removal leaves, its membership is marked
*pending* — "maybe gone". A crash between the removal and the commit of its confirmation then
leaves it pending, not known: if the person is back in the segment when a later run plans, the
membership is sent again rather than trusted to exist (it may not), and if not, the removal is
planned again.

A removal is confirmed whether the person was on the list or not (a pending membership whose
batch never got an answer may not exist): both mean the membership is gone. Only those who were
members count as removed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from segsync.destinations.base import Destination
from segsync.services.sync.committer import Committer

Membership = tuple[str, str]


async def remove_memberships(
    destination: Destination,
    removals: Sequence[Membership],
    list_ids: dict[str, str],
    *,
    commit: Callable[[list[Membership], list[Membership]], Awaitable[None]],
    after_commit: Callable[[], None],
    stop: Callable[[], bool],
    intend: Callable[[Sequence[Membership]], Awaitable[None]],
) -> bool:
    """Remove every ``(segment key, email)`` from its segment's list. Before removals leave,
    ``intend`` records them (as many at a time as there is room in flight); confirmed removals
    are passed to ``commit`` as they come (with those of them that were members), one commit at a
    time. ``stop()`` is asked before new removals start: when it says so, the ones in flight
    finish and are committed, and False is returned. The first error of a removal is raised
    after the others finished and what was confirmed is committed."""

    async def commit_round(confirmed: Sequence[tuple[Membership, bool]]) -> None:
        members = [membership for membership, was_member in confirmed if was_member]
        await commit([membership for membership, _ in confirmed], members)
        after_commit()

    committer: Committer[tuple[Membership, bool]] = Committer(commit_round)
    position = 0
    running: dict[asyncio.Task[bool], Membership] = {}
    error: BaseException | None = None
    stopped = False
    try:
        while position < len(removals) or running:
            room = max(1, destination.max_in_flight()) - len(running)
            if error is None and not stopped and not committer.failed and room > 0:
                if position < len(removals) and stop():
                    stopped = True
                elif position < len(removals):
                    chunk = removals[position : position + room]
                    await intend(chunk)  # write-ahead: "maybe gone" before they leave
                    position += len(chunk)
                    for segment, email in chunk:
                        task = asyncio.ensure_future(
                            destination.remove_membership(list_ids[segment], email)
                        )
                        running[task] = (segment, email)
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                membership = running.pop(task)
                if task.exception() is not None:
                    error = error or task.exception()
                else:
                    committer.add((membership, bool(task.result())))
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await committer.close()
    if error is not None:
        raise error
    return not stopped  # an error or a failed commit was raised above
