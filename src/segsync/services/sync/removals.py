"""Removing list memberships (mirror policy, E7): one request per removal (Autopilot has no bulk
removal), enough in flight to hold the rate limit, each confirmation committed as soon as the
one commit task (:class:`~.committer.Committer`) is free — those confirmed meanwhile together.
A crash then re-sends at most the removals in flight and one round confirmed but not yet
committed (removing again is harmless).

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
    commit: Callable[[list[Membership], int], Awaitable[None]],
    after_commit: Callable[[], None],
    stop: Callable[[], bool],
) -> bool:
    """Remove every ``(segment key, email)`` from its segment's list. Confirmed removals are
    passed to ``commit`` as they come (with how many of them were members), one commit at a
    time. ``stop()`` is asked before each new removal: when it says so, the ones in flight
    finish and are committed, and False is returned. The first error of a removal is raised
    after the others finished and what was confirmed is committed."""

    async def commit_round(confirmed: Sequence[tuple[Membership, bool]]) -> None:
        await commit([membership for membership, _ in confirmed], sum(w for _, w in confirmed))
        after_commit()

    committer: Committer[tuple[Membership, bool]] = Committer(commit_round)
    position = 0
    running: dict[asyncio.Task[bool], Membership] = {}
    error: BaseException | None = None
    stopped = False
    try:
        while position < len(removals) or running:
            while (
                error is None
                and not stopped
                and not committer.failed
                and position < len(removals)
                and len(running) < max(1, destination.max_in_flight())
            ):
                if stop():
                    stopped = True
                    break
                segment, email = removals[position]
                position += 1
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
    return not (stopped or position < len(removals))
