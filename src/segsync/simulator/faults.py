"""Fault switches, the per-key token bucket and the request counters of the simulator."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

FAULT_KEYS = (
    "latency_ms",
    "hold_after_writes",
    "throttle_next",
    "fail_next",
    "timeout_next_writes",
    "reject_email_pattern",
    "revoke_key",
    "restore_key",
    "retry_after",
    "rate_limit",
)


class Faults:
    """What the simulator does wrong on purpose. Every switch is one method (or attribute).

    - ``set_latency(ms)``: every ``/v1`` request waits that long (``asyncio.sleep``) first.
    - ``hold_after_writes(n)``: ``n`` more writes (POST, PUT, PATCH, DELETE) go through, then
      every ``/v1`` request waits (see :class:`Hold`) until ``release()``; ``None`` releases.
    - ``throttle_next(n)``: the next ``n`` requests with a valid key get 429, whatever the rate.
    - ``fail_next(n)``: the next ``n`` requests that pass auth and the rate limit get 500.
    - ``timeout_next_writes(n)``: the next ``n`` successful writes (POST/DELETE) are committed,
      then answered 408.
    - ``reject_emails(pattern)``: contacts whose ``Email`` or ``_NewEmail`` matches the regular
      expression (``re.search``) are refused with 400; ``None`` switches it off.
    - ``revoke_key(key)`` / ``restore_key(key)``: a revoked key gets 401.
    - ``set_retry_after(seconds)``: 429 answers carry ``Retry-After``; ``None`` removes it.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        hold_after_writes: int | None = None,
        throttle_next: int = 0,
        fail_next: int = 0,
        timeout_next_writes: int = 0,
        reject_email_pattern: str | None = None,
        revoked_keys: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.latency_ms = 0.0
        self.hold = Hold()
        self.throttle_remaining = 0
        self.fail_remaining = 0
        self.timeout_remaining = 0
        self.reject_pattern: re.Pattern[str] | None = None
        self.revoked_keys: set[str] = set()
        self.retry_after: float | None = None
        self.configure(
            latency_ms=latency_ms,
            hold_after_writes=hold_after_writes,
            throttle_next=throttle_next,
            fail_next=fail_next,
            timeout_next_writes=timeout_next_writes,
            reject_email_pattern=reject_email_pattern,
            revoked_keys=revoked_keys,
            retry_after=retry_after,
        )

    def configure(
        self,
        *,
        latency_ms: float = 0.0,
        hold_after_writes: int | None = None,
        throttle_next: int = 0,
        fail_next: int = 0,
        timeout_next_writes: int = 0,
        reject_email_pattern: str | None = None,
        revoked_keys: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Set every switch at once (what ``reset`` uses to go back to the configuration)."""
        self.revoked_keys = set(revoked_keys or ())
        self.set_latency(latency_ms)
        self.hold_after_writes(hold_after_writes)
        self.throttle_next(throttle_next)
        self.fail_next(fail_next)
        self.timeout_next_writes(timeout_next_writes)
        self.reject_emails(reject_email_pattern)
        self.set_retry_after(retry_after)

    def set_latency(self, ms: float) -> None:
        self.latency_ms = _non_negative("latency_ms", ms)

    def hold_after_writes(self, n: int | None) -> None:
        """Let ``n`` more writes through, then hold every request until :meth:`release`;
        ``None`` releases the held requests and stops holding."""
        if n is None:
            self.hold.release()
        else:
            self.hold.arm(int(_non_negative("hold_after_writes", n)))

    def release(self) -> None:
        """Let every held request go on, and stop holding."""
        self.hold.release()

    def throttle_next(self, n: int) -> None:
        self.throttle_remaining = int(_non_negative("throttle_next", n))

    def fail_next(self, n: int) -> None:
        self.fail_remaining = int(_non_negative("fail_next", n))

    def timeout_next_writes(self, n: int) -> None:
        self.timeout_remaining = int(_non_negative("timeout_next_writes", n))

    def reject_emails(self, pattern: str | None) -> None:
        if pattern is None or pattern == "":
            self.reject_pattern = None
            return
        try:
            self.reject_pattern = re.compile(pattern)
        except re.error as err:
            raise ValueError(
                f"reject_email_pattern {pattern!r} is not a valid regex: {err}"
            ) from err

    def revoke_key(self, key: str) -> None:
        self.revoked_keys.add(key)

    def restore_key(self, key: str) -> None:
        self.revoked_keys.discard(key)

    def set_retry_after(self, seconds: float | None) -> None:
        self.retry_after = None if seconds is None else _non_negative("retry_after", seconds)

    def is_rejected(self, email: str) -> bool:
        return self.reject_pattern is not None and self.reject_pattern.search(email) is not None

    def take_throttle(self) -> bool:
        if self.throttle_remaining <= 0:
            return False
        self.throttle_remaining -= 1
        return True

    def take_failure(self) -> bool:
        if self.fail_remaining <= 0:
            return False
        self.fail_remaining -= 1
        return True

    def take_timeout(self) -> bool:
        if self.timeout_remaining <= 0:
            return False
        self.timeout_remaining -= 1
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "hold_after_writes": self.hold.writes_left,
            "held": self.hold.held,
            "throttle_next": self.throttle_remaining,
            "fail_next": self.fail_remaining,
            "timeout_next_writes": self.timeout_remaining,
            "reject_email_pattern": None
            if self.reject_pattern is None
            else self.reject_pattern.pattern,
            "revoked_keys": sorted(self.revoked_keys),
            "retry_after": self.retry_after,
        }

    def apply(self, changes: dict[str, Any]) -> None:
        """Apply a ``POST /_sim/faults`` body (``rate_limit`` is left to the caller)."""
        unknown = sorted(set(changes) - set(FAULT_KEYS))
        if unknown:
            raise ValueError(
                f"unknown fault switch(es): {', '.join(unknown)}; known: {', '.join(FAULT_KEYS)}"
            )
        for key in ("revoke_key", "restore_key", "reject_email_pattern"):
            value = changes.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
        if "latency_ms" in changes:
            self.set_latency(_number("latency_ms", changes["latency_ms"]))
        if "hold_after_writes" in changes:
            value = changes["hold_after_writes"]
            self.hold_after_writes(None if value is None else _integer("hold_after_writes", value))
        if "throttle_next" in changes:
            self.throttle_next(_integer("throttle_next", changes["throttle_next"]))
        if "fail_next" in changes:
            self.fail_next(_integer("fail_next", changes["fail_next"]))
        if "timeout_next_writes" in changes:
            self.timeout_next_writes(
                _integer("timeout_next_writes", changes["timeout_next_writes"])
            )
        if "reject_email_pattern" in changes:
            self.reject_emails(changes["reject_email_pattern"])
        if changes.get("revoke_key") is not None:
            self.revoke_key(changes["revoke_key"])
        if changes.get("restore_key") is not None:
            self.restore_key(changes["restore_key"])
        if "retry_after" in changes:
            value = changes["retry_after"]
            self.set_retry_after(None if value is None else _number("retry_after", value))


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return value


def _non_negative(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{name} must be 0 or positive, not {value}")
    return value


class Hold:
    """The ``hold_after_writes`` switch: requests wait at a closed door until released.

    While armed, each write that passes uses one of ``writes_left``; once none is left, every
    request waits in :meth:`enter` (an awaited future: other tasks run on) until
    :meth:`release`. Thread-safe: the simulator may serve in one thread while a test steers it
    from another, and :meth:`wait_for_held` lets that test wait until requests are held.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.writes_left: int | None = None
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def held(self) -> int:
        """Requests waiting now."""
        with self._lock:
            return len(self._waiting)

    def arm(self, writes: int) -> None:
        with self._lock:
            self.writes_left = writes

    def release(self) -> None:
        with self._lock:
            self.writes_left = None
            waiting, self._waiting = self._waiting, []
        for loop, future in waiting:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def enter(self, write: bool) -> None:
        """Pass, or wait until released: the request's turn at the door."""
        with self._lock:
            if self.writes_left is None:
                return
            if self.writes_left > 0:
                self.writes_left -= int(write)
                return
            loop = asyncio.get_running_loop()
            entry = (loop, loop.create_future())
            self._waiting.append(entry)
            self._lock.notify_all()
        try:
            await entry[1]
        finally:
            with self._lock:
                if entry in self._waiting:
                    self._waiting.remove(entry)

    def wait_for_held(self, count: int = 1, timeout: float = 60.0) -> bool:
        """Block this thread until ``count`` requests are held (``False`` after ``timeout``
        seconds). Not from the simulator's own event loop: it would never get to hold them."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._waiting) >= count, timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RateLimiter:
    """One token bucket per API key: capacity ``max(rate, 1)``, refilled at ``rate`` per second.

    ``rate == 0`` turns limiting off. ``clock`` returns seconds (monotonic); tests inject it.
    """

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rate = _non_negative("rate_limit", rate)

    def set_rate(self, rate: float) -> None:
        self.rate = _non_negative("rate_limit", rate)
        self._buckets.clear()

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; ``False`` when its bucket is empty (answer 429)."""
        if self.rate <= 0:
            return True
        capacity = max(self.rate, 1.0)
        now = self._clock()
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return True
        self._buckets[key] = (tokens, now)
        return False

    def reset(self) -> None:
        self._buckets.clear()


class Stats:
    """Requests to ``/v1`` by ``"<METHOD> <path template>"`` and status, plus 429s."""

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.total = 0
        self.throttled = 0

    def record(self, template: str, status: int) -> None:
        by_status = self.requests.setdefault(template, {})
        code = str(status)
        by_status[code] = by_status.get(code, 0) + 1
        self.total += 1
        if status == 429:
            self.throttled += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {template: dict(codes) for template, codes in self.requests.items()},
            "total": self.total,
            "throttled": self.throttled,
        }

    def reset(self) -> None:
        self.requests = {}
        self.total = 0
        self.throttled = 0
