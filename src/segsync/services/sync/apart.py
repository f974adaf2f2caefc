"""A first run's reading in a process of its own: the run's process is left to send.

A first run reads, cleans and packs its members on a thread (:mod:`.stream`) while the event
loop sends and the store's thread commits. Python runs one of those threads at a time (the
GIL), so the reading's Python — some 1.3 s of a 100,000-profile first run — went in turns with
the sending's. Where a command made one ready (:func:`standby`), a reading process does the
reading instead — the DuckDB query, the clean stage, the packing — and writes each batch down
a pipe; the run's reading thread relays them to the sending as it would have made them (in
memory, or on the spool) and settles the run's futures as the process tells it. The run's
batches, counts and sync state are the same either way. (docs/design.md, "The engine against
its floor", its twenty-fourth round.)

Two rules keep the reading process from ever waiting on something it cannot get — a fork
copies only the thread that forks, and a lock another thread held at that moment stays taken
in the child for good (the twenty-third round's reader hung so, in ``sqlite3.connect``):

* it is forked by :func:`standby` only while this process has one thread (Linux's
  ``/proc/self/task``), before the command starts a run — or by a worker's server, forked so
  and single-threaded for good: no lock can be held by another thread, for there is none. It
  then waits for its job;
* it never opens the metadata DB: the run's process reads what the reading needs from it (the
  catalog's part of the kept SQL's stamp, segsync's own tables) and sends it with the job. A
  stream query anchored on the run's moment (a relative rule), compiled on every run, is
  compiled by the run's process and sent with the job; a run whose stream SQL was not kept
  otherwise (compiling may read the catalog) reads on its thread.

And the run waits a bounded time (:data:`ANSWER_WITHIN`) for the process's first word: a
process that says nothing is killed, and the run reads on its thread — nothing was handed out.

Where it applies — all of these:

* Linux: ``os.fork``, ``/proc``, and ``prctl``'s parent-death signal, so that a run's process
  killed outright (``kill -9``, the out-of-memory killer) takes its reader with it, and the
  reader lets go of the DuckDB file;
* the setting ``read_apart`` (``SEGSYNC_READ_APART``, on by default);
* a command that makes one ready: ``exports run``, for the first of its first runs; a worker,
  for each of its first runs in turn, through a server it forks before it starts its threads
  (:mod:`.reading_server`);
* no other attempt going on in the process, the profile engine not open in it (the reading
  process opens the DuckDB file, which admits one process at a time), and the same metadata
  DB as the command's.

The reading process's side, and the messages on the pipe: :mod:`.reading_process`.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import pickle
import select
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from segsync.errors import FatalError
from segsync.services.context import ServiceContext, own_tables
from segsync.services.sync.compiled import Catalog
from segsync.services.sync.read import profile_reader
from segsync.services.sync.reading_process import (
    BATCH,
    END,
    HEAD,
    NOT_KEPT,
    TOLD,
    WHICH,
    Job,
    child,
)
from segsync.services.sync.stream_query import StreamQuery
from segsync.services.sync.switching import attempts_here

if TYPE_CHECKING:
    from segsync.services.sync.stream import FirstRun
    from segsync.services.sync.stream_read import Which
    from segsync.storage.db import Database

log = logging.getLogger(__name__)

APART_AHEAD = 16
"""Batches a run whose reading is apart holds in memory; the rest wait on the spool. Each batch
is decoded once whichever way it comes, so memory is all that more room would take (about
100 KB a batch)."""
ANSWER_WITHIN = 120.0
"""Seconds a run waits for its reading process's first word (it opens DuckDB and checks the
profiles, well under a second at 100,000) before it kills it and reads on its thread."""


def _one_thread() -> bool:
    """Whether this process has one thread now (Python's or any library's)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class Reader:
    """A reading process for a first run, as the run's process sees it: :meth:`read` hands it
    its job and relays what it hands out. :class:`Standby` forks one for one run; a
    :class:`~.reading_server.Server` (a worker's) one per run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pid = 0  # the reading process's, once it has one
        self.claimed = False
        self._out = -1  # the pipe the reading process writes
        self._lock = threading.Lock()

    def _hand(self, data: bytes) -> str | None:
        """Hand the job (pickled) to a reading process; why it could not be (the error), or
        None."""
        raise NotImplementedError

    def stop(self) -> None:
        """Kill the reading process if it still runs (the run takes no more batches)."""
        raise NotImplementedError

    def _reap(self) -> int:
        """Wait for the reading process's end (it ended, or was killed): its wait status."""
        raise NotImplementedError

    def _done(self) -> None:
        """The run is done with its reading process."""
        with contextlib.suppress(OSError):
            os.close(self._out)
        self._out = -1

    def dismiss(self) -> None:
        """The command ends: end what it forked, and reap it."""
        raise NotImplementedError

    def read(self, first: FirstRun) -> Any:
        """What ``first.reading.read()`` returns (or raises), the reading done by the process.
        Called on the run's reading thread, which relays what the process hands out."""
        fallback: str | None = None
        told, ended, outcome, status = 0, False, None, 0
        try:
            try:
                data = pickle.dumps(_job(first), protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as err:
                refused: str | None = str(err)  # a value pickle refuses
            else:
                refused = self._hand(data)
            if refused is not None:
                fallback = f"could not be handed its job ({refused})"
            elif not _answers(self._out):
                fallback = f"did not answer within {ANSWER_WITHIN:g} s"
            else:
                with os.fdopen(self._out, "rb", buffering=1 << 16, closefd=False) as pipe:
                    told, ended, outcome = _relay(first, pipe)
        finally:
            pid = self.pid
            if pid:
                if not ended:  # the run stopped taking batches, or the process died: gone
                    self.stop()
                status = self._reap()
            self._done()
        if outcome is NOT_KEPT:
            log.info("first run: read on a thread (its SQL is compiled on this run)")
            return first.reading.read()
        if not ended and told == 0 and not first.stopping:
            fallback = fallback or f"ended {_how(status)} without a word"
        if fallback is not None:
            log.warning("first run: the reading process %s; read on a thread instead", fallback)
            return first.reading.read()
        if isinstance(outcome, BaseException):
            raise outcome
        if not ended:
            if first.stopping:
                return True  # what the thread's reading gives once the run stops taking batches
            raise FatalError(
                f"the run's reading process ended {_how(status)} before it had read every "
                "member (out of memory?); the run can be started again"
            )
        first.read_by = pid
        return outcome


class Standby(Reader):
    """A reading process forked while this process had one thread, waiting for one first
    run's job (see the module)."""

    def __init__(self, db: Database, pid: int, jobs: int, out: int) -> None:
        super().__init__(db)
        self.pid, self._jobs, self._out = pid, jobs, out
        self._reaped: int | None = None  # its wait status, once reaped

    def _hand(self, data: bytes) -> str | None:
        try:
            with os.fdopen(self._jobs, "wb", closefd=False) as jobs:
                jobs.write(data)
        except OSError as err:  # the process is gone
            return str(err)
        finally:
            os.close(self._jobs)
            self._jobs = -1
        return None

    def stop(self) -> None:
        with self._lock:
            if self._reaped is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)

    def _reap(self) -> int:
        with self._lock:  # reaped once: never killed (nor its number reused) after that
            if self._reaped is None:
                _, self._reaped = os.waitpid(self.pid, 0)
            return self._reaped

    def dismiss(self) -> None:
        """End the process (waiting for its job, or still reading where the run was cut
        short) and reap it."""
        self.stop()
        self._reap()
        with contextlib.suppress(OSError):
            os.close(self._jobs)
        self._done()


def _job(first: FirstRun) -> Job:
    """What the reading process needs from the metadata DB, read here. A stream query anchored
    on the run's moment (a relative rule) is compiled on every run, and compiling may read the
    metadata DB: it is compiled here too, the profile file opened and closed again before the
    job is handed over."""
    r = first.reading
    ctx, target = r.ctx, r.target
    catalog = Catalog.read(ctx, target.segments)
    given = None
    if catalog.now is not None and ctx.settings.profiles_on_duckdb:
        with profile_reader(ctx) as reader:
            given = StreamQuery.kept(reader, target)
    own = own_tables(ctx.db)
    return Job(ctx.settings, target, r.suppressed, r.max_batch, catalog, own, given)


def _answers(out: int) -> bool:
    """Whether the reading process says something (a word, or the pipe's end) on ``out``
    within :data:`ANSWER_WITHIN`."""
    answer = select.poll()
    answer.register(out, select.POLLIN)
    return bool(answer.poll(ANSWER_WITHIN * 1000))


def _relay(first: FirstRun, pipe: IO[bytes]) -> tuple[int, bool, Any]:
    """Hand out what the process sends until its outcome: (messages, True, the outcome), or
    (messages, False, None) where the pipe ended first (the process died, or was stopped)."""
    told = 0
    while True:
        head = pipe.read(HEAD)
        if len(head) < HEAD:
            return told, False, None
        kind, data = head[:1], pipe.read(int.from_bytes(head[1:], "big"))
        if kind == BATCH:
            several = int.from_bytes(data[:4], "big")
            first.several.update(marshal.loads(data[4 : 4 + several]))  # noqa: S302 - as below
            first.batch(data[4 + several :])
        elif kind == END:
            return told, True, pickle.loads(data)  # noqa: S301 - our own child, our own pipe
        elif kind == NOT_KEPT:
            return told, True, NOT_KEPT
        else:
            value = pickle.loads(data)  # noqa: S301 - as above
            if kind == TOLD["read"]:
                value, counts = value
                counts.apply(first.reading)
            first.tell(cast("Which", WHICH[kind]), value)
        told += 1


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"by signal {os.WTERMSIG(status)}"
    return f"with exit code {os.waitstatus_to_exitcode(status)}"


class _Process:
    standby: Reader | None = None
    lock = threading.Lock()


_PROCESS = _Process()


def _may_fork(ctx: ServiceContext) -> bool:
    return (
        ctx.settings.read_apart
        and sys.platform == "linux"
        and not ctx.profiles_opened
        and _PROCESS.standby is None
        and _one_thread()
    )


def pipes() -> tuple[int, int, int, int]:
    """A reading process's two pipes, the job's and the batches' (each its read end, then its
    write end). Where the system refuses (OSError), none is left open."""
    jobs_r, jobs_w = os.pipe()
    try:
        out_r, out_w = os.pipe()
    except OSError:
        os.close(jobs_r)
        os.close(jobs_w)
        raise
    return jobs_r, jobs_w, out_r, out_w


def _fork(ctx: ServiceContext) -> Standby | None:
    """The reading process, forked now; None where the system refuses (out of processes or
    of files, say): the run reads on its thread."""
    fds: tuple[int, ...] = ()
    try:
        fds = jobs_r, jobs_w, out_r, out_w = pipes()
        parent = os.getpid()
        pid = os.fork()
    except OSError as err:
        for fd in fds:
            os.close(fd)
        log.warning("no reading process (%s): a first run reads on its thread", err)
        return None
    if pid == 0:
        os.close(jobs_w)
        os.close(out_r)
        child(jobs_r, out_w, parent)
    os.close(jobs_r)
    os.close(out_w)
    return Standby(ctx.db, pid, jobs_w, out_r)


@contextlib.contextmanager
def standby(ctx: ServiceContext, *, serving: bool = False) -> Iterator[Reader | None]:
    """Within the block, the first first run of this process may read in a process forked
    now (see the module), where it may: a command that starts runs holds it, before it starts
    any thread (a progress bar's, say). ``serving``: every first run, one at a time, each in
    a process of its own, forked by a server forked now (a worker's:
    :mod:`.reading_server`)."""
    made: Reader | None = None
    if _may_fork(ctx):
        if serving:
            from segsync.services.sync.reading_server import fork_server

            made = fork_server(ctx)
        else:
            made = _fork(ctx)
    if made is not None:
        _PROCESS.standby = made
    try:
        yield made
    finally:
        if made is not None:
            with _PROCESS.lock:
                _PROCESS.standby = None
            made.dismiss()


def claim(ctx: ServiceContext) -> Reader | None:
    """The reading process for a first run starting now in this process, or None (it reads on
    its thread): see the module for where one applies."""
    with _PROCESS.lock:
        ready = _PROCESS.standby
        if (
            ready is None
            or ready.claimed
            or ready.db is not ctx.db
            or not ctx.settings.read_apart
            or ctx.profiles_opened
            or attempts_here() > 1
        ):
            return None
        ready.claimed = True
        return ready
