"""A first run's reading in a process of its own (services/sync/apart.py), with real processes:
``segsync exports run`` in a process of its own (a reading process is forked only while its
process has one thread, which a pytest process has not), against the simulator behind the
session's loopback server, on real SQLite and DuckDB files. It sends, counts and records what
the reading thread does; it fails as the thread fails, or says how its process ended; where the
process says nothing, or the run's SQL was not kept, the run reads on its thread; the reading
process is killed with a run that stops taking batches and with the run's process; and it
applies only where it may."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from segsync.domain.runs import RunStatus
from segsync.services.context import ServiceContext
from segsync.services.sync import apart
from segsync.services.sync.apart import Standby
from segsync.services.sync.switching import attempt_settings
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRecord, RunRepository
from segsync.storage.repositories.segments import SegmentRepository
from tests.services.runs_support import (
    connect,
    contacts,
    count,
    create_segments,
    ctx,
    list_members,
    make_export,
    people,
    setup,
    sim,
    stats,
    write_profiles,
)
from tests.services.sync.test_stream import BOTH, _rejects, _state, crowd
from tests.services.test_connection_account import other_account

__all__ = ["ctx", "other_account", "sim"]  # fixtures

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reading apart is Linux's")
DEADLINE = 180.0  # seconds a process is given: a bound, not a measure
ROOT = Path(__file__).resolve().parents[3]

RUNNER = """
import json, os, sys
from pathlib import Path
from segsync.services.sync import apart, stream

seen = {"forks": [], "read_by": [], "spooled": 0, "unreaped": []}
fork, close, batch = os.fork, stream.FirstRun.close, stream.FirstRun.batch

def counted():
    pid = fork()
    if pid:
        seen["forks"].append(pid)
    return pid

async def closed(self):
    await close(self)
    seen["read_by"].append(self.read_by)

def batched(self, got):
    batch(self, got)
    seen["spooled"] = max(seen["spooled"], self._spool.held)

def reaped(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False

os.fork, stream.FirstRun.close, stream.FirstRun.batch = counted, closed, batched
exec(sys.argv[2])  # the test's own changes, before anything is forked
from segsync.cli.app import app
try:
    app(sys.argv[3:], prog_name="segsync")
finally:
    seen["unreaped"] = [pid for pid in seen["forks"] if not reaped(pid)]
    Path(sys.argv[1]).write_text(json.dumps(seen))
"""


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    return {**env, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200", **more}


class Done:
    """A ``segsync`` command run in a process of its own: its exit code, output, the run it
    printed, and what the runner saw (forks, who read, the most batches spooled)."""

    def __init__(self, done: subprocess.CompletedProcess[str], seen: dict[str, Any]) -> None:
        self.code, self.stderr = done.returncode, done.stderr
        self.record = json.loads(done.stdout) if done.stdout.strip() else {}
        self.forks: list[int] = seen["forks"]
        self.read_by: list[int | None] = seen["read_by"]
        self.spooled: int = seen["spooled"]
        assert seen["unreaped"] == [], "a reading process was left unreaped"


def segsync(
    ctx: ServiceContext, *args: str, changes: str = "", env: dict[str, str] | None = None
) -> Done:
    """``segsync --data-dir D ARGS`` in a process of its own, ``changes`` (Python) made in it
    first — in the reading process too, which is forked after."""
    seen = ctx.settings.data_dir.parent / f"seen-{time.monotonic_ns()}.json"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(seen), textwrap.dedent(changes),
         "--data-dir", str(ctx.settings.data_dir), *args],
        capture_output=True, text=True, env=env or _env(), cwd=ctx.settings.data_dir.parent,
        timeout=DEADLINE, check=False,
    )  # fmt: skip
    return Done(done, json.loads(seen.read_text()))


def _record(ctx: ServiceContext, done: Done) -> RunRecord:
    with ctx.db.session() as session:
        return RunRepository(session).get(done.record["id"])


TWO_AHEAD = """
import asyncio
stream.APART_AHEAD = 2  # batches held in memory: the others wait on the spool
take = stream.FirstRun.take

async def after_reading(self, most):  # the first take waits for reading to end
    if not getattr(self, "waited", False):
        self.waited = True
        await asyncio.wait_for(asyncio.to_thread(self._thread.join), 120)
    return await take(self, most)

stream.FirstRun.take = after_reading
"""


def test_a_first_run_read_apart_sends_counts_and_records_what_the_thread_does(
    ctx: ServiceContext, sim: RunningSimulator, other_account: RunningSimulator, tmp_path: Path
) -> None:
    """Many batches (most of them relayed to the spool, as the reading process encoded them),
    a contact in both segments counted once, merged and invalid profiles named alike; the
    same export's first run on the thread (``SEGSYNC_READ_APART=false``) records the same."""
    write_profiles(ctx, tmp_path / "people.csv", [*crowd(), *people(1_400, "ab", start=1_000)])
    create_segments(ctx)
    connect(ctx, sim)
    second = other_account  # a server of its own: the session's serves one simulator at a time
    connect(ctx, second, name="Second")
    make_export(ctx, segments=BOTH)
    make_export(ctx, name="Thread", segments=BOTH, connection="Second")
    ctx.close_profiles()  # the profile file is not held here

    apart_ = segsync(ctx, "exports", "run", "Newsletter", "--json", changes=TWO_AHEAD)
    assert apart_.code == 0, apart_.stderr
    assert len(apart_.forks) == 1
    assert apart_.read_by == apart_.forks  # the reading process read every member
    batches = count(stats(sim), "POST /v1/contacts")
    assert apart_.spooled == batches - 2 > 25  # all but the two in memory: nothing was taken
    threaded = segsync(
        ctx, "exports", "run", "Thread", "--json", env=_env(SEGSYNC_READ_APART="false")
    )
    assert threaded.code == 0, threaded.stderr
    assert (threaded.forks, threaded.read_by) == ([], [None])
    assert "reading process" not in apart_.stderr + threaded.stderr  # no warning

    read_apart, on_thread = _record(ctx, apart_), _record(ctx, threaded)
    assert read_apart.status is on_thread.status is RunStatus.SUCCESSFUL, read_apart.message
    assert read_apart.counts == on_thread.counts
    assert read_apart.counts.added == 67 + 1_400  # each contact once, though in two segments
    assert read_apart.counts.requests == on_thread.counts.requests > 25
    assert (read_apart.items_done, read_apart.items_total) == (
        on_thread.items_done,
        on_thread.items_total,
    )
    assert read_apart.message == on_thread.message
    assert read_apart.plan is not None
    assert on_thread.plan is not None
    assert [{**e, "list_id": None} for e in read_apart.plan["lists"]] == [
        {**e, "list_id": None} for e in on_thread.plan["lists"]
    ]
    assert _rejects(ctx, read_apart.id) == _rejects(ctx, on_thread.id)
    assert list_members(sim) == list_members(second)
    assert set(contacts(sim)) == set(contacts(second))
    assert _state(ctx, 1) == _state(ctx, 2)
    assert not list(ctx.settings.data_dir.glob("segsync-batches-*"))


_WORKER_PEOPLE = people(50, "ab")
_BOTH_EXPORTS_FULL = dict.fromkeys(
    ("Seg A", "Seg B", "Other Seg A", "Other Seg B"), frozenset(p.email for p in _WORKER_PEOPLE)
)
"""Every list of the two exports :func:`_worker_two_first_runs` runs, with every person."""


def _worker_two_first_runs(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, changes: str = ""
) -> Done:
    """Two exports' first runs queued (``Newsletter`` and ``Other``, both segments each), then
    ``segsync worker --once`` in its own process (with ``changes`` run in it first)."""
    setup(ctx, sim, tmp_path, _WORKER_PEOPLE, segments=BOTH)
    make_export(ctx, name="Other", segments=BOTH, list_prefix="Other ")
    from segsync.services.runs.queue import enqueue_run

    enqueue_run(ctx, "Newsletter")
    enqueue_run(ctx, "Other")
    ctx.close_profiles()
    return segsync(ctx, "worker", "--once", "--json", changes=changes)


def test_a_worker_reads_each_first_run_in_a_process_forked_by_its_server(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A worker has threads once it runs: it forks a server first (one fork in its own
    process), which forks a reading process for each first run, one after the other."""
    done = _worker_two_first_runs(ctx, sim, tmp_path)
    assert done.code == 0, done.stderr
    assert len(done.forks) == 1  # the server
    assert len(set(done.read_by)) == 2  # two reading processes, the server's children
    assert not set(done.read_by) & {None, *done.forks}
    assert "reading process" not in done.stderr
    assert list_members(sim) == _BOTH_EXPORTS_FULL
    assert done.stderr.count("read on a thread") == 0


SILENT_ONCE = """
import signal
from pathlib import Path
from segsync.services.sync import reading_process as rp

real_read, real_work, reads = apart.Reader.read, rp._work, []

def read(self, first):  # a short bound for the first run only: the next one's reader answers
    apart.ANSWER_WITHIN = 0.5 if not reads else 120.0  # in its own time, on a busy machine too
    reads.append(first)
    return real_read(self, first)

apart.Reader.read = read

def work(job, outlet):  # the first reading process says nothing; the next ones read
    flag = Path(job.settings.data_dir) / "silent-once"
    if not flag.exists():
        flag.write_text("")
        signal.pause()
    real_work(job, outlet)

rp._work = work
"""


def test_a_worker_whose_reading_process_says_nothing_reads_on_its_thread_then_apart_again(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The server's reading process that says nothing is killed (by its pidfd) and reaped by
    the server; that run reads on its thread, and the next first run reads apart again."""
    done = _worker_two_first_runs(ctx, sim, tmp_path, changes=SILENT_ONCE)
    assert done.code == 0, done.stderr
    assert len(done.forks) == 1  # the server
    assert done.read_by[0] is None
    assert done.read_by[1] not in (None, *done.forks)
    assert "did not answer within 0.5 s; read on a thread instead" in " ".join(done.stderr.split())
    assert list_members(sim) == _BOTH_EXPORTS_FULL


DEAF_SERVER = """
import signal
from segsync.services.sync import reading_server

def deaf(sock, parent):  # takes the pipe ends, never answers; killed when the worker ends
    signal.pause()

reading_server._serve = deaf
reading_server.ANSWER_WITHIN = 0.5
"""


def test_a_worker_whose_server_does_not_answer_reads_its_first_runs_on_their_thread(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A server that does not answer in time is killed (what it would send later would not
    be the next run's answer); that run and the worker's later first runs read on their
    thread, every member once."""
    done = _worker_two_first_runs(ctx, sim, tmp_path, changes=DEAF_SERVER)
    assert done.code == 0, done.stderr
    assert (len(done.forks), done.read_by) == (1, [None, None])
    said = " ".join(done.stderr.split())
    assert said.count("could not be handed its job (timed out); read on a thread") == 1
    assert said.count("read on a thread instead") == 1  # the later run never asks again
    assert list_members(sim) == _BOTH_EXPORTS_FULL


FAULTS = {
    "error": "raise ValueError('the row is bad')",
    "odd": "raise Odd('bad', 'row')",
    "killed": "os.kill(os.getpid(), 9)",
}
FAULTY_ROW = """
from segsync.services.sync.clean import Cleaner

class Odd(Exception):  # pickle cannot bring it back: its constructor wants two arguments
    def __init__(self, what, where):
        super().__init__(f"{what} at {where}")

real_row, rows = Cleaner.row, [0]

def row(self, segment, values):
    rows[0] += 1
    if rows[0] == 450:  # after some batches went
        FAULT
    real_row(self, segment, values)

Cleaner.row = row  # only the reading process cleans rows
"""


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error", "the row is bad"),
        ("odd", "Odd: bad at row"),
        ("killed", "the run's reading process ended by signal 9 before it had read every"),
    ],
)
def test_a_reading_process_that_fails_fails_the_run_and_loses_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, fault: str, message: str
) -> None:
    """An error in the reading process comes back as itself (or as a FatalError with its text
    where it would not), a process killed is said so; the next run sends the rest."""
    crowd_ = people(600)
    setup(ctx, sim, tmp_path, crowd_)
    ctx.close_profiles()
    failed = segsync(
        ctx, "exports", "run", "Newsletter", "--json",
        changes=FAULTY_ROW.replace("FAULT", FAULTS[fault]),
    )  # fmt: skip
    assert failed.code == 1, failed.stderr
    assert len(failed.forks) == 1
    run = _record(ctx, failed)
    assert run.status is RunStatus.FAILURE
    assert message in (run.message or "")
    assert run.counts.requests > 0  # some batches went before

    rest = segsync(ctx, "exports", "run", "Newsletter", "--json")  # read and planned
    assert rest.code == 0, rest.stderr
    assert _record(ctx, rest).status is RunStatus.SUCCESSFUL
    assert list_members(sim)["Seg A"] == {p.email for p in crowd_}
    assert len(_state(ctx, 1)[1]) == 600


@pytest.mark.parametrize(
    ("case", "changes", "warning"),
    [
        (
            "silent",
            "import signal\nfrom segsync.services.sync import reading_process as rp\n"
            "apart.ANSWER_WITHIN = 0.5\nrp._work = lambda *_: signal.pause()",
            "the reading process did not answer within 0.5 s; read on a thread instead",
        ),
        (
            "ended",
            "from segsync.services.sync import reading_process as rp\n"
            "rp._work = lambda *_: os._exit(3)",
            "the reading process ended with exit code 3 without a word; read on a thread",
        ),
        ("not kept", "", ""),
        (
            "no fork",
            "def refused():\n    raise OSError(11, 'Resource temporarily unavailable')\n"
            "os.fork = refused",
            "no reading process ([Errno 11] Resource temporarily unavailable): a first run reads",
        ),
    ],
)
def test_where_the_reading_process_cannot_read_the_run_reads_on_its_thread(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    case: str,
    changes: str,
    warning: str,
) -> None:
    """A reading process that says nothing (killed once the bound passed) or ends without a
    word, a run whose stream SQL was not kept (compiling may read the metadata DB, which the
    reading process never opens), or a system that refuses the fork: nothing was handed out, so
    the run reads on its thread — every member, once."""
    crowd_ = people(400, "ab")
    setup(ctx, sim, tmp_path, crowd_, segments=BOTH)
    ctx.close_profiles()
    kept = ctx.settings.data_dir / "cache" / "run-sql"
    if case == "not kept":
        for path in kept.glob("*.json"):
            path.unlink()
    done = segsync(ctx, "exports", "run", "Newsletter", "--json", changes=changes)
    assert done.code == 0, done.stderr
    assert (len(done.forks), done.read_by) == ((case != "no fork"), [None])
    assert warning in " ".join(done.stderr.split())
    run = _record(ctx, done)
    assert (run.status, run.counts.added) == (RunStatus.SUCCESSFUL, 400), run.message
    assert all(members == {p.email for p in crowd_} for members in list_members(sim).values())
    assert list(kept.glob("*.json"))  # compiled and kept on the thread where it was not


def test_a_first_run_on_a_relative_rule_is_compiled_here_and_read_apart(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A segment anchored on the run's moment (``within_last``) has its query compiled on every
    run, and compiling may read the metadata DB: the run's process compiles it and hands it
    over with the job, and the reading process reads with it."""
    crowd_ = people(300)
    setup(ctx, sim, tmp_path, crowd_)
    ctx.profiles.backend.raw_sql("ALTER TABLE people ADD COLUMN Since DATE DEFAULT current_date")
    recent = {"attribute": "Since", "op": "within_last", "value": {"days": 30}}
    definition = json.dumps({"name": "Recent", "rules": [{"conditions": {"all": [recent]}}]})
    with ctx.db.session() as session:
        SegmentRepository(session).create(name="Recent", definition=definition, now=ctx.now())
    make_export(ctx, name="Recent", segments=("Recent",))
    ctx.close_profiles()

    done = segsync(ctx, "exports", "run", "Recent", "--json")
    assert done.code == 0, done.stderr
    assert len(done.forks) == 1
    assert done.read_by == done.forks  # read apart, with the query compiled here
    assert "reading process" not in done.stderr
    run = _record(ctx, done)
    assert (run.status, run.counts.added) == (RunStatus.SUCCESSFUL, 300), run.message
    assert list_members(sim)["Recent"] == {p.email for p in crowd_}


STOPPED = """
import asyncio, json, os, signal, sys
from pathlib import Path  # (nothing that starts a thread before the fork: not DuckDB)
from segsync.services.context import open_context
from segsync.services.sync import apart
from segsync.services.sync.clean import Cleaner
from segsync.services.sync.stream import FirstRun
from segsync.services.sync.switching import attempt_settings
from segsync.services.sync.target import load_target
from segsync.settings import Settings
from segsync.storage.repositories.exports import ExportRepository

def target_of(ctx):
    with ctx.db.session() as session:
        return load_target(session, ExportRepository(session).find_by_name("Newsletter"))

SEEN = Path(sys.argv[1]).parent / "reader.pid"

def stuck(self, segment, values):
    SEEN.with_suffix(".part").write_text(str(os.getpid()))
    SEEN.with_suffix(".part").rename(SEEN)  # whole, once there
    os.write(1, b"reading %d\\n" % os.getpid())  # one write: it may be killed right after
    signal.pause()  # in the reading process: until it is killed

Cleaner.row = stuck

async def main(ctx, made):
    with attempt_settings():
        first = FirstRun(ctx, target_of(ctx), frozenset(), 100)
        assert first.apart is made
        assert await first.start()
        assert await first.sorted()  # the reading process walks (and is stuck) now
        if sys.argv[2] == "stop":
            for _ in range(2400):  # until the reading process is stuck in a row, within a bound
                if SEEN.exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.wait_for(first.close(), 120)
        else:
            await asyncio.Event().wait()  # until killed

ctx = open_context(Settings(_env_file=None, data_dir=Path(sys.argv[1])))
with apart.standby(ctx, serving=sys.argv[3] == "serving") as made:
    assert made is not None, "not forked: this process has threads"
    asyncio.run(main(ctx, made))
"""


def _stuck_run(ctx: ServiceContext, how: str, serving: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", STOPPED, str(ctx.settings.data_dir), how,
         "serving" if serving else "one"],
        stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip


def _reader(line: str) -> int:
    """The reading process's number, from what it printed."""
    word, pid = line.split()
    assert word == "reading"
    return int(pid)


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for its end, within a bound
    return not Path(f"/proc/{pid}").exists()


SERVING = pytest.mark.parametrize("serving", [False, True], ids=["one-run", "server"])


@SERVING
def test_a_run_that_stops_taking_batches_kills_its_reading_process(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, serving: bool
) -> None:
    """A reader that would never end (stuck in a row) is killed by close() and reaped (by the
    run's process, or by the worker's server), and the profile file is free again."""
    setup(ctx, sim, tmp_path, people(300))
    ctx.close_profiles()
    run = _stuck_run(ctx, "stop", serving)
    out, _ = run.communicate(timeout=DEADLINE)
    assert run.returncode == 0, out
    lines = out.splitlines()
    assert len(lines) == 1, out  # the reading process was stuck in a row when it was stopped
    assert not Path(f"/proc/{_reader(lines[0])}").exists()  # gone, and reaped
    duckdb.connect(str(ctx.settings.data_dir / "profiles.duckdb")).close()  # not held


@SERVING
def test_a_run_process_killed_outright_takes_its_reading_process_with_it(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, serving: bool
) -> None:
    """``kill -9`` of the run's process: Linux kills its reader (the parent-death signal; a
    worker's server too, and with it the reader it forked), which lets go of the profile file
    for the next run."""
    setup(ctx, sim, tmp_path, people(300))
    ctx.close_profiles()
    run = _stuck_run(ctx, "kill", serving)
    try:
        assert run.stdout is not None
        reader = _reader(run.stdout.readline())  # printed by the reading process
        children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        assert len(children) == 1
        assert (int(children[0]) == reader) is not serving  # a server forked the reader
    finally:
        run.kill()
        run.wait(timeout=DEADLINE)
    assert _wait_gone(reader)
    assert _wait_gone(int(children[0]))
    duckdb.connect(str(ctx.settings.data_dir / "profiles.duckdb")).close()


def test_a_reading_process_is_forked_only_while_its_process_has_one_thread() -> None:
    check = (
        "import threading\n"
        "from segsync.services.sync import apart\n"
        "alone = apart._one_thread()\n"
        "done = threading.Event()\n"
        "thread = threading.Thread(target=done.wait)\n"
        "thread.start()\n"
        "print(alone, apart._one_thread())\n"
        "done.set()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=_env(),
        timeout=DEADLINE, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["True", "False"]


def test_reading_apart_applies_only_where_it_may(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.close_profiles()
    monkeypatch.setattr(apart, "_one_thread", lambda: True)
    assert apart._may_fork(ctx)
    off = ctx.settings.model_copy(update={"read_apart": False})
    assert not apart._may_fork(
        ServiceContext(settings=off, db=ctx.db, now=ctx.now, actor=ctx.actor)
    )
    monkeypatch.setattr(apart, "_one_thread", lambda: False)
    assert not apart._may_fork(ctx)  # another thread: never forked

    assert apart.claim(ctx) is None  # no command made one ready
    ready = Standby(ctx.db, -1, -1, -1)  # (never started: only claimed here)
    monkeypatch.setattr(apart._PROCESS, "standby", ready)
    with attempt_settings():
        with attempt_settings():
            assert apart.claim(ctx) is None  # another run in the process
        other = ServiceContext(settings=ctx.settings, db=object(), now=ctx.now)  # type: ignore[arg-type]
        assert apart.claim(other) is None  # another metadata DB
        assert apart.claim(ServiceContext(settings=off, db=ctx.db)) is None
        ctx.profiles.list_tables()  # the profile engine open in this process
        assert apart.claim(ctx) is None
        ctx.close_profiles()
        assert apart.claim(ctx) is ready  # this run alone
        assert apart.claim(ctx) is None  # taken: one run only


def test_pipes_refused_halfway_leave_none_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system refusing the second pipe (out of files, say): the first is closed again, so
    a run that then reads on its thread leaks nothing (the one-run fork and a worker's server
    both make their pipes so)."""
    made: list[int] = []
    closed: list[int] = []
    real_pipe, real_close = os.pipe, os.close

    def pipe() -> tuple[int, int]:
        if made:
            raise OSError(24, "Too many open files")
        read_end, write_end = real_pipe()
        made.extend((read_end, write_end))
        return read_end, write_end

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "pipe", pipe)
    monkeypatch.setattr(os, "close", close)
    with pytest.raises(OSError, match="Too many open files"):
        apart.pipes()
    assert len(made) == 2
    assert sorted(closed) == sorted(made)
