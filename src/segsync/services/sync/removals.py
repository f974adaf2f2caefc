"""Removing list memberships (mirror policy, E7): one request per removal (Autopilot has no bulk
removal), enough in flight to hold the rate limit, committed in small groups.

A removal is confirmed whether the person was on the list or not (a pending membership whose
batch never got an answer may not exist): both mean the membership is gone. Only those who were
members count as removed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from segsync.destinations.base import Destination

COMMIT_EVERY = 20
"""Removals confirmed per commit (a crash re-sends at most these, which is harmless)."""

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
    passed to ``commit`` every :data:`COMMIT_EVERY` and at the end, with how many of them were
    members. ``stop()`` is asked before
    each new removal: when it says so, the ones in flight finish and are committed, and False
    is returned. The first error of a removal is raised after the others finished."""
    position = 0
    running: dict[asyncio.Task[bool], Membership] = {}
    done: list[Membership] = []
    were_members = 0
    error: BaseException | None = None
    stopped = False
    try:
        while position < len(removals) or running:
            while (
                error is None
                and not stopped
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
                    done.append(membership)
                    were_members += bool(task.result())
            if done and (len(done) >= COMMIT_EVERY or not running):
                await commit(done, were_members)
                after_commit()
                done, were_members = [], 0
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        if done:
            await commit(done, were_members)
    if error is not None:
        raise error
    return not stopped
