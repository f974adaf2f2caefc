"""A run whose connection is set faster than Autopilot allows (X6, X14): the client slows
itself down on the 429s and the run ends Successful, warning that Autopilot slowed it down.

Ten minutes pass in virtual time: the simulator's token bucket and the client share one clock
(:class:`~tests.destinations.conftest.VirtualTime`), which moves only when the client waits, and
the run reaches the simulator in-process (``in_process``: its ASGI app in this event loop), so a
request meets the simulator's bucket at the virtual moment the client sent it. Nothing waits for
real: the test takes seconds, however busy the machine is.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from segsync.destinations.base import ConnectionConfig
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.runs.views import run_payload, run_view
from segsync.simulator import SimulatorConfig, SimulatorHost
from tests.destinations.conftest import VirtualTime
from tests.services.runs_support import (
    API_KEY,
    count,
    ctx,
    in_process,
    people,
    reset_stats,
    setup,
    stats,
)

__all__ = ["ctx"]  # fixtures

CONFIGURED = 5.0  # the connection's rate limit, r/s
ALLOWED = 1.0  # what the simulator lets the key do, r/s
CONTACTS = 60_000  # 600 bulk requests: ten minutes at 1 r/s


@pytest.mark.slow  # 60,000 people through the import, the engine and the simulator (~20 s)
def test_a_run_set_to_5_rs_against_an_api_allowing_1_rs_ends_successful(
    ctx: ServiceContext, simulator_host: SimulatorHost, tmp_path: Path
) -> None:
    time = VirtualTime()
    sim = simulator_host.serve(
        SimulatorConfig(api_keys=[API_KEY], rate_limit=ALLOWED, clock=time.clock, seed=11)
    )
    setup(ctx, sim, tmp_path, people(CONTACTS), rate_limit=CONFIGURED)
    reset_stats(sim)  # the key check of the connection
    started = time.now

    def virtual(config: ConnectionConfig) -> ConnectionConfig:
        assert (config.rate_limit, config.max_attempts) == (CONFIGURED, 8)  # the defaults
        return dataclasses.replace(config, clock=time.clock, sleep=time.sleep)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, virtual))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    batches = math.ceil(CONTACTS / 100)
    assert count(stats(sim), "POST /v1/contacts", "200") == batches  # each batch landed once
    assert run.counts.added == CONTACTS
    landed = sim.simulator.contacts_snapshot()
    assert len(landed) == CONTACTS == len({c["Email"] for c in landed})
    assert run.counts.requests == stats(sim)["total"]
    throttled = stats(sim)["throttled"]
    assert throttled > 0
    (warning,) = [w for w in run.warnings if "slowed this run down" in w]
    assert warning.startswith(f"Autopilot slowed this run down ({throttled:,} × 429")
    assert "from 5 r/s to as low as" in warning
    # The API allows no more than 1 r/s: the run took at least the 600 requests' ten minutes
    # (the simulator's bucket starts with 1 token), and the client did not crawl at its floor:
    # AIMD's sawtooth between 0.7 and 1 r/s costs about a quarter more (measured: 751 s).
    elapsed = time.now - started
    accepted = stats(sim)["total"] - throttled
    assert elapsed >= (accepted - 1) / ALLOWED - 1e-6
    assert elapsed <= 1.4 * batches / ALLOWED


def test_a_run_that_fails_on_429s_ends_with_a_clear_message_and_the_warning(
    ctx: ServiceContext, simulator_host: SimulatorHost, tmp_path: Path
) -> None:
    """The bound: a key that is answered 429 for good still ends the run (Failure), once the
    client has slowed down to its floor and used up a request's attempts there. The run page,
    `segsync runs show` and the API show the warning for a failed run too."""
    time = VirtualTime()
    sim = simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=12))
    setup(ctx, sim, tmp_path, people(250), rate_limit=CONFIGURED)
    sim.simulator.faults.throttle_next(1_000)  # never anything but 429
    reset_stats(sim)

    def virtual(config: ConnectionConfig) -> ConnectionConfig:
        return dataclasses.replace(config, clock=time.clock, sleep=time.sleep)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, virtual))

    assert run.status is RunStatus.FAILURE
    # 5 r/s × 0.7 per 429 reaches the floor (10 %: 0.5 r/s) at the 7th; then 8 attempts there
    assert stats(sim)["total"] == stats(sim)["throttled"] == 7 + 8
    message = run.message or ""
    assert "429 Too Many Requests to GET /lists" in message
    assert "slowed down to 0.5 r/s (its floor)" in message
    assert "gave up after 8 attempts, 15 requests in all" in message
    warning = "Autopilot slowed this run down (15 × 429 Too Many Requests; segsync lowered its "
    warning += "rate from 5 r/s to as low as 0.5 r/s)"
    (only,) = run.warnings
    assert only.startswith(warning)
    assert run_payload(run_view(ctx, run.id))["warnings"] == [only]  # what the API gives
