"""The run engine when Autopilot misbehaves (X6, X8, X12): refused emails, 429 storms, 500s,
408 after commit, a revoked key, and a cancel in the middle of a run. The simulator's fault
switches make each misbehaviour happen exactly when the test says; the runs reach it
in-process (``in_process``), except the cancel, which paces a real run over HTTP."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from segsync.destinations.base import ConnectionConfig
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.connections import connection_id, show_connection
from segsync.services.context import ServiceContext
from segsync.services.sync.tally import RunProgress
from segsync.simulator import RunningSimulator
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
STORM = 30


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
def test_a_429_storm_is_ridden_out(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, retry_after: float | None
) -> None:
    setup(ctx, sim, tmp_path, people(2500), rate_limit=1000)
    sim.simulator.faults.set_retry_after(retry_after)
    sim.simulator.faults.throttle_next(STORM)  # more 429s in a row than one request's attempts
    reset_stats(sim)
    waited = VirtualTime()  # the client's clock and sleep: no real waiting, every wait kept

    def patient(config: ConnectionConfig) -> ConnectionConfig:
        return dataclasses.replace(
            config, clock=waited.clock, sleep=waited.sleep, backoff_max=0.3, max_attempts=40
        )

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, patient))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert stats(sim)["throttled"] == STORM
    assert count(stats(sim), UPSERT, "200") == 25  # every batch accepted once
    assert run.counts.added == 2500
    assert run.counts.requests == stats(sim)["total"]
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == 2500 == len({c["Email"] for c in snapshot}) == len(contacts(sim))
    if retry_after is not None:  # the client waited as long as each 429 asked
        assert waited.sleeps.count(retry_after) >= STORM
    else:  # its own backoff, capped
        assert 0 < max(waited.sleeps) <= 0.3


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
    assert "the Autopilot API key was rejected" in (run.message or "")
    assert stats(sim)["total"] <= 2  # no retry storm
    assert show_connection(ctx, connection_id(ctx, "Sim")).health == "key_rejected"
    assert contacts(sim) == {}


def test_cancel_stops_after_the_batch_in_flight(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(2000), rate_limit=40)
    done_when_canceled: list[int] = []

    def cancel_after_first_batch(event: RunProgress) -> None:
        if event.phase == "sending" and event.items_done > 0 and not done_when_canceled:
            done_when_canceled.append(event.items_done)
            runs.cancel_run(ctx, event.run_id)

    run = runs.run_export(ctx, "Newsletter", progress=cancel_after_first_batch)

    assert run.status is RunStatus.CANCELED
    # It stops after what was in flight when the cancel came (a few batches at 40 r/s), however
    # busy the machine is: measured from the moment of the cancel, not from the start.
    assert 100 <= done_when_canceled[0] <= run.items_done < 2000, run.items_done
    assert run.items_done - done_when_canceled[0] <= 500, (done_when_canceled, run.items_done)
    assert run.counts.added == run.items_done
    assert set(_synced(ctx)) == set(contacts(sim))  # what was sent is exactly what is saved
    reset_stats(sim)
    rest = runs.run_export(ctx, "Newsletter")
    assert rest.status is RunStatus.SUCCESSFUL
    assert len(contacts(sim)) == 2000
    assert count(stats(sim), UPSERT) == 20 - run.items_done // 100
