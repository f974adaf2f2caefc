"""Client-side pacing, shared by every destination: a token bucket at the connection's rate, the
adaptive rate that slows it down when the API answers 429 (:class:`AdaptiveRate`), and how many
requests to keep in flight so that rate is held when the API is slow.

APIs like Autopilot limit each key with their own bucket (we take it to hold one second of the
rate). A client whose bucket were as big would leave no room for requests the network holds up
and then delivers bunched with what the client sends next: they would draw 429s. So a
connection's bucket (:meth:`TokenBucket.for_connection`) counts the requests that took a token
and have no answer yet (the client reports each answer: :meth:`TokenBucket.answered`) and holds
the server's second less one token for each of them (:func:`bucket_capacity`). The tokens it
holds plus the requests on their way then never exceed the server's bucket, whatever the network
does: no request leaves that the server has no token for. The client can have at most
``in_flight`` requests unanswered (its connections), so this is the rule wherever a second of the
rate less ``in_flight`` is still more than half a second (from 32 r/s, at 16 connections); a run
there starts with the server's whole second (100 tokens at 100 r/s). Below, the bound would leave
too little, and the bucket holds half a second of the rate (``burst_seconds``), as it did before
it counted anything.
"""

from __future__ import annotations

import asyncio
import math

from segsync.destinations.base import Clock, ConnectionConfig, Sleep, Slowdown
from segsync.errors import InputError

# Refills are float sums of clock deltas: tolerate a rounding error rather than sleep for it
# (a sleep too short to move the clock would loop forever).
_EPSILON = 1e-9


SERVER_BUCKET_SECONDS = 1.0
"""The server's bucket we pace against, in seconds of the rate (Autopilot documents only
"5 per second"; see docs/autopilot-api.md)."""


def bucket_capacity(
    rate: float, burst_seconds: float, in_flight: int | None = None, unanswered: int = 0
) -> float:
    """The tokens a client's bucket may hold at ``rate``: ``burst_seconds`` of it, at least one;
    or, for a client that can have ``in_flight`` requests unanswered at once, where a second of
    the rate less that many is more, the server's second less the requests ``unanswered`` now
    (from 2 × ``in_flight`` r/s up, at the default half a second)."""
    least = max(1.0, rate * burst_seconds)
    if in_flight is None or rate * SERVER_BUCKET_SECONDS - in_flight <= least:
        return least
    return rate * SERVER_BUCKET_SECONDS - min(unanswered, in_flight)


class TokenBucket:
    """An async token bucket: :meth:`acquire` waits (with the injected ``sleep``) until a token is
    free. Waiters are served first come, first served. :meth:`pause` empties the bucket and holds
    every caller back, for a server's ``Retry-After``.

    Given ``in_flight`` (the most requests its users can have unanswered at once), each
    :meth:`acquire` counts a request on its way until it is :meth:`answered`, and the bucket
    holds the server's second less those, where that rule holds (see the module)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock,
        sleep: Sleep,
        burst_seconds: float = 0.5,
        in_flight: int | None = None,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise InputError(
                f"rate limit must be a positive number of requests per second, got {rate!r}"
            )
        self.rate = rate
        self._burst_seconds = burst_seconds
        self._in_flight = in_flight
        self._unanswered = 0
        self.clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = self._updated
        self._lock = asyncio.Lock()

    @classmethod
    def for_connection(cls, config: ConnectionConfig) -> TokenBucket:
        """The bucket of one connection: its rate limit, clock, sleep and least burst; it counts
        its requests until they are answered, which its client reports (:meth:`answered`), and
        never has more than ``max_connections`` of them unanswered."""
        return cls(
            config.rate_limit,
            clock=config.clock,
            sleep=config.sleep,
            burst_seconds=config.burst_seconds,
            in_flight=config.max_connections,
        )

    @property
    def capacity(self) -> float:
        """The tokens the bucket may hold now (:func:`bucket_capacity`)."""
        return bucket_capacity(self.rate, self._burst_seconds, self._in_flight, self._unanswered)

    async def acquire(self) -> None:
        """Take one token, waiting as long as needed; a bucket given ``in_flight`` counts the
        request sent with it until :meth:`answered`."""
        async with self._lock:
            while True:
                now = self._refill()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    if self._in_flight is not None:
                        self._unanswered += 1
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def answered(self) -> None:
        """A request sent with a token of this bucket was answered, or failed: the server has
        seen it (or never will), and the bucket may fill the token it kept free for it. Call it
        once per :meth:`acquire`, in a ``finally``."""
        if not self._unanswered:
            return
        self._refill()  # the time until now is filled at the capacity it had
        self._unanswered -= 1

    def ready(self) -> int:
        """Requests that could leave at once: the whole tokens in the bucket now (none while
        it is paused)."""
        now = self._refill()
        if now < self._paused_until:
            return 0
        return int(self._tokens + _EPSILON)

    def set_rate(self, rate: float) -> None:
        """Go on at ``rate`` from now: tokens earned so far are kept (up to the new capacity)."""
        self._refill()
        self.rate = rate
        self._tokens = min(self._tokens, self.capacity)

    def pause(self, seconds: float) -> None:
        """Empty the bucket and let nobody through for ``seconds`` (0: just empty it)."""
        now = self._refill()
        self._tokens = 0.0
        self._paused_until = max(self._paused_until, now + max(seconds, 0.0))

    def _refill(self) -> float:
        now = self.clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now
        return now


class AdaptiveRate:
    """AIMD (additive increase, multiplicative decrease) control of a :class:`TokenBucket`.

    Each 429 multiplies the bucket's rate by ``decrease``, but never below ``floor`` — once per
    round: a 429 to a request sent before the last decrease says nothing new (:meth:`ticket`).
    Successful requests win the rate back in proportion to the time since the last change: the
    whole ``configured`` rate in ``recovery_seconds`` — by time rather than per request, so a rate
    pushed low (few requests per second) does not take ever longer to come back. ``lowest`` and
    ``throttled`` are what :meth:`slowdown` reports.
    """

    def __init__(
        self, bucket: TokenBucket, *, floor: float, decrease: float, recovery_seconds: float
    ) -> None:
        self.bucket = bucket
        self.configured = bucket.rate
        self.floor = min(floor, bucket.rate)
        self.decrease = decrease
        self.recovery_seconds = recovery_seconds
        self.lowest = bucket.rate
        self.throttled = 0
        self._round = 0
        self._changed = bucket.clock()

    @classmethod
    def for_connection(cls, config: ConnectionConfig) -> AdaptiveRate:
        """The adaptive rate of one connection, over its own :meth:`TokenBucket.for_connection`."""
        return cls(
            TokenBucket.for_connection(config),
            floor=config.rate_limit * config.min_rate_share,
            decrease=config.rate_decrease,
            recovery_seconds=config.recovery_seconds,
        )

    @property
    def rate(self) -> float:
        return self.bucket.rate

    @property
    def at_floor(self) -> bool:
        return self.bucket.rate <= self.floor

    async def acquire(self) -> int:
        """Take a token from the bucket; return the ticket to pass to :meth:`on_throttled` if
        the request sent with it is answered 429."""
        await self.bucket.acquire()
        return self._round

    def on_throttled(self, ticket: int) -> bool:
        """Count a 429 and lower the rate, unless an earlier 429 of the same round (a request
        sent with the same ``ticket``) did already or the rate is at the floor. Returns whether
        this 429 lowered the rate."""
        self.throttled += 1
        if ticket != self._round or self.at_floor:
            return False
        self._round += 1
        self.bucket.set_rate(max(self.floor, self.bucket.rate * self.decrease))
        self.lowest = min(self.lowest, self.bucket.rate)
        self._changed = self.bucket.clock()
        return True

    def on_success(self) -> None:
        """A request went through: win back the configured rate × the seconds since the last
        change / ``recovery_seconds``, up to the configured rate."""
        if self.bucket.rate >= self.configured:
            return
        now = self.bucket.clock()
        gained = self.configured * max(0.0, now - self._changed) / self.recovery_seconds
        self._changed = now
        self.bucket.set_rate(min(self.configured, self.bucket.rate + gained))

    def slowdown(self) -> Slowdown | None:
        """What the API's 429s did to this client; None when it never answered 429."""
        if not self.throttled:
            return None
        return Slowdown(self.configured, self.lowest, self.throttled)


class LatencyGauge:
    """A smoothed estimate of response latency, and the concurrency it calls for."""

    def __init__(self, *, smoothing: float = 0.2) -> None:
        self._smoothing = smoothing
        self.latency: float | None = None

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += self._smoothing * (seconds - self.latency)

    def in_flight(self, rate: float, *, ceiling: int, ready: int = 0) -> int:
        """Requests to keep in flight to sustain ``rate``: see :func:`in_flight_for`."""
        return in_flight_for(rate, self.latency or 0.0, ceiling=ceiling, ready=ready)


def in_flight_for(rate: float, latency: float, *, ceiling: int, ready: int = 0) -> int:
    """The rate × latency product (Little's law), plus the requests the bucket lets leave at
    once (``ready`` tokens; at least one: the request waiting on the bucket) — at least 2, at
    most ``ceiling``. So a run starts with its bucket's burst in flight, not one latency's
    worth at a time (60 removals at 100 r/s and 50 ms: 0.22 s, not 0.5 s), and holds the
    rate once the bucket is empty. More in flight never sends faster than the bucket allows:
    each request still waits for its token."""
    wanted = math.ceil(rate * max(latency, 0.0) - _EPSILON) + max(1, ready)
    return max(2, min(max(ceiling, 2), wanted))
