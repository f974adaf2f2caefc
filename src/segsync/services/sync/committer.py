"""The one task that commits acknowledged batches while sending goes on.

Batches are committed in the order they were acknowledged. Those acknowledged while a commit
runs wait for it and are then committed together, in one transaction: the commits never fall
behind the wire by more than one round, however fast acknowledgements come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from segsync.services.sync.tally import Ack

CommitAcks = Callable[[Sequence[Ack]], Awaitable[None]]


class Committer:
    """Start it inside a running event loop; :meth:`add` acknowledged batches; :meth:`close`
    commits what is still waiting and raises the first commit's error, if one failed.

    After a failed commit nothing more is committed (the run must stop: :attr:`failed`)."""

    def __init__(self, commit: CommitAcks) -> None:
        self._commit = commit
        self._waiting: list[Ack] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name="segsync-run-committer")

    def add(self, ack: Ack) -> None:
        """Queue an acknowledged batch for the next commit."""
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
        """Commit every batch still waiting, stop, and raise a commit's error if one failed."""
        self._closing = True
        self._wake.set()
        await asyncio.shield(self._task)
