"""Run use cases: resuming an interrupted run, refusing a second live one, cancel, rejects CSV,
permissions, detached exports, the JSON run record (X1, X7, X8, X10, R2, C7)."""

from __future__ import annotations

import csv
import dataclasses
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from segsync.domain.permissions import Actor, Role
from segsync.domain.runs import RunStatus
from segsync.errors import Conflict, InputError, PermissionDenied
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.exports import detach_export, export_id
from segsync.services.sync.lease import mark_active
from segsync.services.sync.tally import RunProgress
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRepository
from tests.services.runs_support import (
    Person,
    contacts,
    count,
    ctx,
    people,
    reset_stats,
    setup,
    sim,
    stats,
)

__all__ = ["ctx", "sim"]  # fixtures

UPSERT = "POST /v1/contacts"


class _Crash(BaseException):
    """Stands for the process dying: nothing in the engine handles it."""


def test_an_interrupted_run_resumes_as_the_same_run_sending_only_the_rest(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(1000), rate_limit=10)

    def crash_after_three_batches(event: RunProgress) -> None:
        if event.phase == "sending" and event.items_done >= 300:
            raise _Crash

    with pytest.raises(_Crash):
        runs.run_export(ctx, "Newsletter", progress=crash_after_three_batches)
    (interrupted,) = runs.list_runs(ctx)
    assert interrupted.status is RunStatus.PROCESSING
    done_before = interrupted.items_done
    assert 300 <= done_before < 1000
    reset_stats(sim)

    started = runs.start_run(ctx, "Newsletter")
    assert started.resumed
    assert started.run.id == interrupted.id
    finished = runs.execute_started(ctx, started)

    assert finished.id == interrupted.id
    assert finished.attempts == 2
    assert finished.status is RunStatus.SUCCESSFUL
    assert finished.counts.added == 1000  # accumulated across both attempts
    assert finished.items_done == 1000
    remaining_batches = (1000 - done_before) // 100
    # At 10 r/s the client keeps 2 requests in flight: those are all it may send again.
    assert count(stats(sim), UPSERT) <= remaining_batches + 2
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == 1000 == len({c["Email"] for c in snapshot})
    assert len(runs.list_runs(ctx)) == 1


def _hold(ctx: ServiceContext, owner: str, *, expires_in: float) -> int:
    started = runs.start_run(ctx, "Newsletter")
    with ctx.db.session() as session:
        repo = RunRepository(session)
        assert repo.claim(
            started.run.id,
            previous_owner=started.owner,
            owner=owner,
            expires_at=ctx.now() + timedelta(seconds=expires_in),
        )
    return started.run.id


def test_a_run_held_by_a_live_process_is_refused(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    owner = f"{socket.gethostname()}:{__import__('os').getpid()}:live"
    mark_active(owner, True)
    try:
        run_id = _hold(ctx, owner, expires_in=60)
        with pytest.raises(Conflict, match=rf"already in progress \(run {run_id}\)"):
            runs.run_export(ctx, "Newsletter")
    finally:
        mark_active(owner, False)
    # Once its holder is gone, the same run is resumed.
    assert runs.run_export(ctx, "Newsletter").id == run_id


def test_a_run_of_another_host_is_resumed_only_after_its_lease_expired(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    run_id = _hold(ctx, "elsewhere:123:abc", expires_in=60)
    with pytest.raises(Conflict):
        runs.run_export(ctx, "Newsletter")
    with ctx.db.session() as session:
        RunRepository(session).claim(
            run_id,
            previous_owner="elsewhere:123:abc",
            owner="elsewhere:123:abc",
            expires_at=ctx.now() - timedelta(seconds=1),
        )
    resumed = runs.run_export(ctx, "Newsletter")
    assert resumed.id == run_id
    assert resumed.status is RunStatus.SUCCESSFUL
    assert len(contacts(sim)) == 5


def test_cancel_a_queued_run_at_once_and_refuse_to_cancel_an_ended_one(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    with ctx.db.session() as session:
        queued = RunRepository(session).create(
            export_id=1, export_name="Newsletter", connection_id=1, actor="x", now=ctx.now()
        )
    assert runs.cancel_run(ctx, queued.id).status is RunStatus.CANCELED
    with pytest.raises(Conflict, match="already ended"):
        runs.cancel_run(ctx, queued.id)


def test_a_queued_run_is_claimed_by_the_next_run_of_its_export(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    with ctx.db.session() as session:
        queued = RunRepository(session).create(
            export_id=1, export_name="Newsletter", connection_id=1, actor="x", now=ctx.now()
        )
    run = runs.run_export(ctx, "Newsletter")
    assert run.id == queued.id
    assert run.status is RunStatus.SUCCESSFUL


def test_rejects_are_written_as_csv_with_reasons(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, [*people(3), Person(8, "broken@"), Person(9, None)])
    sim.simulator.faults.reject_emails(r"^p2@")
    run = runs.run_export(ctx, "Newsletter")

    written = runs.write_rejects_csv(ctx, run.id, tmp_path / "out" / "rejects.csv")

    with (tmp_path / "out" / "rejects.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert written == 3 == len(rows)
    assert list(rows[0]) == ["email", "profile_id", "kind", "reason"]
    by_kind = {(row["kind"], row["email"]): row for row in rows}
    assert by_kind[("invalid", "broken@")]["profile_id"] == "8"
    assert by_kind[("invalid", "")]["reason"] == "empty"
    assert "p2@example.com" in by_kind[("rejected", "p2@example.com")]["reason"]


def test_viewers_may_not_run_and_detached_exports_do_not_run(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    viewer = dataclasses.replace(ctx, actor=Actor(user_id=9, email="v@x.org", role=Role.VIEWER))
    with pytest.raises(PermissionDenied, match="viewers"):
        runs.run_export(viewer, "Newsletter")
    with pytest.raises(PermissionDenied):
        runs.cancel_run(viewer, runs.run_export(ctx, "Newsletter", dry_run=True).id)
    detach_export(ctx, export_id(ctx, "Newsletter"))
    reset_stats(sim)
    with pytest.raises(InputError, match="has no connection; attach one with `segsync exports"):
        runs.run_export(ctx, "Newsletter")
    assert stats(sim)["total"] == 0


def test_the_run_record_has_the_shape_of_spec(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    record = runs.run_json(runs.run_export(ctx, "Newsletter"))
    assert set(record) == {"id", "status", "counts", "started_at", "ended_at", "message"}
    assert set(record["counts"]) == {
        "members",
        "invalid",
        "duplicates",
        "added",
        "updated",
        "unchanged",
        "removed",
        "rejected",
        "requests",
    }
    assert record["status"] == "successful"
    assert record["ended_at"].endswith("Z")
