"""The adaptive rate (AIMD) on virtual time: 429s lower the rate multiplicatively down to a
floor, successes win it back additively over time, and the Autopilot client's retry budget
spares the 429s that are still slowing it down (against scripted answers, httpx.MockTransport)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import ConnectionConfig, Slowdown, UpsertItem, slowdown_warnings
from segsync.destinations.pacing import AdaptiveRate, TokenBucket
from segsync.errors import InputError, RateLimited
from tests.destinations.conftest import Script, VirtualTime, config_for, reply

OK_BULK = {"contact_ids": ["person_1"], "email_contact_map": {"a@x.org": "person_1"}}
WALL = 1_700_000_000.0  # config_for's wall clock


def adaptive(vtime: VirtualTime, rate: float = 8.0, floor: float = 0.5) -> AdaptiveRate:
    bucket = TokenBucket(rate, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.0)
    return AdaptiveRate(bucket, floor=floor, decrease=0.5, recovery_seconds=24.0)


async def gaps(control: AdaptiveRate, vtime: VirtualTime, n: int) -> list[float]:
    """Seconds between ``n`` + 1 consecutive tokens."""
    times = []
    for _ in range(n + 1):
        await control.acquire()
        times.append(vtime.now)
    return [b - a for a, b in itertools.pairwise(times)]


# -- the controller -----------------------------------------------------------------------------


async def test_each_429_halves_the_rate_and_the_bucket_follows(vtime: VirtualTime) -> None:
    control = adaptive(vtime)
    assert await gaps(control, vtime, 3) == pytest.approx([1 / 8] * 3)
    assert control.on_throttled(await control.acquire())
    assert control.rate == 4.0
    assert await gaps(control, vtime, 3) == pytest.approx([1 / 4] * 3)
    assert control.on_throttled(await control.acquire())
    assert control.rate == 2.0
    assert await gaps(control, vtime, 3) == pytest.approx([1 / 2] * 3)


async def test_the_rate_never_goes_below_the_floor(vtime: VirtualTime) -> None:
    control = adaptive(vtime, rate=8.0, floor=0.5)
    lowered = [control.on_throttled(await control.acquire()) for _ in range(10)]
    assert lowered == [True] * 4 + [False] * 6  # 8 → 4 → 2 → 1 → 0.5, then it stays
    assert control.rate == 0.5 == control.lowest
    assert control.at_floor
    assert control.throttled == 10
    assert await gaps(control, vtime, 2) == pytest.approx([2.0, 2.0])


async def test_a_floor_above_the_configured_rate_is_the_configured_rate(
    vtime: VirtualTime,
) -> None:
    control = adaptive(vtime, rate=0.2, floor=0.5)
    assert control.floor == 0.2
    assert control.at_floor
    assert not control.on_throttled(await control.acquire())
    assert control.rate == 0.2


async def test_429s_to_requests_of_the_same_round_lower_the_rate_once(vtime: VirtualTime) -> None:
    control = adaptive(vtime)
    first, second = await control.acquire(), await control.acquire()  # both in flight
    assert control.on_throttled(first)
    assert not control.on_throttled(second)  # sent before the decrease: nothing new
    assert control.rate == 4.0
    assert control.throttled == 2
    assert control.on_throttled(await control.acquire())  # sent at the lowered rate
    assert control.rate == 2.0


async def test_successes_win_the_rate_back_over_time_up_to_the_configured_one(
    vtime: VirtualTime,
) -> None:
    control = adaptive(vtime)  # the whole 8 r/s back in 24 s: 1 r/s per 3 s
    control.on_throttled(await control.acquire())
    control.on_throttled(await control.acquire())
    assert control.rate == 2.0
    control.on_success()  # no time has passed since the decrease: nothing won back yet
    assert control.rate == 2.0
    rates = []
    for _ in range(8):
        await vtime.sleep(3.0)
        control.on_success()
        rates.append(control.rate)
    assert rates == pytest.approx([3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0, 8.0])  # never above 8
    assert control.lowest == 2.0
    assert await gaps(control, vtime, 2) == pytest.approx([1 / 8] * 2)


async def test_a_rate_pushed_to_the_floor_comes_back_within_the_recovery_time(
    vtime: VirtualTime,
) -> None:
    """At the floor requests are few, so winning the rate back by time, not per request, is
    what keeps a short 429 storm from slowing the rest of a run to a crawl."""
    control = adaptive(vtime, rate=8.0, floor=0.5)
    while control.on_throttled(await control.acquire()):
        pass
    assert control.rate == 0.5
    start = vtime.now
    while control.rate < 8.0:
        await control.acquire()
        control.on_success()
    assert vtime.now - start <= 24.0


def test_the_floor_is_a_share_of_the_connection_rate() -> None:
    config = ConnectionConfig("https://a.test/v1", "k", 10.0)
    assert AdaptiveRate.for_connection(config).floor == pytest.approx(1.0)
    half = ConnectionConfig("https://a.test/v1", "k", 10.0, min_rate_share=0.5)
    assert AdaptiveRate.for_connection(half).floor == pytest.approx(5.0)


async def test_the_slowdown_report(vtime: VirtualTime) -> None:
    control = adaptive(vtime)
    assert control.slowdown() is None
    control.on_throttled(await control.acquire())
    control.on_success()
    assert control.slowdown() == Slowdown(configured=8.0, lowest=4.0, throttled=1)


def test_the_warning_names_the_destination_the_429s_and_the_rates() -> None:
    text = Slowdown(configured=5.0, lowest=0.3125, throttled=1234).describe("Autopilot")
    assert text.startswith("Autopilot slowed this run down (1,234 × 429 Too Many Requests;")
    assert "from 5 r/s to as low as 0.312 r/s" in text
    assert "from 1,000 r/s" in Slowdown(1000.0, 2.0, 1).describe("Autopilot")
    at_floor = Slowdown(configured=0.05, lowest=0.05, throttled=3).describe("Autopilot")
    assert "(3 × 429 Too Many Requests; at the connection's rate limit of 0.05 r/s)" in at_floor


async def test_a_lowered_bucket_keeps_its_tokens_up_to_the_new_capacity(
    vtime: VirtualTime,
) -> None:
    bucket = TokenBucket(10.0, clock=vtime.clock, sleep=vtime.sleep, burst_seconds=0.5)
    assert bucket.capacity == 5.0
    bucket.set_rate(4.0)
    assert bucket.capacity == 2.0
    await bucket.acquire()
    await bucket.acquire()  # the two tokens it kept
    assert vtime.now == 1000.0
    await bucket.acquire()
    assert vtime.now == pytest.approx(1000.25)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate_decrease", 1.0, "rate_decrease must be between 0 and 1"),
        ("rate_decrease", 0.0, "rate_decrease must be between 0 and 1"),
        ("min_rate_share", 0.0, "min_rate_share must be more than 0 and at most 1"),
        ("min_rate_share", 1.5, "min_rate_share must be more than 0 and at most 1"),
        ("recovery_seconds", -0.1, "recovery_seconds must be a positive number of seconds"),
    ],
)
def test_adaptive_settings_out_of_range_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ConnectionConfig("https://a.test/v1", "k", 5.0, **{field: value})  # type: ignore[arg-type]


# -- the client ----------------------------------------------------------------------------------


def destination(script: Script, vtime: VirtualTime, **overrides: object) -> AutopilotDestination:
    return AutopilotDestination(config_for(script, vtime, **overrides))  # type: ignore[arg-type]


async def test_429s_without_retry_after_slow_the_client_without_using_up_attempts(
    vtime: VirtualTime,
) -> None:
    script = Script([reply(429)] * 5 + [reply(200, OK_BULK)])
    async with destination(script, vtime, rate=10.0, max_attempts=4) as dest:
        result = await dest.upsert_batch([UpsertItem("a@x.org")])  # 6 requests, 4 attempts
        assert result.outcomes[0].ok
        assert result.requests == 6
        assert dest.throttled == 5
        slowdown = dest.slowdown()
        assert slowdown == Slowdown(configured=10.0, lowest=pytest.approx(10 * 0.7**5), throttled=5)
        # the success wins back 10 r/s × (seconds since the last decrease) / 300
        last_wait = 1 / (10 * 0.7**5)
        assert dest.client.rate.rate == pytest.approx(10 * 0.7**5 + 10 * last_wait / 300)
        assert slowdown_warnings(dest) == [slowdown.describe("Autopilot")]
    # each retry waits for a token at the lowered rate (× 0.7 per 429): no backoff on top
    assert vtime.sleeps == pytest.approx([1 / (10 * 0.7**k) for k in range(1, 6)])


async def test_retry_after_is_honoured_in_seconds_and_as_an_http_date(vtime: VirtualTime) -> None:
    when = format_datetime(datetime.fromtimestamp(WALL + 10, UTC), usegmt=True)
    script = Script(
        [
            reply(429, {"message": "slow down"}, {"Retry-After": "7"}),
            reply(429, {"message": "slow down"}, {"Retry-After": when}),
            reply(200, OK_BULK),
        ]
    )
    async with destination(script, vtime, rate=10.0, max_attempts=2) as dest:
        await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.throttled == 2
        assert dest.client.rate.lowest == pytest.approx(4.9)
    assert vtime.sleeps == pytest.approx([7.0, 10.0])


async def test_a_permanent_429_ends_at_the_floor_with_a_clear_message(vtime: VirtualTime) -> None:
    script = Script(fallback=lambda _: reply(429, {"message": "too many"}))
    async with destination(script, vtime, rate=1.0, min_rate_share=0.25, max_attempts=4) as dest:
        with pytest.raises(RateLimited) as info:
            await dest.forget("a@x.org")
        assert dest.client.rate.rate == 0.25
    # 1 → 0.7 → 0.49 → 0.343 → 0.25 r/s without using up attempts, then 4 attempts at the floor
    assert len(script.requests) == 8
    message = str(info.value)
    assert "429 Too Many Requests to DELETE /contact/{contact}: too many" in message
    assert "slowed down to 0.25 r/s (its floor)" in message
    assert "gave up after 4 attempts, 8 requests in all" in message
    assert "a@x.org" not in message


async def test_a_call_that_must_answer_quickly_counts_every_429(vtime: VirtualTime) -> None:
    script = Script(fallback=lambda _: reply(429, {"message": "too many"}))
    async with destination(script, vtime, max_attempts=8) as dest:
        with pytest.raises(RateLimited, match="gave up after 3 attempts"):
            await dest.check_credentials()
    assert len(script.requests) == 3


async def test_a_destination_that_never_saw_a_429_has_no_warning(vtime: VirtualTime) -> None:
    script = Script([reply(200, OK_BULK)])
    async with destination(script, vtime) as dest:
        await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.slowdown() is None
        assert slowdown_warnings(dest) == []
    assert slowdown_warnings(None) == []
