"""The run engine when Autopilot misbehaves (X6, X8, X12): refused emails, 429 storms, 500s,
408 after commit, a revoked key, and a cancel in the middle of a run. The simulator's fault
switches make each misbehaviour happen exactly when the test says; the runs reach it
in-process (``in_process``), except the cancel, which paces a real run over HTTP."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.destinations.base import BatchResult, ConnectionConfig, Destination, UpsertItem
from segsync.destinations.registry import create_destination
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.connections import connection_id, show_connection
from segsync.services.context import ServiceContext
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.store import RunStore
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRecord
from segsync.storage.repositories.sync import SyncStateRepository
from tests.destinations.conftest import VirtualTime
from tests.services.runs_support import (
    API_KEY,
    contacts,
    count,
    ctx,
    fast,
    in_process,
    list_members,
    people,
    reset_stats,
    setup,
    sim,
    stats,
)

__all__ = ["ctx", "sim"]  # fixtures

UPSERT = "POST /v1/contacts"
STORM = 12  # 429s in a row: more than a request's 8 attempts
WAIT = 60  # seconds a step may take on a loaded machine before the test gives up


def _synced(ctx: ServiceContext) -> dict[str, str]:
    with ctx.db.session() as session:
        return SyncStateRepository(session).hashes(1)


def test_an_email_refused_by_the_api_does_not_sink_its_batch(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(150))
    sim.simulator.faults.reject_emails(r"^p7@")

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.status is RunStatus.SUCCESSFUL
    assert run.counts.rejected == 1
    assert run.counts.added == 149
    assert set(contacts(sim)) == {f"p{i}@example.com" for i in range(1, 151)} - {"p7@example.com"}
    assert any("refused" in w for w in run.warnings)
    (reject,) = list(runs.rejects(ctx, run.id))
    assert (reject.kind, reject.email) == ("rejected", "p7@example.com")
    assert "p7@example.com" in reject.reason  # the API's own words
    assert "p7@example.com" not in _synced(ctx)

    sim.simulator.faults.reject_emails(None)
    reset_stats(sim)
    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert again.counts.added == 1
    assert count(stats(sim), UPSERT) == 1
    assert "p7@example.com" in contacts(sim)


def test_500s_are_retried_and_the_run_succeeds(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(300))
    sim.simulator.faults.fail_next(4)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.SUCCESSFUL
    assert len(contacts(sim)) == 300
    assert sum(count(stats(sim), route, "500") for route in stats(sim)["requests"]) == 4
    assert run.counts.requests == stats(sim)["total"]


@pytest.mark.parametrize("retry_after", [None, 2.0], ids=["no-retry-after", "retry-after"])
def test_a_429_storm_slows_the_run_down_instead_of_failing_it(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, retry_after: float | None
) -> None:
    """The users' bug: a storm of 429s longer than a request's attempts (8) ended the run in
    Failure. Now the client lowers its rate on each 429 without using up attempts, and the run
    ends Successful with a warning saying Autopilot slowed it down."""
    setup(ctx, sim, tmp_path, people(2500), rate_limit=5)
    sim.simulator.faults.set_retry_after(retry_after)
    sim.simulator.faults.throttle_next(STORM)
    reset_stats(sim)
    waited = VirtualTime()  # the client's clock and sleep: no real waiting, every wait kept

    sent: list[tuple[float, int]] = []  # (virtual time, status) of each request

    def virtual(config: ConnectionConfig) -> ConnectionConfig:
        assert config.max_attempts == 8  # the default budget
        assert config.transport is not None
        timed = Timed(config.transport, waited, sent)
        return dataclasses.replace(config, clock=waited.clock, sleep=waited.sleep, transport=timed)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, virtual))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert stats(sim)["throttled"] == STORM
    assert count(stats(sim), UPSERT, "200") == 25  # every batch accepted once
    assert run.counts.added == 2500
    assert run.counts.requests == stats(sim)["total"]
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == 2500 == len({c["Email"] for c in snapshot}) == len(contacts(sim))
    (warning,) = [w for w in run.warnings if "slowed this run down" in w]
    assert warning.startswith(f"Autopilot slowed this run down ({STORM} × 429 Too Many Requests;")
    assert "from 5 r/s to as low as" in warning
    # The storm hits the run's first request (GET /lists) 12 times: 7 429s take the rate from
    # 5 r/s down to its floor, 10 % of it (× 0.7 each, the 7th stops at 0.5 r/s), and each retry
    # waits for a token at the lowered rate (and as long as Retry-After asks); the other 5 use
    # up attempts at the floor (of 8), each after a backoff.
    assert [status for _, status in sent[: STORM + 1]] == [429] * STORM + [200]
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(sent[: STORM + 1])]
    paced = [1 / (5 * 0.7**k) for k in range(1, 7)] + [1 / 0.5]
    if retry_after is None:
        assert gaps[:7] == pytest.approx(paced)
    else:
        assert gaps[:7] == pytest.approx([max(retry_after, gap) for gap in paced])
    assert all(gap >= 2.0 - 1e-9 for gap in gaps[7:])  # at the floor: 1/rate, with a backoff


class Timed(httpx.AsyncBaseTransport):
    """A transport that notes the virtual time and the status of every request."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: VirtualTime, sent: list[tuple[float, int]]
    ) -> None:
        self.inner, self.clock, self.sent = inner, clock, sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at = self.clock.now
        response = await self.inner.handle_async_request(request)
        self.sent.append((at, response.status_code))
        return response


def test_a_408_after_commit_causes_no_duplicate(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(250))
    sim.simulator.faults.timeout_next_writes(3)  # the list creation and two upserts
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.SUCCESSFUL
    assert sum(count(stats(sim), route, "408") for route in stats(sim)["requests"]) == 3
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == 250 == len({c["Email"] for c in snapshot})
    assert list(list_members(sim)) == ["Seg A"]  # one list, not two
    assert len(list_members(sim)["Seg A"]) == 250


def test_a_revoked_key_fails_at_once_and_flags_the_connection(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(500))
    sim.simulator.faults.revoke_key(API_KEY)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.FAILURE
    assert run.message == (
        "connection 'Sim': the Autopilot API key was rejected (401); edit the connection and "
        "press Connect; then run the export again"
    )  # said once, not wrapped in a second "key was rejected"
    assert stats(sim)["total"] <= 2  # no retry storm
    assert show_connection(ctx, connection_id(ctx, "Sim")).health == "key_rejected"
    assert contacts(sim) == {}


def test_cancel_stops_after_the_batch_in_flight(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The simulator lets the list and two batches through, then holds every request at its
    door: those batches are in flight when the cancel comes. Once the engine has seen the
    cancel, no batch starts; the held ones are answered, committed, and the run ends Canceled
    with exactly what Autopilot took in its sync state."""
    setup(ctx, sim, tmp_path, people(2000))
    sim.simulator.faults.hold_after_writes(3)
    stores: list[RunStore] = []
    cancel_seen = threading.Event()
    started_after_cancel: list[bool] = []

    class Watching(RunStore):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

        async def heartbeat(self) -> None:
            await super().heartbeat()
            if self.cancel_requested:
                cancel_seen.set()

    def watched(type_name: str, config: ConnectionConfig) -> Destination:
        destination = create_destination(type_name, config)
        upsert = destination.upsert_batch

        def upsert_batch(items: Sequence[UpsertItem]) -> Coroutine[Any, Any, BatchResult]:
            started_after_cancel.append(stores[0].cancel_requested)  # as the batch is started
            return upsert(items)

        destination.upsert_batch = upsert_batch  # type: ignore[method-assign]
        return destination

    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    parts = EngineParts(store=Watching, open_destination=watched, lease_seconds=0.2)
    ended: list[RunRecord] = []
    worker = threading.Thread(target=lambda: ended.append(execute_claim(ctx, claim, parts=parts)))
    worker.start()
    try:
        assert sim.simulator.faults.hold.wait_for_held(1, timeout=WAIT)
        runs.cancel_run(ctx, claim.run.id)
        assert cancel_seen.wait(WAIT)  # the heartbeat (every 50 ms here) saw it
    finally:
        sim.simulator.faults.hold_after_writes(None)
        worker.join(WAIT)
    (run,) = ended

    assert run.status is RunStatus.CANCELED, run.message
    assert started_after_cancel[:2] == [False, False]
    assert not any(started_after_cancel), started_after_cancel  # nothing started once seen
    assert count(stats(sim), UPSERT) == len(started_after_cancel) < 20
    assert (
        run.counts.added == run.items_done == len(contacts(sim)) == 100 * len(started_after_cancel)
    )
    assert set(_synced(ctx)) == set(contacts(sim))  # what was sent is exactly what is saved
    reset_stats(sim)
    rest = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert rest.status is RunStatus.SUCCESSFUL
    assert len(contacts(sim)) == 2000
    assert count(stats(sim), UPSERT) == 20 - len(started_after_cancel)
