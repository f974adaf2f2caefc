"""The reading process of :mod:`.apart`: what it is handed, what it does, and the pipe it
writes to — each message a kind byte, a length (4 bytes) and the payload: a batch (the emails
with more than one item made since the last batch, then the batch as the spool writes it), one
of the run's futures settled, the SQL not kept, or the outcome.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import marshal
import os
import pickle
import signal
from collections import Counter
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, NamedTuple, NoReturn, cast

from segsync.domain.plan import UpsertItem
from segsync.errors import FatalError
from segsync.services.context import ServiceContext
from segsync.services.sync.compiled import Catalog
from segsync.services.sync.spool import encode
from segsync.settings import Settings

if TYPE_CHECKING:
    from segsync.profiles.placement import OwnTables
    from segsync.services.sync.stream_query import StreamQuery
    from segsync.services.sync.stream_read import Reading, Which
    from segsync.services.sync.target import RunTarget
    from segsync.storage.db import Database

log = logging.getLogger(__name__)

HEAD = 5  # a message's kind (1 byte) and length (4)
BATCH, END, NOT_KEPT = b"b", b"e", b"n"
TOLD: dict[str, bytes] = {"accepted": b"a", "started": b"s", "read": b"r"}
WHICH: dict[bytes, str] = {kind: which for which, kind in TOLD.items()}
_PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Job:
    """What the reading process is handed: all it needs beside the profile file."""

    settings: Settings
    target: RunTarget
    suppressed: frozenset[str]
    max_batch: int
    catalog: Catalog
    own: OwnTables
    given: tuple[StreamQuery | None, bool] | None = None
    """The stream's query and whether the walk's was kept beside it, where the run's process
    compiled it (a relative rule); None: as kept (:meth:`.StreamQuery.kept`)."""


class Counts(NamedTuple):
    """What a first run counts while it reads, told with what reading found: the run's
    process takes it from the reading process."""

    contacts: int
    items: int
    batches: int
    walk_kept: bool
    to_add: Counter[str]
    several: list[str]  # those not sent with a batch yet

    @classmethod
    def of(cls, reading: Reading) -> Counts:
        return cls(
            reading.contacts, reading.items, reading.batches, reading.walk_kept,
            reading.to_add, list(reading.several),
        )  # fmt: skip

    def apply(self, reading: Reading) -> None:
        reading.contacts, reading.items, reading.batches = self.contacts, self.items, self.batches
        reading.walk_kept = self.walk_kept
        reading.to_add.update(self.to_add)
        reading.several.update(self.several)


class _Pipe:
    """What the reading hands out, in the reading process: down the pipe (an
    :class:`~.stream_read.Outlet`)."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe = pipe
        self.reading: Reading | None = None

    def send(self, kind: bytes, payload: bytes) -> None:
        self.pipe.write(kind + len(payload).to_bytes(4, "big") + payload)
        self.pipe.flush()  # the run's process is waiting for it

    def _several(self) -> list[str]:
        if self.reading is None:
            return []
        several = list(self.reading.several)
        self.reading.several.clear()  # sent: the run's process keeps them
        return several

    def batch(self, batch: list[UpsertItem]) -> None:
        several = marshal.dumps(self._several())
        self.send(BATCH, len(several).to_bytes(4, "big") + several + encode(batch))

    def tell(self, which: Which, value: Any) -> None:
        if which == "read" and self.reading is not None:  # with what the run's process counts
            value = (value, Counts.of(self.reading))
        self.send(TOLD[which], pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def end(self, outcome: Any) -> None:
        self.send(END, _portable(outcome))


def _portable(outcome: Any) -> bytes:
    """``outcome`` pickled; an error that would not come back whole as a :class:`FatalError`
    with its text (its type's name first)."""
    try:
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # noqa: S301 - made just above
    except Exception:
        data = pickle.dumps(FatalError(f"{type(outcome).__name__}: {outcome}"))
    return data


class _NoDatabase:
    """The reading process's metadata DB: none (see the module). Any use is an error, which
    the run raises."""

    def __getattr__(self, name: str) -> Any:
        raise FatalError(f"the reading process never opens the metadata DB (asked for {name})")


def child(jobs: int, out: int, parent: int) -> NoReturn:
    """The reading process: wait for the job, read, hand out, tell the outcome, leave. It
    ignores Ctrl-C and SIGTERM (the run's process, stopping, stops it; it dies with that
    process), and never returns into the parent's code: it leaves with ``os._exit`` (no
    finalizer of the parent's objects runs, no buffered output of the parent's is written
    twice)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        die_with(parent)
        _ready()
        with os.fdopen(jobs, "rb") as pipe:
            data = pipe.read()
        if data:  # else: dismissed
            with os.fdopen(out, "wb") as pipe:
                _work(pickle.loads(data), _Pipe(pipe))  # noqa: S301 - from the run's process
        code = 0
    except BaseException:  # the run's process finds the pipe ended without an outcome
        log.debug("the reading process could not tell its outcome", exc_info=True)
    finally:
        os._exit(code)


def _ready() -> None:
    """What the reading imports, imported while the run's process starts its run."""
    import duckdb  # noqa: F401

    from segsync.profiles.engine import ProfileEngine  # noqa: F401
    from segsync.services.sync.stream_read import Reading  # noqa: F401


def _work(job: Job, outlet: _Pipe) -> None:
    from segsync.profiles.engine import ProfileEngine
    from segsync.services.sync.stream_query import NotKept
    from segsync.services.sync.stream_read import Reading

    settings = job.settings
    no_db = cast("Database", _NoDatabase())
    ctx = ServiceContext(settings=settings, db=no_db)
    outcome: Any
    try:
        ctx._profiles = ProfileEngine.connect(
            settings.profile_engine_url,
            own=job.own,
            schema=settings.profiles_schema,
            data_dir=settings.data_dir,
        )
        reading = outlet.reading = Reading(ctx, job.target, job.suppressed, job.max_batch, outlet)
        outcome = reading.read(job.catalog, job.given)
    except NotKept:
        outlet.send(NOT_KEPT, b"")
        return
    except BaseException as err:  # told to the run, which raises it
        log.debug("the reading process failed", exc_info=True)
        outcome = err
    finally:
        if ctx._profiles is not None:
            ctx._profiles.close()
    outlet.end(outcome)


def die_with(parent: int) -> None:
    """Have Linux kill this process once the thread that forked it ends (the run's process
    killed outright, say), and end now if that happened already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
