"""The run queue on SQLite and on PostgreSQL: claims take the oldest runnable run, at most one
real run per connection runs at a time, a lapsed lease is taken over, and many claimers at once
never take one run twice nor start two runs of one connection."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from segsync.domain.runs import RunStatus
from segsync.errors import Conflict
from segsync.services.context import ServiceContext, open_context
from segsync.services.runs.queue import Claim, claim_next, claim_run, enqueue_run, release_run
from segsync.services.sync.lease import mark_active
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from segsync.storage.models.runs import Run
from segsync.storage.repositories.run_queue import RunQueueRepository
from segsync.storage.repositories.runs import HOLD_PREFIX, RunRepository
from tests.services.runs_support import (
    connect,
    create_segments,
    make_export,
    people,
    sim,
    write_profiles,
)

__all__ = ["sim"]  # fixture


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queue_ctx(
    request: pytest.FixtureRequest, settings: Settings, sim: RunningSimulator, tmp_path: Path
) -> Iterator[ServiceContext]:
    """Exports A1, A2 on connection "Sim" and B1 on "Sim2", on SQLite or PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("clean_postgres_url")
        settings = settings.model_copy(update={"database_url": url})
    with open_context(settings) as ctx:
        write_profiles(ctx, tmp_path / "people.csv", people(3))
        create_segments(ctx)
        connect(ctx, sim, name="Sim")
        connect(ctx, sim, name="Sim2")
        make_export(ctx, name="A1", connection="Sim", list_prefix="a1 ")
        make_export(ctx, name="A2", connection="Sim", list_prefix="a2 ")
        make_export(ctx, name="B1", connection="Sim2", list_prefix="b1 ")
        ctx.profiles.close()
        yield ctx


def _finish(ctx: ServiceContext, claim: Claim) -> None:
    with ctx.db.session() as session:
        RunRepository(session).finish(
            claim.run.id, RunStatus.SUCCESSFUL, now=ctx.now(), message="done"
        )
    mark_active(claim.owner, False)


def _row(session: Session, run_id: int) -> Run:
    row = session.get(Run, run_id)
    assert row is not None
    return row


def _name(claim: Claim | None) -> str | None:
    return None if claim is None else claim.run.export_name


def test_one_run_per_connection_the_oldest_first(queue_ctx: ServiceContext) -> None:
    ctx = queue_ctx
    ids = {name: enqueue_run(ctx, name).run.id for name in ("A1", "A2", "B1")}

    first = claim_next(ctx)
    second = claim_next(ctx)
    assert (_name(first), _name(second)) == ("A1", "B1")  # A2 waits: Sim is busy with A1
    assert claim_next(ctx) is None
    assert claim_run(ctx, ids["A2"]) is None
    assert first is not None
    assert second is not None
    assert first.run.status is RunStatus.PROCESSING
    assert first.run.attempts == 1

    _finish(ctx, first)
    third = claim_next(ctx)
    assert _name(third) == "A2"
    assert third is not None
    assert not third.resumed


def test_dry_runs_neither_wait_nor_block(queue_ctx: ServiceContext) -> None:
    ctx = queue_ctx
    enqueue_run(ctx, "A1")
    dry = enqueue_run(ctx, "A2", dry_run=True).run
    assert _name(claim_next(ctx)) == "A1"
    claimed = claim_next(ctx)
    assert claimed is not None
    assert claimed.run.id == dry.id


def test_enqueue_reuses_the_queued_run_and_refuses_while_a_live_one_runs(
    queue_ctx: ServiceContext,
) -> None:
    ctx = queue_ctx
    queued = enqueue_run(ctx, "A1")
    again = enqueue_run(ctx, "A1")
    assert queued.created
    assert not again.created
    assert again.run.id == queued.run.id
    assert claim_next(ctx) is not None
    with pytest.raises(Conflict, match=rf"already in progress \(run {queued.run.id}\)"):
        enqueue_run(ctx, "A1")


def test_a_lapsed_lease_is_taken_over_and_the_run_resumes(queue_ctx: ServiceContext) -> None:
    ctx = queue_ctx
    run_id = enqueue_run(ctx, "A1").run.id
    with ctx.db.session() as session:  # held by a worker of another host, lease still valid
        RunRepository(session).claim_queued(
            run_id,
            owner="elsewhere:1:x",
            expires_at=ctx.now() + timedelta(seconds=60),
            now=ctx.now(),
        )
    enqueue_run(ctx, "A2")
    assert claim_next(ctx) is None  # A1 is live on Sim; A2 waits for it

    with ctx.db.session() as session:  # that worker died: its lease ran out
        _row(session, run_id).lease_expires_at = ctx.now() - timedelta(seconds=1)
    assert enqueue_run(ctx, "A1").run.id == run_id  # reused, not queued twice
    taken = claim_next(ctx)
    assert taken is not None
    assert taken.run.id == run_id
    assert taken.resumed
    assert taken.run.attempts == 2
    assert taken.run.lease_owner == taken.owner


def test_a_released_run_goes_back_to_the_queue_and_resumes(queue_ctx: ServiceContext) -> None:
    ctx = queue_ctx
    enqueue_run(ctx, "A1")
    claim = claim_next(ctx)
    assert claim is not None
    released = release_run(ctx, claim.run.id, owner=claim.owner)
    assert released.status is RunStatus.QUEUED
    assert released.lease_owner is None
    again = claim_next(ctx)
    assert again is not None
    assert again.run.id == claim.run.id
    assert again.resumed
    assert again.run.attempts == 2
    assert again.run.started_at == claim.run.started_at  # the first start is kept


def test_held_and_future_runs_are_not_claimed(queue_ctx: ServiceContext) -> None:
    ctx = queue_ctx
    held = enqueue_run(ctx, "A1").run.id
    later = enqueue_run(ctx, "B1").run.id
    with ctx.db.session() as session:  # the scheduler holds A1; B1 is due in 5 minutes
        row = _row(session, held)
        row.lease_owner = f"{HOLD_PREFIX}test"
        row.lease_expires_at = ctx.now() + timedelta(minutes=5)
        _row(session, later).due_at = ctx.now() + timedelta(minutes=5)
    assert claim_next(ctx) is None
    with ctx.db.session() as session:  # the scheduler releases its hold
        row = _row(session, held)
        row.lease_owner, row.lease_expires_at = None, None
    assert _name(claim_next(ctx)) == "A1"


def test_many_claimers_at_once_never_share_a_run_or_a_connection(
    queue_ctx: ServiceContext,
) -> None:
    ctx = queue_ctx
    with ctx.db.session() as session:
        repo = RunRepository(session)
        for round_ in range(4):
            for export_id, name, connection_id in ((1, "A1", 1), (2, "A2", 1), (3, "B1", 2)):
                repo.create(
                    export_id=export_id,
                    export_name=name,
                    connection_id=connection_id,
                    actor=f"t{round_}",
                    now=ctx.now(),
                )
    claims: list[Claim] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer() -> None:
        barrier.wait()
        for _ in range(3):
            got = claim_next(ctx)
            if got is not None:
                with lock:
                    claims.append(got)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Exactly one run per connection started, each claimed once.
    assert sorted(c.run.connection_id or 0 for c in claims) == [1, 2]
    assert len({c.run.id for c in claims}) == len(claims)
    with ctx.db.session() as session:
        statuses = Counter(run.status for run in RunRepository(session).list())
    assert statuses == {RunStatus.PROCESSING: 2, RunStatus.QUEUED: 10}


def test_a_claimed_run_starts_when_its_checks_passed_not_when_the_claim_began(
    queue_ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim may wait on the queue's locks (another claim, a run ending). Its run starts
    once the connection was found free, so its start never precedes the end of the run it
    waited for. The clock moves a second at every reading."""
    ticks = itertools.count()
    base = queue_ctx.now()
    ctx = dataclasses.replace(queue_ctx, now=lambda: base + timedelta(seconds=next(ticks)))
    enqueue_run(ctx, "A1")
    checked: list[datetime] = []
    free = RunQueueRepository.connection_busy

    def busy(self: RunQueueRepository, connection_id: int) -> bool:
        checked.append(ctx.now())
        return free(self, connection_id)

    monkeypatch.setattr(RunQueueRepository, "connection_busy", busy)
    claim = claim_next(ctx)

    assert claim is not None
    assert claim.run.started_at is not None
    assert checked
    assert claim.run.started_at > checked[-1]
