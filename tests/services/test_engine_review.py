"""Run-engine defects found in review (X7, X8): acknowledged batches are committed even when the
batch after them fails, heartbeats survive a passing DB error, and a process that lost its run's
lease never ends the run under the process that took it over.

What the engine talks to is injected through :class:`EngineParts` (a reader, a destination
factory, a store class, the lease length); nothing is patched."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from segsync.destinations.base import BatchResult, ConnectionConfig, Destination, UpsertItem
from segsync.destinations.registry import create_destination
from segsync.domain.runs import RunStatus
from segsync.errors import RetriableError
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.read import read_members
from segsync.services.sync.store import RunStore
from segsync.services.sync.tally import Snapshot, StateChanges
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
WAIT = 30  # seconds an event may take on a loaded machine before the test gives up


def _synced(ctx: ServiceContext) -> tuple[dict[str, str], set[tuple[int, str]]]:
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        return sync.hashes(1), sync.memberships(1)


def _execute(ctx: ServiceContext, parts: EngineParts) -> Any:
    run_id = enqueue_run(ctx, "Newsletter").run.id
    claim = claim_run(ctx, run_id)
    assert claim is not None
    return execute_claim(ctx, claim, tune=fast, parts=parts)


def test_batches_acknowledged_before_a_failing_batch_are_committed(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """Batch 0 is acknowledged and its commit is still running when batch 1 is acknowledged;
    then batch 2 fails for good. Batch 1 must be committed before the run ends Failure."""
    setup(ctx, sim, tmp_path, people(250))  # three batches
    first_commit_running = threading.Event()
    first_commit_may_end = threading.Event()
    commits: list[int] = []

    class SlowFirstCommit(RunStore):
        def _commit(
            self, snapshot: Snapshot, changes: StateChanges, answered: list[int], session: Session
        ) -> None:
            commits.append(len(changes.hashes))
            if len(commits) == 1:
                first_commit_running.set()
                assert first_commit_may_end.wait(WAIT)
            super()._commit(snapshot, changes, answered, session)

    def failing_third_batch(type_name: str, config: ConnectionConfig) -> Destination:
        destination = create_destination(type_name, config)

        async def upsert_batches(
            batches: AsyncIterable[Sequence[UpsertItem]] | Iterable[Sequence[UpsertItem]],
            send: object = None,
        ) -> AsyncIterator[tuple[int, BatchResult]]:
            source = aiter(batches)  # type: ignore[arg-type]
            first = await destination.upsert_batch(await anext(source))
            second_batch = await anext(source)  # its intent is committed before ack 0 comes
            yield 0, first
            second = await destination.upsert_batch(second_batch)
            assert await asyncio.to_thread(first_commit_running.wait, WAIT)
            yield 1, second
            first_commit_may_end.set()
            raise RetriableError("503 Service Unavailable after 5 attempts")

        destination.upsert_batches = upsert_batches  # type: ignore[method-assign]
        return destination

    run = _execute(ctx, EngineParts(store=SlowFirstCommit, open_destination=failing_third_batch))

    assert run.status is RunStatus.FAILURE, run.message
    sent = set(contacts(sim))
    assert len(sent) == 175  # two of the three batches (100, 75, 75) reached Autopilot
    assert commits == [100, 75]  # batch 1 waited for batch 0's commit, then had its own
    hashes, memberships = _synced(ctx)
    assert set(hashes) == sent  # both acknowledged batches are in the sync state
    assert {email for _, email in memberships} == sent
    assert run.counts.added == len(sent) == run.items_done

    reset_stats(sim)
    rest = runs.run_export(ctx, "Newsletter", tune=fast)
    assert rest.status is RunStatus.SUCCESSFUL
    assert count(stats(sim), UPSERT) == 1  # only the batch that failed
    assert len(contacts(sim)) == 250


def test_the_heartbeat_survives_a_passing_db_error(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A heartbeat that fails once (the DB was briefly unreachable) keeps beating: otherwise a
    long read of the members lets the lease lapse and a second worker runs the run too."""
    setup(ctx, sim, tmp_path, people(20))
    beats: list[int] = []
    third_beat = threading.Event()

    class FlakyHeartbeat(RunStore):
        def _heartbeat(self) -> None:
            beats.append(1)
            if len(beats) == 1:
                raise OperationalError("UPDATE runs", {}, Exception("server closed the connection"))
            super()._heartbeat()
            if len(beats) >= 3:
                third_beat.set()

    beating: list[bool] = []

    def slow_read(*args: Any) -> Any:
        beating.append(third_beat.wait(WAIT))  # a long read: the lease must be kept meanwhile
        return read_members(*args)

    parts = EngineParts(store=FlakyHeartbeat, read=slow_read, lease_seconds=0.02, first_run=None)
    run = _execute(ctx, parts)

    assert beating == [True]
    assert run.status is RunStatus.SUCCESSFUL


def test_a_process_that_lost_the_lease_does_not_end_the_run(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """While this process reads the members its lease lapses and another worker takes the run
    over. This process must stop without ending the run: the other one carries it on."""
    setup(ctx, sim, tmp_path, people(20))
    other = "another-host:4242:0123456789ab"

    def read_then_lose_the_lease(*args: Any) -> Any:
        with ctx.db.session() as session:
            repo = RunRepository(session)
            current = repo.get(1)
            assert repo.claim(
                1,
                previous_owner=current.lease_owner,
                owner=other,
                expires_at=ctx.now() + timedelta(seconds=60),
            )
        return read_members(*args)

    record = _execute(ctx, EngineParts(read=read_then_lose_the_lease, first_run=None))

    assert record.status is RunStatus.PROCESSING
    with ctx.db.session() as session:
        now = RunRepository(session).get(1)
    assert (now.status, now.lease_owner, now.ended_at) == (RunStatus.PROCESSING, other, None)
    assert contacts(sim) == {}
