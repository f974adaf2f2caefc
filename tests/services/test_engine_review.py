"""Run-engine defects found in review (X7, X8): acknowledged batches are committed even when the
batch after them fails, heartbeats survive a passing DB error, and a process that lost its run's
lease never ends the run under the process that took it over."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from segsync.destinations.base import BatchResult, ConnectionConfig, Destination, UpsertItem
from segsync.domain.runs import RunStatus
from segsync.errors import RetriableError
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync import engine as runner
from segsync.services.sync.checkpoint import Checkpoint
from segsync.services.sync.target import RunTarget
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    contacts,
    count,
    ctx,
    fast,
    people,
    reset_stats,
    setup,
    sim,
    stats,
)

__all__ = ["ctx", "sim"]  # fixtures

UPSERT = "POST /v1/contacts"


def _synced(ctx: ServiceContext) -> tuple[dict[str, str], set[tuple[int, str]]]:
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        return sync.hashes(1), sync.memberships(1)


def test_batches_acknowledged_before_a_failing_batch_are_committed(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batch 0 is acknowledged and its commit is still running when batch 1 is acknowledged;
    then batch 2 fails for good. Batch 1 must be committed before the run ends Failure."""
    setup(ctx, sim, tmp_path, people(250))  # three batches
    first_commit_running = threading.Event()
    first_commit_may_end = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []
    commits: list[int] = []
    original = Checkpoint.batches_acknowledged

    def batches_acknowledged(
        self: Checkpoint, acks: Sequence[tuple[Sequence[Any], BatchResult]], requests: int
    ) -> list[str]:
        commits.append(len(acks))
        if len(commits) == 1:
            first_commit_running.set()
            first_commit_may_end.wait(10)
        else:  # let the event loop go as far as it goes without this commit
            loop, hopped = loops[0], threading.Event()
            loop.call_soon_threadsafe(lambda: loop.call_soon(lambda: loop.call_soon(hopped.set)))
            hopped.wait(10)
        return original(self, acks, requests)

    monkeypatch.setattr(Checkpoint, "batches_acknowledged", batches_acknowledged)
    real_create = runner.create_destination

    def create_destination(type_name: str, config: ConnectionConfig) -> Destination:
        destination = real_create(type_name, config)

        async def upsert_batches(
            batches: AsyncIterable[Sequence[UpsertItem]],
        ) -> AsyncIterator[tuple[int, BatchResult]]:
            loops.append(asyncio.get_running_loop())
            source = aiter(batches)
            yield 0, await destination.upsert_batch(await anext(source))
            second = await destination.upsert_batch(await anext(source))
            await asyncio.to_thread(first_commit_running.wait, 10)
            yield 1, second
            first_commit_may_end.set()
            raise RetriableError("503 Service Unavailable after 5 attempts")

        destination.upsert_batches = upsert_batches  # type: ignore[method-assign]
        return destination

    monkeypatch.setattr(runner, "create_destination", create_destination)

    run = runs.run_export(ctx, "Newsletter", tune=fast)

    assert run.status is RunStatus.FAILURE, run.message
    sent = set(contacts(sim))
    assert len(sent) > 100  # two batches reached Autopilot
    hashes, memberships = _synced(ctx)
    assert set(hashes) == sent  # both acknowledged batches are in the sync state
    assert {email for _, email in memberships} == sent
    assert run.counts.added == len(sent) == run.items_done

    monkeypatch.undo()
    reset_stats(sim)
    rest = runs.run_export(ctx, "Newsletter", tune=fast)
    assert rest.status is RunStatus.SUCCESSFUL
    assert count(stats(sim), UPSERT) == 1  # only the batch that failed
    assert len(contacts(sim)) == 250


def test_the_heartbeat_survives_a_passing_db_error(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A heartbeat that fails once (the DB was briefly unreachable) keeps beating: otherwise a
    long read of the members lets the lease lapse and a second worker runs the run too."""
    setup(ctx, sim, tmp_path, people(20))
    monkeypatch.setattr(runner, "LEASE_SECONDS", 0.02)  # beats every 5 ms
    beats: list[int] = []
    third_beat = threading.Event()
    original_heartbeat = Checkpoint.heartbeat

    def heartbeat(self: Checkpoint) -> None:
        beats.append(1)
        if len(beats) == 1:
            raise OperationalError("UPDATE runs", {}, Exception("server closed the connection"))
        original_heartbeat(self)
        if len(beats) >= 3:
            third_beat.set()

    monkeypatch.setattr(Checkpoint, "heartbeat", heartbeat)
    original_read = runner.read_members
    beating: list[bool] = []

    def read_members(ctx_: ServiceContext, target: RunTarget, needs: Any) -> Any:
        beating.append(third_beat.wait(5))  # a long read: the lease must be kept meanwhile
        return original_read(ctx_, target, needs)

    monkeypatch.setattr(runner, "read_members", read_members)

    run = runs.run_export(ctx, "Newsletter", tune=fast)

    assert beating == [True]
    assert run.status is RunStatus.SUCCESSFUL


def test_a_process_that_lost_the_lease_does_not_end_the_run(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While this process reads the members its lease lapses and another worker takes the run
    over. This process must stop without ending the run: the other one carries it on."""
    setup(ctx, sim, tmp_path, people(20))
    other = "another-host:4242:0123456789ab"
    original_read = runner.read_members

    def read_members(ctx_: ServiceContext, target: RunTarget, needs: Any) -> Any:
        with ctx.db.session() as session:
            repo = RunRepository(session)
            current = repo.get(1)
            assert repo.claim(
                1,
                previous_owner=current.lease_owner,
                owner=other,
                expires_at=ctx.now() + timedelta(seconds=60),
            )
        return original_read(ctx_, target, needs)

    monkeypatch.setattr(runner, "read_members", read_members)
    run_id = enqueue_run(ctx, "Newsletter").run.id
    claim = claim_run(ctx, run_id)
    assert claim is not None

    record = execute_claim(ctx, claim, tune=fast)

    assert record.status is RunStatus.PROCESSING
    with ctx.db.session() as session:
        now = RunRepository(session).get(run_id)
    assert (now.status, now.lease_owner, now.ended_at) == (RunStatus.PROCESSING, other, None)
    assert contacts(sim) == {}
