"""The Destination interface: the plug-in seam between the run engine and a marketing API.

A destination is one package under ``segsync.destinations`` with a class implementing
:class:`Destination` and one entry in :mod:`segsync.destinations.registry`. The run engine talks
only to this interface, so a new destination needs no change anywhere else.

What an implementation owns:

* the HTTP (or other) transport, authentication and its own rate limit;
* retries of transient failures (raise :class:`~segsync.errors.RetriableError` once they are
  exhausted) and translation of every third-party error into :mod:`segsync.errors`;
* per-record outcomes: one refused record never sinks its batch (:class:`RecordOutcome`).

What it must not do: read settings, the metadata DB or the profile engine. It gets everything in
a :class:`ConnectionConfig`.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    """What a destination type declares about itself, before any connection exists.

    ``max_batch_size`` is the most records one :meth:`Destination.upsert_batch` accepts;
    ``default_rate_limit`` is in requests per second; ``default_base_url`` pre-fills a new
    connection.
    """

    name: str
    max_batch_size: int
    default_rate_limit: float
    display_name: str = ""
    default_base_url: str | None = None


@dataclass(frozen=True)
class ConnectionConfig:
    """Everything a destination needs to talk to one account.

    The first three fields come from the connection; the rest have production defaults and exist
    so tests can inject a transport, a clock, a sleep and a random source (no real waiting).
    """

    base_url: str
    api_key: str = field(repr=False)
    rate_limit: float
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    clock: Clock = field(default=time.monotonic, repr=False)
    """Monotonic seconds; drives the rate limiter and latency measurement."""
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    wall_clock: Clock = field(default=time.time, repr=False)
    """Epoch seconds; only used to read an HTTP-date ``Retry-After``."""
    random: Callable[[], float] = field(default=random.random, repr=False)
    """Uniform in [0, 1); the jitter of backoff delays."""
    max_attempts: int = 8
    """Attempts per request (first try included) before a transient failure is given up."""
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 30.0
    """Seconds to wait for one response."""
    burst_seconds: float = 0.5
    """Size of the client's token bucket, in seconds of the rate limit (at least one token)."""
    max_in_flight: int = 16
    """Upper bound on concurrent requests, whatever the observed latency."""


@dataclass(frozen=True)
class AccountInfo:
    """The answer to a credentials check: which account (instance) the key belongs to."""

    instance_id: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class UpsertItem:
    """One contact to create or update, keyed on ``email``.

    ``fields`` are the destination's standard fields by their API names (``FirstName``);
    ``custom`` holds custom fields with keys already in the write shape (``"integer--Age"``);
    ``list_id``, when set, adds the contact to that list in the same request.
    """

    email: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    custom: Mapping[str, Any] = field(default_factory=dict)
    list_id: str | None = None


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one record: acknowledged (``ok``) or refused with the API's ``reason``."""

    email: str
    ok: bool
    contact_id: str | None = None
    reason: str | None = None


@dataclass
class BatchResult:
    """Outcomes of one batch, one per item in the batch's order, and the requests it cost
    (retries and the isolation of refused records included)."""

    outcomes: list[RecordOutcome]
    requests: int

    @property
    def rejected(self) -> list[RecordOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


class Destination(ABC):
    """A marketing platform segsync exports to. Subclass it, set ``capabilities``, implement the
    abstract methods, and register the class in :mod:`segsync.destinations.registry`.

    Instances are async context managers; one instance serves one connection and shares its rate
    limit between every call, concurrent calls included. Errors raised are those of
    :mod:`segsync.errors`: :class:`~segsync.errors.AuthenticationFailed` (fix the credentials),
    :class:`~segsync.errors.FatalError` (stop), :class:`~segsync.errors.RetriableError` (retries
    exhausted; the run may be tried again later), :class:`~segsync.errors.InputError` (the caller
    passed something the destination cannot send).
    """

    capabilities: ClassVar[Capabilities]

    @abstractmethod
    async def check_credentials(self) -> AccountInfo:
        """Check the key against the API; raise ``AuthenticationFailed`` if it is refused."""

    @abstractmethod
    async def ensure_list(self, title: str) -> str:
        """Return the id of the list titled exactly ``title``, creating it if there is none."""

    @abstractmethod
    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        """Create or update up to ``capabilities.max_batch_size`` contacts, no email twice.

        Returns one outcome per item, in order. A record the API refuses gets ``ok=False`` and
        the API's reason; the others still go through.
        """

    @abstractmethod
    async def add_membership(self, list_id: str, email: str) -> bool:
        """Add the contact to the list; True if it was added, False if it was already there."""

    @abstractmethod
    async def remove_membership(self, list_id: str, email: str) -> bool:
        """Remove the contact from the list; True if it was a member. The contact stays."""

    @abstractmethod
    async def forget(self, email: str) -> bool:
        """Delete the contact (erasure); False if the destination had no such contact."""

    @abstractmethod
    async def get_contact(self, email: str) -> dict[str, Any] | None:
        """The stored contact as the API returns it, or None if there is none."""

    @abstractmethod
    def list_members(self, list_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every member of the list, page after page."""

    @property
    @abstractmethod
    def requests_made(self) -> int:
        """Requests sent so far by this instance, retries included."""

    @property
    @abstractmethod
    def throttled(self) -> int:
        """How many of those requests the API answered with 429 Too Many Requests."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection pool. The instance is unusable afterwards."""

    def max_in_flight(self) -> int:
        """How many requests to keep in flight to hold the rate limit.

        :meth:`upsert_batches` asks again before starting each batch, so an implementation may
        adapt it to the latency it observes. The default, 1, sends batches one after another.
        Callers that issue many independent single calls (list removals) may use it too.
        """
        return 1

    async def upsert_batches(
        self,
        batches: AsyncIterable[Sequence[UpsertItem]] | Iterable[Sequence[UpsertItem]],
    ) -> AsyncIterator[tuple[int, BatchResult]]:
        """Send every batch, up to :meth:`max_in_flight` at a time; yield ``(index, result)``
        as each completes (not necessarily in order).

        Batches are pulled from ``batches`` only when there is room, so a lazily built plan
        stays lazy. If a batch raises, no further batch starts; those already in flight are
        awaited and their results yielded, then the first error is raised.
        """
        source = _aiter(batches)
        running: dict[asyncio.Task[BatchResult], int] = {}
        error: BaseException | None = None
        exhausted = False
        index = 0
        try:
            while True:
                while not exhausted and error is None and len(running) < self.max_in_flight():
                    try:
                        batch = await anext(source)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    running[asyncio.ensure_future(self.upsert_batch(batch))] = index
                    index += 1
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=running.__getitem__):
                    position = running.pop(task)
                    if task.exception() is not None:
                        error = error or task.exception()
                        continue
                    yield position, task.result()
            if error is not None:
                raise error
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _aiter(items: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
