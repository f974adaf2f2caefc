"""What every destination over the shared request core (:class:`AutopilotClient` and the
clients built on it, such as Ortto's) does the same way: report its client's requests, 429s,
slowdown and concurrency, close it, and make a list only after looking for it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from segsync.destinations.base import Destination, Slowdown, first_titled
from segsync.errors import FatalError, InputError, RetriableError

if TYPE_CHECKING:  # the Autopilot package imports this module: no cycle at run time
    from segsync.destinations.autopilot.client import AutopilotClient, Reply


class ClientBackedDestination(Destination):
    """A :class:`Destination` whose ``client`` is the shared request core (or built on it)."""

    client: AutopilotClient

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    @property
    def throttled(self) -> int:
        return self.client.throttled

    def slowdown(self) -> Slowdown | None:
        return self.client.rate.slowdown()

    def max_in_flight(self) -> int:
        return self.client.in_flight()

    async def aclose(self) -> None:
        await self.client.aclose()

    @abstractmethod
    async def _find_list(self, title: str) -> str | None:
        """The id of the first list titled exactly ``title``, or None."""

    async def _find_or_create(
        self,
        title: str,
        create: Callable[[str], Awaitable[Reply]],
        id_key: str,
        unexpected: Callable[[Reply], FatalError],
        known: Mapping[str, str] | None = None,
    ) -> str:
        """:meth:`Destination.ensure_list` over ``create`` (whose answer carries the new id
        under ``id_key``): creating is not idempotent (titles may repeat), so after an ambiguous
        failure, or a 409 (someone created it meanwhile), look again before creating. The
        first look is in ``known`` when given."""
        if not title.strip():
            raise InputError("a list title cannot be empty")
        policy = self.client.policy
        attempt = 0
        while True:
            attempt += 1
            if attempt == 1 and known is not None:
                found = first_titled(known, title)
            else:
                found = await self._find_list(title)
            if found is not None:
                return found
            try:
                reply = await create(title)
            except RetriableError as exc:
                if not policy.should_retry(attempt):
                    raise
                await self.client.config.sleep(policy.delay(attempt, exc.retry_after))
                continue
            data = reply.data
            if reply.ok and isinstance(data, dict) and data.get(id_key):
                return str(data[id_key])
            if reply.status == 409 and policy.should_retry(attempt):
                continue  # the next lookup finds it
            raise unexpected(reply)
