"""What the run engine talks to (:class:`EngineParts`, replaceable in tests) and what an
attempt returns (:class:`RunOutcome`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from segsync.destinations.base import ConnectionConfig, Destination
from segsync.destinations.registry import create_destination
from segsync.domain.mapping import FieldMapping
from segsync.domain.sync_state import SyncStateView
from segsync.services.context import ServiceContext
from segsync.services.sync.clean import MemberScan, NeedsPayload
from segsync.services.sync.lease import LEASE_SECONDS
from segsync.services.sync.read import SegmentSource, read_members
from segsync.services.sync.settled import Settled, find_settled
from segsync.services.sync.store import RunStore
from segsync.services.sync.stream import FirstRun
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.runs import RunRecord

ConfigTuner = Callable[[ConnectionConfig], ConnectionConfig]
"""Adjusts the connection config before the destination is built (tests: fast backoff)."""

Reader = Callable[
    [
        ServiceContext,
        Sequence[SegmentSource],
        FieldMapping,
        NeedsPayload,
        frozenset[str],
        Mapping[str, str],
        Settled | None,
    ],
    MemberScan,
]
"""Reads and cleans the members (runs in a thread): :func:`.read.read_members`; the last two
arguments are the sync state's payload hashes and the contacts settled apart."""

Settler = Callable[
    [ServiceContext, int, Sequence[SegmentSource], FieldMapping, SyncStateView, frozenset[str]],
    Settled | None,
]
"""Finds the settled contacts apart (runs in a thread): :func:`.settled.find_settled`."""

FirstRunMaker = Callable[[ServiceContext, RunTarget, frozenset[str], int], FirstRun]
"""Makes a first run's stream (on the event loop): :class:`.stream.FirstRun`."""


@dataclass(frozen=True)
class EngineParts:
    """What the engine talks to; each has its production default and may be replaced (tests
    inject a slow reader, a failing destination or store, a short lease)."""

    read: Reader = read_members
    settle: Settler = find_settled
    open_destination: Callable[[str, ConnectionConfig], Destination] = create_destination
    store: Callable[..., RunStore] = RunStore
    first_run: FirstRunMaker | None = FirstRun
    """A first run sent while it is read (:mod:`.stream`); None: every run reads and plans."""
    lease_seconds: float = LEASE_SECONDS


@dataclass(frozen=True)
class RunOutcome:
    """How an attempt ended: the run's ``record``; ``released`` when it must go back to the
    queue (the caller does it: :func:`segsync.services.runs.queue.release_run`)."""

    record: RunRecord
    released: bool = False
