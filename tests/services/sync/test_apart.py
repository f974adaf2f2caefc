"""A first run's reading in a process of its own (services/sync/apart.py), against the simulator
over its ASGI app with real SQLite and DuckDB files and real forked processes: it sends, counts
and records what the reading thread does; it fails as the thread fails, or says how its process
ended; it is killed with the run that stops taking batches and with the run's process; and it
applies only where it may."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from segsync.cli.app import app
from segsync.domain.runs import RunStatus
from segsync.services.context import ServiceContext, open_context
from segsync.services.runs.queue import enqueue_run
from segsync.services.sync import apart
from segsync.services.sync import stream as stream_module
from segsync.services.sync.clean import Cleaner
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.stream import FirstRun
from segsync.services.sync.switching import attempt_settings
from segsync.services.sync.target import load_target
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord
from tests.cli.test_runs_cli import CLEAN_ENV
from tests.services.runs_support import (
    connect,
    contacts,
    create_segments,
    ctx,
    list_members,
    make_export,
    people,
    setup,
    sim,
    write_profiles,
)
from tests.services.sync.test_stream import (
    BOTH,
    NeverRead,
    OneAhead,
    _rejects,
    _state,
    crowd,
    second,
)
from tests.services.sync.test_stream import _run as run_export

__all__ = ["ctx", "second", "sim"]  # fixtures

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reading apart is Linux's")
DEADLINE = 60.0  # seconds a process is given to go: a bound, not a measure


class Forks:
    """The ids of the reading processes forked meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pids: list[int] = []
        real = os.fork

        def fork() -> int:
            pid = real()
            if pid:
                self.pids.append(pid)
            return pid

        monkeypatch.setattr(os, "fork", fork)  # the module forks through os


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Forks:
    return Forks(monkeypatch)


def _run(
    ctx: ServiceContext,
    sim: RunningSimulator,
    export: str,
    *,
    allowed: bool,
    parts: EngineParts | None = None,
) -> RunRecord:
    """The run, as `exports run` starts it (the profile file not held here); by default it
    must stream (never read and plan)."""
    ctx.close_profiles()
    with apart.allowed() if allowed else contextlib.nullcontext():
        return run_export(ctx, sim, export, parts or EngineParts(read=NeverRead()))


def _gone(pid: int) -> bool:
    """Whether the process was reaped (not a child of ours any more)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_a_first_run_read_apart_sends_counts_and_records_what_the_thread_does(
    ctx: ServiceContext,
    sim: RunningSimulator,
    second: RunningSimulator,
    tmp_path: Path,
    forks: Forks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many batches (most of them relayed to the spool, as it was written by the child), a
    contact in both segments counted once, merged and invalid profiles named alike."""
    monkeypatch.setattr(stream_module, "APART_AHEAD", 2)
    write_profiles(ctx, tmp_path / "people.csv", [*crowd(), *people(1_400, "ab", start=1_000)])
    create_segments(ctx)
    connect(ctx, sim)
    connect(ctx, second, name="Second")
    make_export(ctx, segments=BOTH)
    make_export(ctx, name="Thread", segments=BOTH, connection="Second")

    read_apart = _run(ctx, sim, "Newsletter", allowed=True)
    assert len(forks.pids) == 1
    assert _gone(forks.pids[0])
    threaded = _run(ctx, second, "Thread", allowed=False)
    assert len(forks.pids) == 1  # not allowed: read on the thread

    assert read_apart.status is threaded.status is RunStatus.SUCCESSFUL, read_apart.message
    assert read_apart.counts == threaded.counts
    assert read_apart.counts.added == 67 + 1_400  # each contact once, though in two segments
    assert read_apart.counts.requests == threaded.counts.requests > 25
    assert (read_apart.items_done, read_apart.items_total) == (
        threaded.items_done,
        threaded.items_total,
    )
    assert read_apart.message == threaded.message
    assert [{**e, "list_id": None} for e in read_apart.plan["lists"]] == [
        {**e, "list_id": None} for e in threaded.plan["lists"]
    ]
    assert _rejects(ctx, read_apart.id) == _rejects(ctx, threaded.id)
    assert list_members(sim) == list_members(second)
    assert set(contacts(sim)) == set(contacts(second))
    assert _state(ctx, 1) == _state(ctx, 2)
    assert not list(ctx.settings.data_dir.glob("segsync-batches-*"))


def test_batches_beyond_those_held_in_memory_wait_on_disk_as_the_reader_encoded_them(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, forks: Forks
) -> None:
    """With room for one batch in memory, the run's process puts the others on the spool as
    they came down the pipe; each comes back in turn, and nothing stays on disk."""
    setup(ctx, sim, tmp_path, people(950, "ab"), segments=BOTH)
    OneAhead.most_spooled = 0

    run = _run(
        ctx,
        sim,
        "Newsletter",
        allowed=True,
        parts=EngineParts(read=NeverRead(), first_run=OneAhead),
    )
    assert (run.status, run.counts.added) == (RunStatus.SUCCESSFUL, 950), run.message
    assert len(forks.pids) == 1
    assert OneAhead.most_spooled == 18  # all but the one in memory: nothing was taken
    assert all(len(members) == 950 for members in list_members(sim).values())
    assert not list(ctx.settings.data_dir.glob("segsync-batches-*"))


def test_the_commands_that_only_run_runs_read_apart_unless_the_setting_says_no(
    settings: Settings, sim: RunningSimulator, tmp_path: Path, forks: Forks
) -> None:
    """`exports run` and `worker` read a first run in a process of their own;
    ``SEGSYNC_READ_APART=false`` keeps it on a thread."""
    with open_context(settings) as ctx:
        setup(ctx, sim, tmp_path, people(50), segments=BOTH)
        make_export(ctx, name="Queued", segments=BOTH)
        make_export(ctx, name="Threaded", segments=BOTH)
    runner = CliRunner(env=CLEAN_ENV)

    def invoke(*args: str, env: dict[str, str] | None = None) -> None:
        done = runner.invoke(app, ["--data-dir", str(settings.data_dir), *args], env=env)
        assert done.exit_code == 0, done.output

    invoke("exports", "run", "Newsletter", "--json")
    assert len(forks.pids) == 1
    with open_context(settings) as ctx:
        enqueue_run(ctx, "Queued")
    invoke("worker", "--once", "--json")
    assert len(forks.pids) == 2
    invoke("exports", "run", "Threaded", "--json", env={"SEGSYNC_READ_APART": "false"})
    assert len(forks.pids) == 2
    assert all(_gone(pid) for pid in forks.pids)
    assert list_members(sim)["Seg A"] == {p.email for p in people(50)}


class Odd(Exception):
    """An error pickle cannot bring back (its constructor wants two arguments)."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error", "the row is bad"),
        ("odd", "Odd: bad at row"),
        ("killed", "the run's reading process ended by signal 9 before it had read every"),
    ],
)
def test_a_reading_process_that_fails_fails_the_run_and_loses_nothing(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    forks: Forks,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    message: str,
) -> None:
    """An error in the child comes back as itself (or as a FatalError with its text where it
    would not), a child killed is said so; the next run sends the rest."""
    crowd_ = people(600)
    setup(ctx, sim, tmp_path, crowd_)
    real_row = Cleaner.row
    seen = [0]

    def row(self: Cleaner, segment: str, values: dict[str, Any]) -> None:
        seen[0] += 1
        if seen[0] == 450:  # after some batches went
            if fault == "error":
                raise ValueError("the row is bad")
            if fault == "odd":
                raise Odd("bad", "row")
            os.kill(os.getpid(), signal.SIGKILL)
        real_row(self, segment, values)

    monkeypatch.setattr(Cleaner, "row", row)  # the child has it, forked after
    run = _run(ctx, sim, "Newsletter", allowed=True)
    assert run.status is RunStatus.FAILURE
    assert message in (run.message or "")
    assert len(forks.pids) == 1
    assert _gone(forks.pids[0])
    monkeypatch.setattr(Cleaner, "row", real_row)

    rest = _run(ctx, sim, "Newsletter", allowed=True, parts=EngineParts())  # read and planned
    assert rest.status is RunStatus.SUCCESSFUL, rest.message
    assert list_members(sim)["Seg A"] == {p.email for p in crowd_}
    assert len(_state(ctx, 1)[1]) == 600


def _target(ctx: ServiceContext) -> Any:
    with ctx.db.session() as session:
        record = ExportRepository(session).find_by_name("Newsletter")
        assert record is not None
        return load_target(session, record)


async def test_a_run_that_stops_taking_batches_kills_its_reading_process(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    forks: Forks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader that would never end (stuck in a row) is killed by close(), and the profile
    file is free again."""
    setup(ctx, sim, tmp_path, people(300))

    def stuck(self: Cleaner, segment: str, values: dict[str, Any]) -> None:
        signal.pause()  # in the child: until it is killed

    monkeypatch.setattr(Cleaner, "row", stuck)
    ctx.close_profiles()
    with apart.allowed(), attempt_settings():
        first = FirstRun(ctx, _target(ctx), frozenset(), 100)
        assert await first.start()
        assert await first.sorted()  # the child walks (and is stuck) now
        await asyncio.wait_for(first.close(), DEADLINE)
    assert len(forks.pids) == 1
    assert _gone(forks.pids[0])
    duckdb.connect(str(ctx.settings.data_dir / "profiles.duckdb")).close()  # not held


KILLED = """
import asyncio, signal, sys
from pathlib import Path
from segsync.services.context import open_context
from segsync.services.runs.queue import enqueue_run
from segsync.services.sync import apart
from segsync.services.sync.clean import Cleaner
from segsync.services.sync.stream import FirstRun
from segsync.settings import Settings
from tests.services.sync.test_apart import _target

def stuck(self, segment, values):
    print("reading", flush=True)
    signal.pause()

Cleaner.row = stuck

async def main():
    ctx = open_context(Settings(_env_file=None, data_dir=Path(sys.argv[1])))
    with apart.allowed():
        first = FirstRun(ctx, _target(ctx), frozenset(), 100)
        await first.start()
        await first.sorted()
        await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


def test_a_run_process_killed_outright_takes_its_reading_process_with_it(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """``kill -9`` of the run's process: Linux kills its reader (the parent-death signal), which
    lets go of the profile file for the next run."""
    setup(ctx, sim, tmp_path, people(300))
    ctx.close_profiles()
    run = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(ctx.settings.data_dir)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert run.stdout is not None
        assert run.stdout.readline() == b"reading\n"  # printed by the reading process
        tasks = Path(f"/proc/{run.pid}/task").glob("*/children")  # forked by a thread
        readers = [int(pid) for task in tasks for pid in task.read_text().split()]
        assert len(readers) == 1
    finally:
        run.kill()
        run.wait(timeout=DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while Path(f"/proc/{readers[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for its end, within a bound
    assert not Path(f"/proc/{readers[0]}").exists()
    duckdb.connect(str(ctx.settings.data_dir / "profiles.duckdb")).close()


def test_reading_apart_applies_only_where_it_may(ctx: ServiceContext) -> None:
    ctx.close_profiles()
    assert not apart.may_read_apart(ctx)  # a process that did not say it may
    with apart.allowed():
        assert apart.may_read_apart(ctx)
        with attempt_settings():
            assert apart.may_read_apart(ctx)  # this run alone
            with attempt_settings():
                assert not apart.may_read_apart(ctx)  # another run in the process
        off = ctx.settings.model_copy(update={"read_apart": False})
        assert not apart.may_read_apart(
            ServiceContext(settings=off, db=ctx.db, now=ctx.now, actor=ctx.actor)
        )
        ctx.profiles.list_tables()  # the profile engine open in this process
        assert not apart.may_read_apart(ctx)
    assert not apart.may_read_apart(ctx)
