"""Workers execute queued runs: scheduled runs act as the export user (C3), cancel and export
removal stop a run after its batch in flight (X8, P2), a stopping worker puts its run back in
the queue for another to resume (X7), run ends notify (T4), ``exports run`` follows a worker or
runs the export itself, and processes share the profile DuckDB file."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from segsync.cli import app
from segsync.destinations.base import ConnectionConfig
from segsync.domain.plan import UpsertItem
from segsync.domain.runs import RunStatus
from segsync.errors import FatalError
from segsync.profiles.engine import ProfileEngine
from segsync.services import runs
from segsync.services.connections import ConnectionEdit, connection_id, edit_connection
from segsync.services.context import ServiceContext
from segsync.services.exports import export_id, remove_export
from segsync.services.notifications import list_notifications
from segsync.services.runs.background import BackgroundServices, PeriodicTask
from segsync.services.runs.queue import enqueue_run
from segsync.services.runs.worker import Worker, workers_alive
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.store import RunStore
from segsync.services.sync.tally import Changing, RunProgress
from segsync.services.users import add_user, set_role
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRecord, RunRepository
from tests.services.runs_support import (
    API_KEY,
    contacts,
    ctx,
    fast,
    list_members,
    people,
    setup,
    sim,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures

PEOPLE = 500
WAIT = 60  # seconds a step may take on a loaded machine before the test gives up


class _FirstUpsertHook(httpx.AsyncBaseTransport):
    """Calls ``hook`` once, just before the first contacts upsert is sent."""

    def __init__(self, hook: Callable[[], None]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hook: Callable[[], None] | None = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (
            self.hook is not None
            and request.method == "POST"
            and request.url.path.endswith("/contacts")
        ):
            hook, self.hook = self.hook, None
            hook()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _on_first_upsert(hook: Callable[[], None]) -> Callable[[ConnectionConfig], ConnectionConfig]:
    def tune(config: ConnectionConfig) -> ConnectionConfig:
        return dataclasses.replace(fast(config), transport=_FirstUpsertHook(hook))

    return tune


def _ready(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path) -> None:
    # 10 r/s: the client keeps at most 2 upserts in flight, so a stop lands mid-run.
    setup(ctx, sim, tmp_path, people(PEOPLE), rate_limit=10)


def _run(ctx: ServiceContext, run_id: int) -> RunRecord:
    with ctx.db.session() as session:
        return RunRepository(session).get(run_id)


def test_a_worker_executes_queued_runs_and_their_failures_notify_once(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30))
    worker = Worker(ctx, tune=fast)
    first = enqueue_run(ctx, "Newsletter").run
    assert worker.run_once() is not None
    assert worker.run_once() is None  # the queue is empty
    assert _run(ctx, first.id).status is RunStatus.SUCCESSFUL
    assert len(contacts(sim)) == 30
    assert list_notifications(ctx) == []  # a first success has nothing to recover from

    write_profiles(ctx, tmp_path / "more.csv", people(31))  # someone new to send
    sim.simulator.faults.revoke_key(API_KEY)
    failed = enqueue_run(ctx, "Newsletter").run
    record = worker.run_once()
    assert record is not None
    assert record.id == failed.id
    assert record.status is RunStatus.FAILURE
    (notice,) = list_notifications(ctx)
    assert notice.run_id == failed.id
    assert notice.kind == "export_failed"


def test_a_scheduled_run_fails_when_its_export_user_is_no_longer_an_administrator(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    add_user(ctx, "ann@example.com", "administrator")
    add_user(ctx, "bob@example.com", "administrator")
    ann = ConnectionEdit(export_user_email="ann@example.com")
    edit_connection(ctx, connection_id(ctx, "Sim"), ann)
    set_role(ctx, "ann@example.com", "contributor")
    with ctx.db.session() as session:
        run = RunRepository(session).create(
            export_id=1,
            export_name="Newsletter",
            connection_id=1,
            actor="scheduler",
            now=ctx.now(),
            trigger="scheduled",
        )

    record = Worker(ctx, tune=fast).run_once()

    assert record is not None
    assert record.id == run.id
    assert record.status is RunStatus.FAILURE
    assert record.message is not None
    assert "ann@example.com" in record.message
    assert "no longer an administrator" in record.message
    assert contacts(sim) == {}


def _stop_mid_run(ctx: ServiceContext, sim: RunningSimulator, stop: Callable[[], None]) -> Any:
    """Run the export on a worker; just before the first batch leaves, ``stop()`` asks the run
    to stop; the simulator then holds the batches in flight until the engine has seen it
    (its heartbeat beats every 50 ms here), so the batches that follow never start."""

    seen = threading.Event()

    class Sees(RunStore):
        async def heartbeat(self) -> None:
            await super().heartbeat()
            if self.cancel_requested:
                seen.set()

        async def intend(self, items: Sequence[UpsertItem], changing: Changing = ()) -> int | None:
            intent = await super().intend(items, changing)  # a removed export is seen here too
            if self.cancel_requested:
                seen.set()
            return intent

    sim.simulator.faults.hold_after_writes(2)  # the list and the first batch, then hold
    parts = EngineParts(store=Sees, lease_seconds=0.2)
    worker = Worker(ctx, tune=_on_first_upsert(stop), parts=parts)
    ended: list[RunRecord | None] = []
    thread = threading.Thread(target=lambda: ended.append(worker.run_once()))
    thread.start()
    try:
        assert seen.wait(WAIT)
    finally:
        sim.simulator.faults.hold_after_writes(None)
        thread.join(WAIT)
    (record,) = ended
    return record


def test_cancel_a_queued_run_at_once_and_a_processing_one_after_its_batch(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    _ready(ctx, sim, tmp_path)
    queued = enqueue_run(ctx, "Newsletter").run
    assert runs.cancel_run(ctx, queued.id).status is RunStatus.CANCELED
    assert Worker(ctx, tune=fast).run_once() is None

    running = enqueue_run(ctx, "Newsletter").run
    record = _stop_mid_run(ctx, sim, lambda: runs.cancel_run(ctx, running.id))

    assert record is not None
    assert record.status is RunStatus.CANCELED
    assert record.message is not None
    assert record.message.startswith("canceled")
    assert 0 < record.counts.added < PEOPLE
    assert len(contacts(sim)) == record.counts.added  # what was sent is what was saved


def test_removing_the_export_stops_its_run_after_the_batch_in_flight(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    _ready(ctx, sim, tmp_path)
    run = enqueue_run(ctx, "Newsletter").run
    newsletter = export_id(ctx, "Newsletter")

    record = _stop_mid_run(ctx, sim, lambda: remove_export(ctx, newsletter))

    assert record is not None
    assert record.id == run.id
    assert record.status is RunStatus.CANCELED
    assert record.message == "stopped: the export was removed; nothing more was sent"
    assert 0 < len(contacts(sim)) < PEOPLE
    # Progress agrees with the counts: every contact counted as added is an item done.
    assert record.items_done == record.counts.added


def test_a_stopping_worker_puts_its_run_back_and_another_resumes_it_exactly(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    _ready(ctx, sim, tmp_path)
    run = enqueue_run(ctx, "Newsletter").run
    stopping = Worker(ctx)
    stopping.tune = _on_first_upsert(stopping.stop)  # SIGTERM arrives mid-run

    released = stopping.run_once()

    assert released is not None
    assert released.id == run.id
    assert released.status is RunStatus.QUEUED
    assert released.lease_owner is None
    assert 0 < released.items_done < PEOPLE
    finished = Worker(ctx, tune=fast).run_once()
    assert finished is not None
    assert finished.id == run.id
    assert finished.status is RunStatus.SUCCESSFUL
    assert finished.attempts == 2
    assert finished.counts.added == PEOPLE
    assert finished.items_done == PEOPLE
    snapshot = sim.simulator.contacts_snapshot()
    assert len(snapshot) == PEOPLE == len({c["Email"] for c in snapshot})
    assert list_members(sim) == {"Seg A": {f"p{i}@example.com" for i in range(1, PEOPLE + 1)}}


def test_exports_run_follows_the_run_a_worker_executes(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(250))
    worker = Worker(ctx, poll_interval=0.01, tune=fast)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        tick = threading.Event()
        while not workers_alive(ctx):  # registered as its first act
            tick.wait(0.005)
        events: list[RunProgress] = []
        record = runs.run_export(ctx, "Newsletter", progress=events.append, sleep=tick.wait)
    finally:
        worker.stop()
        thread.join()

    assert record.status is RunStatus.SUCCESSFUL
    assert record.counts.added == 250
    assert [r.id for r in worker.executed] == [record.id]  # the worker ran it, not the caller
    assert events[-1].phase == "done"
    assert events[-1].items_done == 250
    assert {e.phase for e in events} <= {"queued", "reading", "sending", "done"}
    assert workers_alive(ctx) == []  # it unregistered when it stopped


def test_exports_run_with_no_worker_alive_runs_the_export_itself(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(150))
    assert workers_alive(ctx) == []
    events: list[RunProgress] = []

    record = runs.run_export(ctx, "Newsletter", progress=events.append, tune=fast)

    assert record.status is RunStatus.SUCCESSFUL
    assert record.counts.added == 150
    phases = [e.phase for e in events]
    assert "lists" in phases
    assert "queued" not in phases


def test_segsync_worker_once_executes_what_is_queued(
    settings: Settings, ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(20))
    run = enqueue_run(ctx, "Newsletter").run
    ctx.profiles.close()  # as a separate command would find it
    result = CliRunner(env={"SEGSYNC_DATABASE_URL": None}).invoke(
        app, ["--data-dir", str(settings.data_dir), "worker", "--once", "--json"]
    )
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert record["id"] == run.id
    assert record["status"] == "successful"
    assert len(contacts(sim)) == 20


_HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
con.close()
"""


def test_a_duckdb_file_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "profiles.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FatalError, match="held by another process"):
            ProfileEngine.connect(f"duckdb://{path}", lock_wait=0.1, sleep=lambda _: None)
        waits: list[float] = []

        def release_on_first_wait(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 1:  # the other process finishes its work and lets go
                assert holder.stdin is not None
                holder.stdin.write("done\n")
                holder.stdin.flush()
                holder.wait(timeout=30)

        engine = ProfileEngine.connect(f"duckdb://{path}", sleep=release_on_first_wait)
        engine.close()
        assert len(waits) == 1
    finally:
        holder.kill()
        holder.wait()


def test_background_services_run_periodic_tasks_and_a_worker_until_stopped(
    settings: Settings, ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(40))
    ctx.profiles.close()
    calls: list[str] = []
    failing = PeriodicTask("broken", lambda _ctx: 1 / 0, every=3600)
    counting = PeriodicTask("count", lambda task_ctx: calls.append(task_ctx.actor.email), 3600)
    background = BackgroundServices(
        settings, tasks=[failing, counting], poll_interval=0.01, tune=fast
    )
    with background:
        run = enqueue_run(ctx, "Newsletter").run
        tick = threading.Event()
        while not _run(ctx, run.id).status.is_final:
            tick.wait(0.01)
    assert _run(ctx, run.id).status is RunStatus.SUCCESSFUL
    assert [r.id for r in background.workers[0].executed] == [run.id]
    assert calls == ["local-admin"]  # once at start; the next is an hour away
    assert background.task_errors == {"broken": "ZeroDivisionError: division by zero"}


def test_periodic_tasks_run_when_due_by_the_injected_clock(settings: Settings) -> None:
    clock = [100.0]
    calls: list[str] = []
    tasks = [
        PeriodicTask("fast", lambda _ctx: calls.append("fast"), every=10),
        PeriodicTask("slow", lambda _ctx: calls.append("slow"), every=60),
    ]
    background = BackgroundServices(settings, tasks=tasks, workers=0, monotonic=lambda: clock[0])
    next_due: dict[str, float] = {}
    try:
        assert background.run_due_tasks(next_due) == 10
        clock[0] += 10
        assert background.run_due_tasks(next_due) == 10
        clock[0] += 50
        background.run_due_tasks(next_due)
    finally:
        background.stop()
    assert calls == ["fast", "slow", "fast", "fast", "slow"]
