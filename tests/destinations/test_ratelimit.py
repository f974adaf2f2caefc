"""The client's token bucket and in-flight sizing, on virtual time."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from segsync.destinations.base import ConnectionConfig
from segsync.destinations.pacing import LatencyGauge, TokenBucket, bucket_capacity, in_flight_for
from segsync.errors import InputError
from tests.destinations.conftest import VirtualTime


async def test_bucket_allows_a_small_burst_then_paces_at_the_rate(vtime: VirtualTime) -> None:
    bucket = TokenBucket(5.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.5)
    start = vtime.now
    times = []
    for _ in range(12):
        await bucket.acquire()
        times.append(vtime.now - start)
    assert bucket.capacity == 2.5
    assert times[:2] == [0.0, 0.0]  # the burst: two whole tokens
    gaps = [b - a for a, b in itertools.pairwise(times[3:])]
    assert gaps == pytest.approx([0.2] * len(gaps))  # then one every 1/rate seconds
    assert times[-1] == pytest.approx((12 - 2.5) / 5.0)


async def test_bucket_never_bursts_more_than_one_token_at_low_burst(vtime: VirtualTime) -> None:
    bucket = TokenBucket(5.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.0)
    assert bucket.capacity == 1.0
    await bucket.acquire()
    await bucket.acquire()
    assert vtime.now - 1000.0 == pytest.approx(0.2)


async def test_concurrent_callers_share_the_rate_first_come_first_served(
    vtime: VirtualTime,
) -> None:
    bucket = TokenBucket(10.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.1)
    order: list[int] = []

    async def take(n: int) -> None:
        await bucket.acquire()
        order.append(n)

    await asyncio.gather(*(take(n) for n in range(20)))
    assert order == list(range(20))
    assert vtime.now - 1000.0 == pytest.approx(1.9)  # 20 tokens, 1 up front, 10 per second


async def test_pause_holds_everyone_back_and_empties_the_bucket(vtime: VirtualTime) -> None:
    bucket = TokenBucket(100.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=1.0)
    bucket.pause(3.0)
    await bucket.acquire()
    assert vtime.now - 1000.0 == pytest.approx(3.0)
    await bucket.acquire()  # the bucket refills only from the end of the pause
    assert vtime.now - 1000.0 == pytest.approx(3.0, abs=0.011)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_a_rate_that_is_not_positive_is_refused(vtime: VirtualTime, rate: float) -> None:
    with pytest.raises(InputError, match="rate limit must be a positive number"):
        TokenBucket(rate, clock=vtime.clock, sleep=vtime.sleep)


@pytest.mark.parametrize(
    ("rate", "latency", "expected"),
    [
        (5.0, 0.4, 3),  # the example: 5 r/s at 400 ms needs 2+ in flight
        (5.0, 0.0, 2),
        (50.0, 0.1, 6),
        (50.0, 0.13, 8),
        (5.0, 30.0, 16),  # bounded
    ],
)
def test_in_flight_follows_rate_times_latency(rate: float, latency: float, expected: int) -> None:
    assert in_flight_for(rate, latency, ceiling=16) == expected


@pytest.mark.parametrize(
    ("rate", "latency", "ready", "expected"),
    [
        (100.0, 0.05, 0, 6),  # bucket empty: the rate's share and the request waiting on it
        (100.0, 0.05, 1, 6),
        (100.0, 0.05, 10, 15),  # ten may leave at once, on top of the five that hold the rate
        (100.0, 0.05, 50, 16),  # bounded
        (5.0, 0.0, 2, 2),
    ],
)
def test_in_flight_adds_the_requests_the_bucket_lets_leave_at_once(
    rate: float, latency: float, ready: int, expected: int
) -> None:
    assert in_flight_for(rate, latency, ceiling=16, ready=ready) == expected


async def test_ready_counts_the_whole_tokens_left_and_none_while_paused(
    vtime: VirtualTime,
) -> None:
    bucket = TokenBucket(100.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.5)
    assert bucket.ready() == 50  # a full bucket: half a second of the rate
    for _ in range(48):
        await bucket.acquire()
    assert bucket.ready() == 2
    vtime.now += 0.015  # 1.5 tokens earned: 3.5 in the bucket
    assert bucket.ready() == 3
    bucket.pause(1.0)
    assert bucket.ready() == 0
    vtime.now += 0.5
    assert bucket.ready() == 0  # still paused
    vtime.now += 1.0
    assert bucket.ready() == 50


def test_latency_gauge_smooths_and_sizes_concurrency() -> None:
    gauge = LatencyGauge(smoothing=0.5)
    assert gauge.in_flight(5.0, ceiling=16) == 2  # nothing observed yet
    gauge.observe(0.4)
    assert gauge.latency == pytest.approx(0.4)
    gauge.observe(0.8)
    assert gauge.latency == pytest.approx(0.6)
    assert gauge.in_flight(5.0, ceiling=16) == 4


@pytest.mark.parametrize(
    ("rate", "idle", "sixteen_out", "lowered_out", "lowered_idle"),
    [
        (5.0, 2.5, 2.5, 1.75, 1.75),
        (20.0, 10.0, 10.0, 7.0, 7.0),
        (32.0, 16.0, 16.0, 11.2, 11.2),
        (40.0, 40.0, 24.0, 14.0, 14.0),
        (100.0, 100.0, 84.0, 54.0, 70.0),
        (1000.0, 1000.0, 984.0, 684.0, 700.0),
    ],
)
async def test_a_connections_bucket_keeps_room_in_the_servers_for_every_request_unanswered(
    vtime: VirtualTime,
    rate: float,
    idle: float,
    sixteen_out: float,
    lowered_out: float,
    lowered_idle: float,
) -> None:
    """From 32 r/s up (where a second of the rate less 16 connections is more than half a
    second) a connection's bucket holds the server's second less one token per request sent
    and not yet answered: all of it when none is, 84 at 100 r/s with 16 out. Below, half a
    second, whatever is out, as before it counted. A 429 lowers the rate to 0.7 of it: the
    same rule at the new rate (at 40 r/s, 28 r/s is below the line)."""
    config = ConnectionConfig("http://127.0.0.1:1", "k" * 20, rate, clock=vtime.clock)
    bucket = TokenBucket(rate, clock=vtime.clock, sleep=vtime.sleep, in_flight=16)
    assert config.max_connections == 16
    assert TokenBucket.for_connection(config).capacity == idle
    assert bucket.capacity == bucket_capacity(rate, 0.5, 16) == idle
    for _ in range(16):
        await bucket.acquire()
    assert bucket.capacity == bucket_capacity(rate, 0.5, 16, unanswered=16) == sixteen_out
    bucket.set_rate(rate * 0.7)
    assert bucket.capacity == pytest.approx(lowered_out)
    for _ in range(16):
        bucket.answered()
    assert bucket.capacity == pytest.approx(lowered_idle)


async def test_a_bucket_fills_the_room_of_a_request_only_once_it_is_answered(
    vtime: VirtualTime,
) -> None:
    """At 100 r/s a spent bucket refills to 100 − 16 while 16 requests are out, however long;
    each answer makes room for one more token from then on, never for the time before it."""
    bucket = TokenBucket(100.0, clock=vtime.clock, sleep=vtime.sleep, in_flight=16)
    for _ in range(100):
        await bucket.acquire()
    assert vtime.now == 1000.0  # the whole second at once: nothing was out
    assert bucket.ready() == 0
    for _ in range(100 - 16):
        bucket.answered()
    vtime.now += 5.0
    assert bucket.ready() == 84  # 16 still out
    bucket.answered()
    assert bucket.ready() == 84  # room for one more, not yet filled
    vtime.now += 0.01
    assert bucket.ready() == 85
    for _ in range(15):
        bucket.answered()
    vtime.now += 1.0
    assert bucket.ready() == 100
    bucket.answered()  # one answer too many changes nothing
    assert bucket.capacity == 100.0


async def test_a_bucket_not_told_its_in_flight_counts_nothing(vtime: VirtualTime) -> None:
    bucket = TokenBucket(100.0, clock=vtime.clock, sleep=vtime.sleep)
    for _ in range(50):
        await bucket.acquire()
    assert bucket.capacity == 50.0
    vtime.now += 1.0
    assert bucket.ready() == 50
