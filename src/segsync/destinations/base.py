"""The Destination contract: the plug-in seam between segsync and a marketing platform.

A destination is one package under ``segsync.destinations`` with a class implementing
:class:`Destination` and one line in :mod:`segsync.destinations.registry`; the kit in
:mod:`segsync.testing.conformance` checks it (docs/destinations.md is the recipe). Nothing else in
segsync names a destination: the forms, the CLI and the API read its :class:`Capabilities`.

What an implementation owns:

* the HTTP (or other) transport, authentication and its own rate limit;
* retries of transient failures (raise :class:`~segsync.errors.RetriableError` once they are
  exhausted) and translation of every third-party error into :mod:`segsync.errors`;
* per-record outcomes: one refused record never sinks its batch (:class:`RecordOutcome`);
* its wire format, in one serializer that both :meth:`Destination.upsert_batch` and
  :meth:`Destination.preview` use.

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

from segsync.destinations.capabilities import Capabilities
from segsync.domain.emails import mask_email
from segsync.errors import InputError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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
    """The least the client's token bucket holds, in seconds of the rate limit (at least one
    token); it holds more while a second of the rate, less one token per request unanswered, is
    more (:func:`~segsync.destinations.pacing.bucket_capacity`)."""
    max_in_flight: int = 16
    """Upper bound on concurrent requests, whatever the observed latency."""
    min_rate_share: float = 0.1
    """The floor of the adaptive rate, as a share of ``rate_limit`` (0 < share <= 1): 429s never
    push the client below ``rate_limit * min_rate_share`` requests per second. See
    :class:`~.pacing.AdaptiveRate`."""
    rate_decrease: float = 0.7
    """What a 429 multiplies the client's rate by (0 < factor < 1)."""
    recovery_seconds: float = 300.0
    """How fast successful requests win a lowered rate back: the whole of ``rate_limit`` in this
    many seconds without a 429."""

    @property
    def max_connections(self) -> int:
        """Connections a client may hold open to the service: one per request in flight, and
        at least two."""
        return max(self.max_in_flight, 2)

    def __post_init__(self) -> None:
        if not 0 < self.rate_decrease < 1:
            raise InputError(f"rate_decrease must be between 0 and 1, got {self.rate_decrease!r}")
        if not 0 < self.min_rate_share <= 1:
            raise InputError(
                f"min_rate_share must be more than 0 and at most 1, got {self.min_rate_share!r}"
            )
        if not self.recovery_seconds > 0:
            raise InputError(
                f"recovery_seconds must be a positive number of seconds, "
                f"got {self.recovery_seconds!r}"
            )


@dataclass(frozen=True)
class AccountInfo:
    """The answer to a credentials check: which account (instance) the key belongs to."""

    instance_id: str
    raw: dict[str, Any]


@dataclass(slots=True)
class UpsertItem:
    """One contact to create or update, keyed on ``email``.

    ``fields`` are the destination's standard fields by their API names (``FirstName``);
    ``custom`` holds custom fields with keys already in the write shape (``"integer--Age"``);
    ``list_id``, when set, adds the contact to that list in the same request.

    A run makes one per item it sends, so it is a slotted class that is never changed once
    made (a new one replaces it) rather than a frozen one: making a frozen dataclass costs
    twice as much (0.08 s against 0.035 s for 116,000).
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


@dataclass(frozen=True)
class ListMember:
    """A member of a list as the destination reports it: the ``email`` and the contact as its
    API returns it (``raw``)."""

    email: str
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """Outcomes of one batch, one per item in the batch's order, and the requests it cost
    (retries and the isolation of refused records included)."""

    outcomes: list[RecordOutcome]
    requests: int

    @property
    def rejected(self) -> list[RecordOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


@dataclass(frozen=True)
class Slowdown:
    """How much the API slowed a client down: ``throttled`` 429 answers, and the lowest rate
    (requests per second) the client went down to from the ``configured`` one."""

    configured: float
    lowest: float
    throttled: int

    def describe(self, destination: str) -> str:
        """The run warning, e.g. "Autopilot slowed this run down (…)"."""
        if self.lowest < self.configured:
            how = f"segsync lowered its rate from {_rate(self.configured)} to as low as "
            how += _rate(self.lowest)
        else:  # a rate limit at or below the floor: nothing lower to go to
            how = f"at the connection's rate limit of {_rate(self.configured)}"
        return (
            f"{destination} slowed this run down ({self.throttled:,} × 429 Too Many Requests; "
            f"{how}). If this happens often, lower the connection's rate limit"
        )


def _rate(value: float) -> str:
    return f"{value:,.0f} r/s" if value >= 100 else f"{value:.3g} r/s"


def first_titled(lists: Mapping[str, str], title: str) -> str | None:
    """The id of the first of ``lists`` (``{list id: title}``, as :meth:`Destination.existing_lists`
    gives them) titled exactly ``title``, or None."""
    return next((list_id for list_id, found in lists.items() if found == title), None)


class Destination(ABC):
    """A marketing platform segsync exports to. Subclass it, set ``capabilities``, implement the
    abstract methods, and add the class to :mod:`segsync.destinations.registry`.

    Instances are made with a :class:`ConnectionConfig` and are async context managers; one
    instance serves one connection and shares its rate limit between every call, concurrent
    calls included. Errors raised are those of :mod:`segsync.errors`:
    :class:`~segsync.errors.AuthenticationFailed` (fix the credentials),
    :class:`~segsync.errors.FatalError` (stop), :class:`~segsync.errors.RetriableError` (retries
    exhausted; the run may be tried again later), :class:`~segsync.errors.InputError` (the caller
    passed something the destination cannot send).
    """

    capabilities: ClassVar[Capabilities]
    lists_in_one_request: ClassVar[bool] = False
    """Whether :meth:`existing_lists` costs one request: then a first run asks for it while it
    opens its profiles, and looks its lists up in the answer (``ensure_list(known=...)``)."""

    @abstractmethod
    def __init__(self, config: ConnectionConfig) -> None:
        """Keep the configuration; connect lazily (nothing is sent before the first call)."""

    @abstractmethod
    async def check_credentials(self) -> AccountInfo:
        """Check the key against the API and say which account it reaches (Connect); raise
        ``AuthenticationFailed`` if it is refused. Answer within seconds: retry little."""

    @abstractmethod
    async def ensure_list(self, title: str, *, known: Mapping[str, str] | None = None) -> str:
        """Return the id of the list titled exactly ``title``, creating it if there is none.
        Calling it again with the same title returns the same id and creates nothing.
        ``known``: the account's lists as :meth:`existing_lists` gave them a moment ago; the
        title is looked up there instead of asking again (:func:`first_titled`)."""

    @abstractmethod
    async def existing_lists(self) -> dict[str, str]:
        """Every list the account holds now, ``{list id: title}``, in one request where the API
        allows. A run compares it with the list ids it stored, to notice lists deleted (or
        renamed) by hand."""

    @abstractmethod
    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        """Create or update up to ``capabilities.max_batch_size`` contacts, no email twice
        (:meth:`check_batch`), each added to its ``list_id`` when it has one.

        Returns one outcome per item, in order. A record the API refuses gets ``ok=False`` and
        the API's reason; the others still go through. When an item names a list that does not
        exist, raise :class:`~segsync.errors.UnknownList` naming it, rather than refusing the
        records: the list is gone, not the contacts at fault.
        """

    @abstractmethod
    async def remove_membership(self, list_id: str, email: str) -> bool:
        """Remove the contact from the list; True if it was a member. The contact stays."""

    @abstractmethod
    def list_members(self, list_id: str) -> AsyncIterator[ListMember]:
        """Every member of the list, page after page (``NotFound`` for an unknown list)."""

    @abstractmethod
    async def forget(self, email: str) -> bool:
        """Delete the contact (erasure); False if the destination had no such contact."""

    @classmethod
    @abstractmethod
    def preview(cls, item: UpsertItem) -> dict[str, Any]:
        """Exactly what :meth:`upsert_batch` sends for ``item`` (dry runs show it): made by the
        same serializer. ``InputError`` for an item that could not be sent."""

    @property
    @abstractmethod
    def requests_made(self) -> int:
        """Requests sent so far by this instance, retries included."""

    @property
    @abstractmethod
    def throttled(self) -> int:
        """How many of those requests the API answered with 429 Too Many Requests."""

    def slowdown(self) -> Slowdown | None:
        """How much the API's 429s slowed this instance down (None: they did not). The default
        says nothing; a destination with an :class:`~.pacing.AdaptiveRate` returns its report."""
        return None

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection pool. The instance is unusable afterwards."""

    def check_batch(self, items: Sequence[UpsertItem]) -> None:
        """Refuse (``InputError``) a batch over ``capabilities.max_batch_size`` or holding an
        email twice (compared case-insensitively): call it first in :meth:`upsert_batch`."""
        caps = self.capabilities
        if len(items) > caps.max_batch_size:
            raise InputError(
                f"a batch holds {len(items)} contacts; {caps.display_name} takes at most "
                f"{caps.max_batch_size}"
            )
        if len({item.email.lower() for item in items}) == len(items):
            return
        seen: set[str] = set()
        for item in items:
            key = item.email.lower()
            if key in seen:
                raise InputError(f"a batch holds the same email twice ({mask_email(item.email)})")
            seen.add(key)

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
        send: Callable[[Sequence[UpsertItem]], Awaitable[BatchResult]] | None = None,
    ) -> AsyncIterator[tuple[int, BatchResult]]:
        """Send every batch, up to :meth:`max_in_flight` at a time; yield ``(index, result)``
        as each completes (not necessarily in order). ``send`` sends one batch
        (:meth:`upsert_batch` by default; a run wraps it to re-create a vanished list).

        Batches are pulled from ``batches`` only when there is room, so a lazily built plan
        stays lazy. If a batch raises, no further batch starts; those already in flight are
        awaited and their results yielded, then the first error is raised.
        """
        source = _aiter(batches)
        send_one = send or self.upsert_batch
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
                    running[asyncio.ensure_future(send_one(batch))] = index
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


def slowdown_warnings(destination: Destination | None) -> list[str]:
    """The run warning saying the destination slowed the run down, if it did (any final status):
    "Autopilot slowed this run down (…)"."""
    if destination is None or (slowdown := destination.slowdown()) is None:
        return []
    return [slowdown.describe(destination.capabilities.display_name)]


async def _aiter(items: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
