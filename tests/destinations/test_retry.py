"""Backoff delays and Retry-After parsing."""

from __future__ import annotations

import pytest

from segsync.destinations.retry import (
    MAX_RETRY_AFTER,
    RetryPolicy,
    is_retriable_status,
    parse_retry_after,
)


def test_backoff_doubles_with_jitter_between_half_and_all_and_is_capped() -> None:
    low = RetryPolicy(max_attempts=10, base=0.5, maximum=4.0, random=lambda: 0.0)
    high = RetryPolicy(max_attempts=10, base=0.5, maximum=4.0, random=lambda: 0.999999)
    assert [low.delay(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [round(high.delay(n), 3) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_retry_after_overrides_backoff_within_bounds() -> None:
    policy = RetryPolicy(max_attempts=3, base=0.5, maximum=4.0, random=lambda: 0.5)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=10_000.0) == MAX_RETRY_AFTER
    assert policy.should_retry(2)
    assert not policy.should_retry(3)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now=now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("nan", now=now) is None


def test_retriable_statuses() -> None:
    assert all(is_retriable_status(s) for s in (408, 429, 500, 502, 503, 504, 599))
    assert not any(is_retriable_status(s) for s in (200, 400, 401, 403, 404, 409))
