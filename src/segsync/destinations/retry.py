"""When to try a request again and how long to wait first, for every destination (build a
:class:`RetryPolicy` from the ``ConnectionConfig``'s attempts, backoff and random source).

Exponential backoff with "equal jitter": the n-th retry waits between half and all of
``base × 2^(n-1)`` (capped at ``maximum``), so retries of many concurrent requests spread out
but never come back at once. A server's ``Retry-After`` overrides the computed delay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth retrying. Every other 5xx is retried too (see :func:`is_retriable_status`)."""

MAX_RETRY_AFTER = 300.0
"""A longer ``Retry-After`` is capped: a run should fail visibly rather than hang for hours."""


def is_retriable_status(status: int) -> bool:
    return status in RETRIABLE_STATUSES or 500 <= status < 600


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and jitter. ``random`` returns [0, 1)."""

    max_attempts: int
    base: float
    maximum: float
    random: Callable[[], float]

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def should_retry(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) may be followed by another."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        ceiling = min(self.maximum, self.base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self.random() * ceiling / 2


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (``now`` is epoch
    seconds). None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)
