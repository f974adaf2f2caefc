"""Fixtures: a simulator and an httpx client talking to its ASGI app in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from segsync.simulator import Simulator, SimulatorConfig

KEY = "simulator-key"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(sim: Simulator, key: str | None = KEY) -> httpx.AsyncClient:
    headers = {} if key is None else {"autopilotapikey": key}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app),
        base_url="http://simulator/v1",
        headers=headers,
    )


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimulatorConfig(rate_limit=0, seed=7))


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sim) as http:
        yield http


@pytest.fixture
async def inspect(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the /_sim inspection surface (no API key)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://simulator/_sim"
    ) as http:
        yield http
