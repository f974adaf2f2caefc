"""A first run's reading in a process of its own: the run's process is left to send.

A first run reads, cleans and packs its members on a thread (:mod:`.stream`) while the event
loop sends and the store's thread commits. Python runs one of those threads at a time (the
GIL), so the reading's Python — some 1.3 s of a 100,000-profile first run — went in turns with
the sending's. Where this process may (:func:`may_read_apart`), the run's reading thread forks
a child process instead, which does the reading — the DuckDB query, the clean stage, the
packing — and writes each batch down a pipe; the thread relays them to the sending as it would
have made them (in memory, or on the spool) and settles the run's futures as the child tells
it. The run's batches, counts and sync state are the same either way. (docs/design.md, "The
engine against its floor", its twenty-third round: 14 % less engine time for a first run of
100,000 profiles at 1,000 requests a second, measured in turns, in about the same memory.)

Where it applies — all of these:

* Linux: ``os.fork``, and ``prctl``'s parent-death signal, so that a run's process killed
  outright (``kill -9``, the out-of-memory killer) takes its reader with it, and the reader
  lets go of the DuckDB file;
* the setting ``read_apart`` (``SEGSYNC_READ_APART``, on by default);
* a process that declared itself fit (:func:`allowed`): one that runs runs and nothing else, as
  ``segsync exports run`` and ``segsync worker`` do; never ``serve``, whose web server's
  threads a fork would copy in the middle of their work;
* no other attempt going on in the process, and the profile engine not open in it: the child
  opens the DuckDB file itself, which admits one process at a time (an attempt that starts in
  the meantime and reads profiles waits for the file, as a second process does).

The child uses only what it inherited and connections of its own (the metadata DB's pool is
made anew without closing the parent's, SQLAlchemy's way across a fork); it ignores Ctrl-C
(the run's process stops it: :meth:`Apart.stop`), ends at SIGTERM without the parent's handler
(a worker's), and never returns into the parent's code: it leaves with ``os._exit`` (no
finalizer of the parent's objects runs, no buffered output of the parent's is written twice).

Each message on the pipe is a kind byte, a length (4 bytes) and the payload: a batch (the
emails with more than one item made since the last batch, then the batch as the spool writes
it), one of the run's futures settled, or the outcome.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import marshal
import os
import pickle
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn

from segsync.domain.plan import UpsertItem
from segsync.errors import FatalError
from segsync.services.context import ServiceContext
from segsync.services.sync.spool import encode
from segsync.services.sync.switching import attempts_here

if TYPE_CHECKING:
    from segsync.services.sync.stream import FirstRun

log = logging.getLogger(__name__)

APART_AHEAD = 16
"""Batches a run whose reading is apart holds in memory; the rest wait on the spool. Each batch
is decoded once whichever way it comes, so memory is all that more room would take (about
100 KB a batch)."""
_HEAD = 5  # a message's kind (1 byte) and length (4)
_BATCH, _END = b"b", b"e"
Which = Literal["accepted", "started", "read"]
"""The run's futures the reading settles (:meth:`~.stream.FirstRun.tell`)."""
_TOLD: dict[Which, bytes] = {"accepted": b"a", "started": b"s", "read": b"r"}
_WHICH: dict[bytes, Which] = {kind: which for which, kind in _TOLD.items()}
_PR_SET_PDEATHSIG = 1  # prctl(2)


class _Process:
    allowed = False


_PROCESS = _Process()


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Within the block, this process may fork its first runs' readers (see the module): a
    command that runs runs and nothing else beside them (``exports run``, ``worker``) holds it
    while it does."""
    before, _PROCESS.allowed = _PROCESS.allowed, True
    try:
        yield
    finally:
        _PROCESS.allowed = before


def may_read_apart(ctx: ServiceContext) -> bool:
    """Whether a first run starting now in this process reads in a process of its own."""
    return (
        _PROCESS.allowed
        and ctx.settings.read_apart
        and sys.platform == "linux"
        and not ctx.profiles_opened
        and attempts_here() <= 1
    )


class Apart:
    """One first run's reading process, as the run's process sees it."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Kill the reading process if it still runs (the run takes no more batches)."""
        with self._lock:
            if self._pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)

    def read(self, first: FirstRun) -> Any:
        """What ``first.reading()`` returns (or raises), the reading done by a forked child.
        Called on the run's reading thread, which relays what the child hands out."""
        parent = os.getpid()
        reading, writing = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(first, reading, writing, parent)
        os.close(writing)
        with self._lock:
            self._pid = pid
        if first.stopping:  # stopped while it forked: stop() found no process to kill then
            self.stop()
        ended = False
        outcome: Any = None
        try:
            with os.fdopen(reading, "rb", buffering=1 << 16) as pipe:
                ended, outcome = _relay(first, pipe)
        finally:
            if not ended:  # the run stopped taking batches, or the child died: gone for sure
                self.stop()
            with self._lock:  # reaped below: never killed (nor its number reused) after that
                self._pid = None
            _, status = os.waitpid(pid, 0)
        if isinstance(outcome, BaseException):
            raise outcome
        if not ended:
            if first.stopping:
                return True  # what the thread's reading gives once the run stops taking batches
            raise FatalError(
                f"the run's reading process ended {_how(status)} before it had read every "
                "member (out of memory?); the run can be started again"
            )
        return outcome


def _relay(first: FirstRun, pipe: IO[bytes]) -> tuple[bool, Any]:
    """Hand out what the child sends until its outcome: (True, the outcome), or (False, None)
    where the pipe ended first (the child died, or was stopped)."""
    while True:
        head = pipe.read(_HEAD)
        if len(head) < _HEAD:
            return False, None
        kind, data = head[:1], pipe.read(int.from_bytes(head[1:], "big"))
        if kind == _BATCH:
            several = int.from_bytes(data[:4], "big")
            first.several.update(marshal.loads(data[4 : 4 + several]))  # noqa: S302 - as below
            first.hold(data[4 + several :])
        elif kind == _END:
            return True, pickle.loads(data)  # noqa: S301 - our own child, down our own pipe
        else:
            value = pickle.loads(data)  # noqa: S301 - as above
            if kind == _TOLD["read"]:
                value, counts = value
                counts.apply(first)
            first.tell(_WHICH[kind], value)


class _Counts(NamedTuple):
    """What a first run counts while it reads, told with what reading found: the run's
    process takes it from the reading process."""

    contacts: int
    items: int
    batches: int
    walk_kept: bool
    to_add: Counter[str]
    several: list[str]  # those not sent with a batch yet

    @classmethod
    def of(cls, first: FirstRun) -> _Counts:
        return cls(
            first.contacts, first.items, first.batches, first.walk_kept, first.to_add,
            list(first.several),
        )  # fmt: skip

    def apply(self, first: FirstRun) -> None:
        first.contacts, first.items, first.batches = self.contacts, self.items, self.batches
        first.walk_kept = self.walk_kept
        first.to_add.update(self.to_add)
        first.several.update(self.several)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"by signal {os.WTERMSIG(status)}"
    return f"with exit code {os.waitstatus_to_exitcode(status)}"


class Outlet:
    """What the reading hands out, in the child: down the pipe."""

    def __init__(self, first: FirstRun, pipe: IO[bytes]) -> None:
        self.first, self.pipe = first, pipe

    def _send(self, kind: bytes, payload: bytes) -> None:
        self.pipe.write(kind + len(payload).to_bytes(4, "big") + payload)
        self.pipe.flush()  # the run's process is waiting for it

    def batch(self, batch: list[UpsertItem]) -> None:
        several = marshal.dumps(list(self.first.several))
        self.first.several.clear()  # sent: the run's process keeps them
        self._send(_BATCH, len(several).to_bytes(4, "big") + several + encode(batch))

    def tell(self, which: Which, value: Any) -> None:
        if which == "read":  # with what the run's process counts from the reading
            value = (value, _Counts.of(self.first))
        self._send(_TOLD[which], pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def end(self, outcome: Any) -> None:
        self._send(_END, _portable(outcome))


def _portable(outcome: Any) -> bytes:
    """``outcome`` pickled; an error that would not come back whole as a :class:`FatalError`
    with its text (its type's name first)."""
    try:
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # noqa: S301 - made just above
    except Exception:
        data = pickle.dumps(FatalError(f"{type(outcome).__name__}: {outcome}"))
    return data


def _child(first: FirstRun, reading: int, writing: int, parent: int) -> NoReturn:
    """The reading process: read, hand out, tell the outcome, leave."""
    code = 1
    try:
        os.close(reading)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process decides
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (a worker's)
        _die_with(parent)
        first.ctx.db.engine.dispose(close=False)
        with os.fdopen(writing, "wb") as pipe:
            outlet = first.outlet = Outlet(first, pipe)
            first.several.clear()
            outcome: Any
            try:
                outcome = first.reading()
            except BaseException as err:  # told to the run, which raises it
                log.debug("the reading process failed", exc_info=True)
                outcome = err
            outlet.end(outcome)
        code = 0
    except BaseException:  # the run's process finds the pipe ended without an outcome
        log.debug("the reading process could not tell its outcome", exc_info=True)
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Have Linux kill this process once the thread that forked it ends (the run's process
    killed outright, say), and end now if that happened already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
