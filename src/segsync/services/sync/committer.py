"""The one task that commits what the destination acknowledged while sending goes on: upsert
batches (:class:`~.tally.Ack`) and confirmed removals alike.

Acknowledgements are committed in the order they came. Those that come while a commit runs
wait for it and are then committed together, in one transaction: the commits never fall behind
the wire by more than one round, however fast acknowledgements come — so a crash leaves at most
the requests in flight and one round acknowledged but not yet committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Committer(Generic[T]):
    """Start it inside a running event loop; :meth:`add` acknowledged batches; :meth:`close`
    commits what is still waiting and raises the first commit's error, if one failed.

    After a failed commit nothing more is committed (the run must stop: :attr:`failed`)."""

    def __init__(self, commit: Callable[[Sequence[T]], Awaitable[None]]) -> None:
        self._commit = commit
        self._waiting: list[T] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name="segsync-run-committer")

    def add(self, ack: T) -> None:
        """Queue an acknowledgement for the next commit."""
        self._waiting.append(ack)
        self._wake.set()

    @property
    def failed(self) -> bool:
        """Whether a commit failed (the error is raised by :meth:`close`)."""
        return self._task.done() and self._task.exception() is not None

    async def _loop(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            acks, self._waiting = self._waiting, []
            await self._commit(acks)

    async def close(self) -> None:
        """Commit everything still waiting, stop, and raise a commit's error if one failed."""
        self._closing = True
        self._wake.set()
        await asyncio.shield(self._task)
