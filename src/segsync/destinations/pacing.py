"""Client-side pacing, shared by every destination: a token bucket at the connection's rate, and
how many requests to keep in flight so that rate is held when the API is slow.

The bucket is deliberately small (``burst_seconds`` of the rate, at least one token): APIs like
Autopilot limit each key with their own bucket, and a client burst as big as the server's would
leave no margin for network jitter, so requests arriving bunched up would draw 429s. Build one
for a connection with :meth:`TokenBucket.for_connection`.
"""

from __future__ import annotations

import asyncio
import math

from segsync.destinations.base import Clock, ConnectionConfig, Sleep
from segsync.errors import InputError

# Refills are float sums of clock deltas: tolerate a rounding error rather than sleep for it
# (a sleep too short to move the clock would loop forever).
_EPSILON = 1e-9


class TokenBucket:
    """An async token bucket: :meth:`acquire` waits (with the injected ``sleep``) until a token is
    free. Waiters are served first come, first served. :meth:`pause` empties the bucket and holds
    every caller back, for a server's ``Retry-After``."""

    def __init__(
        self, rate: float, *, clock: Clock, sleep: Sleep, burst_seconds: float = 0.5
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise InputError(
                f"rate limit must be a positive number of requests per second, got {rate!r}"
            )
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = self._updated
        self._lock = asyncio.Lock()

    @classmethod
    def for_connection(cls, config: ConnectionConfig) -> TokenBucket:
        """The bucket of one connection: its rate limit, clock, sleep and burst size."""
        return cls(
            config.rate_limit,
            clock=config.clock,
            sleep=config.sleep,
            burst_seconds=config.burst_seconds,
        )

    async def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        async with self._lock:
            while True:
                now = self._refill()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """Empty the bucket and let nobody through for ``seconds`` (0: just empty it)."""
        now = self._refill()
        self._tokens = 0.0
        self._paused_until = max(self._paused_until, now + max(seconds, 0.0))

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now
        return now


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

    def in_flight(self, rate: float, *, ceiling: int) -> int:
        """Requests to keep in flight to sustain ``rate``: see :func:`in_flight_for`."""
        return in_flight_for(rate, self.latency or 0.0, ceiling=ceiling)


def in_flight_for(rate: float, latency: float, *, ceiling: int) -> int:
    """One more than the rate × latency product (Little's law plus a spare for the request
    waiting on the bucket), at least 2, at most ``ceiling``."""
    wanted = math.ceil(rate * max(latency, 0.0) - _EPSILON) + 1
    return max(2, min(max(ceiling, 2), wanted))
