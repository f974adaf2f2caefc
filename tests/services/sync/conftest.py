"""Fixtures of the run-engine stage tests: an in-process Autopilot simulator and a destination
that talks to it through its ASGI app (no socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.simulator import Simulator, SimulatorConfig
from tests.destinations.conftest import asgi_config

KEY = "sync-stage-key"


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0, seed=5))


@pytest.fixture
async def destination(simulator: Simulator) -> AsyncIterator[AutopilotDestination]:
    config = asgi_config(simulator.app, KEY, max_attempts=2)
    async with AutopilotDestination(config) as dest:
        yield dest
