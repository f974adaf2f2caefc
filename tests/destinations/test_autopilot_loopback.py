"""The client against the simulator over a real loopback socket: the rate limit held under
latency without a single 429, and faults switched on through ``/_sim/faults``."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator

import httpx
import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import ConnectionConfig, UpsertItem
from segsync.errors import AuthenticationFailed, RetriableError
from segsync.simulator import RunningSimulator, SimulatorConfig, serve_in_thread

KEY = "loopback-key"


@pytest.fixture
def server() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(api_keys=[KEY], rate_limit=0, seed=3)) as running:
        yield running


def set_faults(server: RunningSimulator, **switches: object) -> None:
    httpx.post(f"{server.root_url}/_sim/faults", json=switches).raise_for_status()


def stats(server: RunningSimulator) -> dict[str, object]:
    answer = httpx.get(f"{server.root_url}/_sim/stats")
    answer.raise_for_status()
    data: dict[str, object] = answer.json()
    return data


class RecordedSleep:
    """Really sleeps (the server's clock is real) but keeps every delay asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


def connect(server: RunningSimulator, rate: float, **overrides: object) -> AutopilotDestination:
    config = ConnectionConfig(server.base_url, KEY, rate, **overrides)  # type: ignore[arg-type]
    return AutopilotDestination(config)


async def test_the_rate_is_held_under_latency_without_a_single_429(
    server: RunningSimulator,
) -> None:
    rate = 20.0
    set_faults(server, rate_limit=rate, latency_ms=100)
    emails = [f"p{i:04d}@example.org" for i in range(600)]
    batches = [[UpsertItem(e) for e in emails[i : i + 20]] for i in range(0, 600, 20)]
    async with connect(server, rate) as dest:
        done = [
            i
            async for i, result in dest.upsert_batches(batches)
            if all(o.ok for o in result.outcomes)
        ]
        assert sorted(done) == list(range(30))
        assert dest.requests_made == math.ceil(600 / 20)
        assert dest.throttled == 0
        # 100 ms at 20 r/s: ceil(2) + 1 requests in flight, more than one at a time
        assert dest.max_in_flight() >= 3
    counts = stats(server)
    assert counts["throttled"] == 0
    assert counts["requests"] == {"POST /v1/contacts": {"200": 30}}


class Timeline(httpx.AsyncBaseTransport):
    """The real transport, noting when each request went out and when its answer came back."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.events: list[tuple[float, float, int]] = []  # (sent, answered, status)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = await self.inner.handle_async_request(request)
        self.events.append((sent, time.monotonic(), response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_429s_are_retried_honouring_retry_after(server: RunningSimulator) -> None:
    # The connection's rate is set too high for the key: the server pushes back.
    set_faults(server, rate_limit=4, retry_after=0.25)
    timeline = Timeline()
    async with connect(server, 1000.0, transport=timeline) as dest:
        for i in range(8):
            result = await dest.upsert_batch([UpsertItem(f"r{i}@example.org")])
            assert result.outcomes[0].ok
        assert dest.throttled > 0
        assert dest.throttled == stats(server)["throttled"]
        assert dest.requests_made == 8 + dest.throttled
        slowdown = dest.slowdown()
        assert slowdown is not None
        assert slowdown.lowest < 1000.0
    # after each 429, the next request waited at least as long as Retry-After said
    for (_, answered, status), (sent, _, _) in itertools.pairwise(timeline.events):
        if status == 429:
            assert sent - answered >= 0.25


async def test_server_errors_are_retried_until_they_pass(server: RunningSimulator) -> None:
    set_faults(server, fail_next=2)
    sleep = RecordedSleep()
    async with connect(server, 1000.0, sleep=sleep, backoff_base=0.01) as dest:
        list_id = await dest.ensure_list("Retried")
        assert list_id.startswith("contactlist_")
        assert dest.requests_made == 4  # GET /lists: 500, 500, 200; then POST /list
    assert stats(server)["requests"] == {
        "GET /v1/lists": {"500": 2, "200": 1},
        "POST /v1/list": {"200": 1},
    }
    assert len(sleep.delays) == 2


async def test_a_key_revoked_mid_run_fails_at_once(server: RunningSimulator) -> None:
    async with connect(server, 1000.0) as dest:
        await dest.upsert_batch([UpsertItem("a@example.org")])
        set_faults(server, revoke_key=KEY)
        with pytest.raises(AuthenticationFailed, match=r"API key was rejected \(401\)"):
            await dest.upsert_batch([UpsertItem("b@example.org")])
        assert dest.requests_made == 2


async def test_an_unreachable_service_is_given_up_after_bounded_attempts() -> None:
    with serve_in_thread(SimulatorConfig(api_keys=[KEY])) as running:
        base_url = running.base_url  # the port is free again once the server stops
    sleep = RecordedSleep()
    config = ConnectionConfig(base_url, KEY, 1000.0, sleep=sleep, max_attempts=3, backoff_base=0.01)
    async with AutopilotDestination(config) as dest:
        with pytest.raises(RetriableError, match="could not reach Autopilot"):
            await dest.get_contact("a@example.org")
        assert dest.requests_made == 3
        assert dest.client.bucket.capacity == 1000.0  # a failed request is no longer out
    assert len(sleep.delays) == 2


class Stalling(httpx.AsyncBaseTransport):
    """A network that holds the first ``held`` requests until all of them are held, then lets
    them through together, after the client's clock (``Ahead``) was moved on a second: the
    server gets them bunched while both buckets are full again — the worst case of the room
    the client's bucket keeps in the server's (``pacing.bucket_capacity``)."""

    def __init__(self, held: int, ahead: Ahead) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.held, self.ahead = held, ahead
        self.waiting = 0
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.waiting < self.held:
            self.waiting += 1
            if self.waiting == self.held:
                self.ahead.offset += 1.0  # the client's bucket full again meanwhile
                self.release.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Ahead:
    """The client's monotonic clock, moved on at will."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def test_requests_held_up_by_the_network_never_overrun_the_servers_bucket(
    server: RunningSimulator,
) -> None:
    """The client's bucket leaves room in the server's (one second of the rate) for every
    request it has sent and not seen answered: the most the network can bunch. At 40 r/s it
    starts with 40 tokens and holds 24 while 16 are out. Here the network holds 16 requests
    until the client's bucket is as full as it may be again, then delivers them together, and
    the client spends its whole bucket at once: not one 429. (Room for none, a bucket of 40,
    draws them: checked by hand, not here, as how many depends on how fast this machine
    answers.)"""
    rate = 40.0
    set_faults(server, rate_limit=rate)
    ahead = Ahead()
    network = Stalling(16, ahead)
    destination = connect(server, rate, transport=network, clock=ahead)
    client = destination.client
    assert client.bucket.capacity == rate
    async with destination:
        replies = await asyncio.gather(*(client.lists() for _ in range(16 + 40 + 10)))
    assert all(reply.status == 200 for reply in replies)
    assert network.release.is_set()
    assert client.bucket.capacity == rate  # every answer was counted: none is out
    assert client.throttled == 0
    assert stats(server)["throttled"] == 0
