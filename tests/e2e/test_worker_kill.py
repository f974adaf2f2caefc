"""X7 through workers: a ``segsync worker`` process killed with SIGKILL mid-run, or stopped with
SIGTERM, leaves its run to another worker, which finishes it with Autopilot's state exactly
right — every contact once, on the right lists — resending at most the batches in flight.

"Mid-run" is made certain, not hoped for (tests/e2e/midrun.py): the simulator holds every request
after a few writes, and the signal is sent before the held requests go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from segsync.domain.runs import RunStatus
from segsync.services.context import ServiceContext, open_context
from segsync.services.runs.queue import enqueue_run
from segsync.services.runs.worker import Worker, workers_alive
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, SimulatorConfig
from segsync.storage.repositories.runs import RunRecord, RunRepository
from tests.e2e.midrun import (
    UPSERT,
    WAIT_LIMIT,
    LoopbackSimulator,
    Processes,
    wait_until_held,
    wait_until_taken,
)
from tests.services.runs_support import (
    API_KEY,
    count,
    fast,
    list_members,
    people,
    setup,
    stats,
)

PEOPLE = 1300  # 1000 in Seg A only, 200 in both, 100 in Seg B only
ITEMS = 1200 + 300
HOLD_AFTER_WRITES = 5  # two lists and three batches, in whatever order, then every request waits


@pytest.fixture
def server() -> Iterator[LoopbackSimulator]:
    loopback = LoopbackSimulator(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=5))
    yield loopback
    loopback.close()


@pytest.fixture
def sim(server: LoopbackSimulator) -> RunningSimulator:
    return server.running


@pytest.fixture
def ready(settings: Settings, sim: RunningSimulator, tmp_path: Path) -> Iterator[ServiceContext]:
    crowd = people(1000, "a") + people(200, "ab", start=1001) + people(100, "b", start=1201)
    with open_context(settings) as builder:  # closed: the worker process needs the DuckDB file
        setup(builder, sim, tmp_path, crowd, segments=("Seg A", "Seg B"), rate_limit=10)
    sim.simulator.faults.set_latency(30)
    sim.simulator.faults.hold_after_writes(HOLD_AFTER_WRITES)
    with open_context(settings) as ctx:
        yield ctx


def _worker_process(processes: Processes, settings: Settings) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    command = [sys.executable, "-m", "segsync", "--data-dir", str(settings.data_dir)]
    return processes.start([*command, "worker", "--poll-interval", "0.05", "--json"], env)


def _run(ctx: ServiceContext, run_id: int) -> RunRecord:
    with ctx.db.session() as session:
        return RunRepository(session).get(run_id)


def _finish_in_this_process(
    ctx: ServiceContext, sim: RunningSimulator, run_id: int, in_flight: int
) -> None:
    """Resume the run in this process; ``in_flight``: the upserts the stopped worker had sent
    that were applied but never committed as done."""
    done_before = _run(ctx, run_id).items_done
    assert 0 < done_before < ITEMS, "the run ended before the worker was stopped"
    sent_before = count(stats(sim), UPSERT)

    finished = Worker(ctx, tune=fast).run_once()

    assert finished is not None
    assert finished.id == run_id
    assert finished.status is RunStatus.SUCCESSFUL
    assert finished.attempts == 2
    assert finished.counts.added == PEOPLE
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == PEOPLE == len({c["Email"] for c in snapshot})
    assert list_members(sim) == {
        "Seg A": {f"p{i}@example.com" for i in range(1, 1201)},
        "Seg B": {f"p{i}@example.com" for i in range(1001, 1301)},
    }
    # Counted over both workers, so no request of the stopped one can slip past the count:
    # the batches acknowledged before, those of what was left, and those in flight at the stop,
    # counted exactly. The resumed run sends only what was left.
    before = -(-done_before // 100)
    remaining = -(-(ITEMS - done_before) // 100)
    assert sent_before == before + in_flight
    assert count(stats(sim), UPSERT) - sent_before <= remaining
    assert count(stats(sim), UPSERT) <= before + remaining + in_flight
    assert count(stats(sim), "POST /v1/list") == 2  # created once, reused by the second worker


def test_a_worker_killed_mid_run_leaves_it_to_another_that_ends_it_exactly_right(
    settings: Settings,
    server: LoopbackSimulator,
    sim: RunningSimulator,
    ready: ServiceContext,
    processes: Processes,
) -> None:
    ctx = ready
    run_id = enqueue_run(ctx, "Newsletter").run.id
    worker = _worker_process(processes, settings)
    acknowledged = wait_until_held(sim, worker, lambda: _run(ctx, run_id).items_done)

    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    server.drain()  # what the dead worker had in flight reaches Autopilot now, and is counted
    in_flight = count(stats(sim), UPSERT) - acknowledged
    assert worker.returncode == -signal.SIGKILL
    assert _run(ctx, run_id).status is RunStatus.PROCESSING  # its lease names a dead process
    assert workers_alive(ctx) == []  # its row stays, but its process is gone

    _finish_in_this_process(ctx, sim, run_id, in_flight)


def test_sigterm_stops_a_worker_cleanly_and_its_run_goes_back_to_the_queue(
    settings: Settings, sim: RunningSimulator, ready: ServiceContext, processes: Processes
) -> None:
    ctx = ready
    run_id = enqueue_run(ctx, "Newsletter").run.id
    worker = _worker_process(processes, settings)
    wait_until_held(sim, worker, lambda: _run(ctx, run_id).items_done)

    worker.send_signal(signal.SIGTERM)
    wait_until_taken(worker, signal.SIGTERM)
    sim.simulator.faults.release()  # the batches in flight are answered; no new one starts
    out, err = worker.communicate(timeout=WAIT_LIMIT)

    assert worker.returncode == 0, err.decode()
    (released,) = json.loads(out)
    assert released["id"] == run_id
    assert released["status"] == "queued"
    run = _run(ctx, run_id)
    assert run.status is RunStatus.QUEUED
    assert run.lease_owner is None
    assert workers_alive(ctx) == []  # it unregistered
    _finish_in_this_process(ctx, sim, run_id, in_flight=0)  # it waited for its answers
