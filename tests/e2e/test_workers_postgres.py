"""Two ``segsync worker`` processes share one PostgreSQL queue (``FOR UPDATE SKIP LOCKED``):
12 runs over 4 exports on 2 connections are each executed exactly once, never two at a time on
one connection, and Autopilot receives each export's contacts once."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from segsync.domain.runs import RunStatus
from segsync.services.context import open_context
from segsync.services.runs.worker import workers_alive
from segsync.settings import Settings
from segsync.simulator import SimulatorConfig, serve_in_thread
from segsync.storage.repositories.runs import RunRecord, RunRepository
from tests.services.runs_support import (
    API_KEY,
    connect,
    contacts,
    count,
    create_segments,
    make_export,
    people,
    stats,
    write_profiles,
)

EXPORTS = {"E1": "Sim", "E2": "Sim", "E3": "Sim2", "E4": "Sim2"}
RUNS_PER_EXPORT = 3
PEOPLE = 250  # 3 upsert batches per export's first run
WAIT_LIMIT = 60.0


def _worker(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    env["SEGSYNC_DATABASE_URL"] = url
    command = [sys.executable, "-m", "segsync", "--data-dir", str(settings.data_dir)]
    return subprocess.Popen(
        [*command, "worker", "--poll-interval", "0.05", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _overlap(runs: list[RunRecord]) -> bool:
    spans = sorted((r.started_at, r.ended_at) for r in runs if r.started_at and r.ended_at)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_two_worker_processes_execute_each_run_exactly_once(
    settings: Settings, clean_postgres_url: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"database_url": clean_postgres_url})
    config = SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=11)
    with serve_in_thread(config) as sim, open_context(settings) as ctx:
        write_profiles(ctx, tmp_path / "people.csv", people(PEOPLE))
        create_segments(ctx)
        connect(ctx, sim, name="Sim")
        connect(ctx, sim, name="Sim2")
        for name, connection in EXPORTS.items():
            make_export(ctx, name=name, connection=connection, list_prefix=f"{name} ")
        ctx.profiles.close()  # the workers share the DuckDB file
        sim.simulator.faults.set_latency(20)
        workers = [_worker(settings, clean_postgres_url) for _ in range(2)]
        try:
            deadline = time.monotonic() + WAIT_LIMIT
            while len(workers_alive(ctx)) < 2:  # both registered: now queue the work
                assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.02)
            with ctx.db.session() as session:
                repo = RunRepository(session)
                ids = [
                    repo.create(
                        export_id=export_id,
                        export_name=name,
                        connection_id=1 if EXPORTS[name] == "Sim" else 2,
                        actor="test",
                        now=ctx.now(),
                    ).id
                    for _ in range(RUNS_PER_EXPORT)
                    for export_id, name in enumerate(EXPORTS, start=1)
                ]
            while True:  # poll the queue until every run ended
                with ctx.db.session() as session:
                    history = RunRepository(session).list(limit=100)
                if all(run.status.is_final for run in history):
                    break
                assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
                assert time.monotonic() < deadline, [(r.id, r.status) for r in history]
                time.sleep(0.05)
        finally:
            outputs = []
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
                out, err = worker.communicate(timeout=WAIT_LIMIT)
                assert worker.returncode == 0, err.decode()
                outputs.append(json.loads(out))

        executed = [{record["id"] for record in output} for output in outputs]
        assert executed[0].isdisjoint(executed[1])  # no run executed by both
        assert executed[0] | executed[1] == set(ids)
        assert all(executed), "each worker took part"
        assert sorted(r.id for r in history) == sorted(ids)
        assert all(r.status is RunStatus.SUCCESSFUL and r.attempts == 1 for r in history)
        for connection_id in (1, 2):  # one run at a time per connection
            assert not _overlap([r for r in history if r.connection_id == connection_id])

        added = {name: 0 for name in EXPORTS}
        for run in history:
            added[run.export_name] += run.counts.added
        assert added == {name: PEOPLE for name in EXPORTS}  # each export's contacts sent once
        sim_stats = stats(sim)
        assert count(sim_stats, "POST /v1/contacts") == len(EXPORTS) * 3
        assert count(sim_stats, "POST /v1/list") == len(EXPORTS)
        assert len(contacts(sim)) == PEOPLE
