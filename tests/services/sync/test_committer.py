"""The committer (X7): one task commits acknowledged batches in order, grouping those that
arrive during a commit, and a failed commit stops everything after it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from segsync.destinations.base import BatchResult
from segsync.errors import FatalError
from segsync.services.sync.committer import Committer
from segsync.services.sync.tally import Ack


def ack(n: int) -> Ack:
    return Ack([], BatchResult([], requests=n))


async def test_batches_acknowledged_during_a_commit_are_committed_together_in_order() -> None:
    committed: list[list[int]] = []
    first_started, first_may_end = asyncio.Event(), asyncio.Event()

    async def commit(acks: Sequence[Ack]) -> None:
        committed.append([a.result.requests for a in acks])
        if len(committed) == 1:
            first_started.set()
            await first_may_end.wait()

    committer = Committer(commit)
    committer.add(ack(1))
    await first_started.wait()
    committer.add(ack(2))
    committer.add(ack(3))
    first_may_end.set()
    committer.add(ack(4))
    await committer.close()
    assert committed[0] == [1]
    assert [n for group in committed for n in group] == [1, 2, 3, 4]
    assert len(committed) <= 3  # 2, 3 (and 4) went together


async def test_close_commits_what_waits_and_a_failed_commit_is_raised() -> None:
    committed: list[int] = []
    first_done = asyncio.Event()

    async def commit(acks: Sequence[Ack]) -> None:
        if any(a.result.requests == 2 for a in acks):
            raise FatalError("run 1 was taken over by another process; this one stops")
        committed.extend(a.result.requests for a in acks)
        first_done.set()

    committer = Committer(commit)
    committer.add(ack(1))
    await first_done.wait()
    assert committed == [1]
    assert not committer.failed
    committer.add(ack(2))
    with pytest.raises(FatalError, match="taken over"):
        await committer.close()
    assert committer.failed
    committer.add(ack(3))  # nothing commits after a failure
    assert committed == [1]
