"""Process settings while a run goes on (:func:`attempt_settings`, the whole attempt): how
often threads take turns with the GIL, and which objects the cyclic garbage collector leaves
alone; and how often it looks at young objects (:func:`fewer_collections`, loading the sync
state, reading and planning; :func:`sending_collections`, sending).

Each is process-wide and several runs may go on in one process (``serve``, workers): the first
run in applies the setting, the last one out restores what was there before.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Iterator

SWITCH_INTERVAL = 0.0005
"""Seconds a thread holds the GIL before another may take it, while a run goes on."""
YOUNG_COLLECTION_THRESHOLD = 100_000
"""Allocations (less deallocations) between collections of the youngest generation while
members are read and planned (Python's default: 700)."""
SENDING_COLLECTION_THRESHOLD = 3_000
"""The same while batches are sent. Sending makes reference cycles (asyncio's futures and
handles, the HTTP client's requests), so the threshold stays low enough for them to go young;
at 700 a 100k first run at 1,000 r/s spent 0.40 s in collections, at 3,000 0.25 s for 3 MB more
at its peak (at 5,000: 0.17 s for 7 MB more; at 20,000: 0.16 s for 29 MB more). In turns with
700, that run's engine time: 4.43–4.54 s → 4.34–4.51 s, its peak 242–244 → 243–247 MB."""


class _WhileAny:
    """A process-wide setting held while any caller needs it. ``apply`` sets it and returns
    what puts back the setting it found."""

    def __init__(self, apply: Callable[[], Callable[[], None]]) -> None:
        self._apply = apply
        self._users = 0
        self._restore: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    @property
    def users(self) -> int:
        """Callers holding it now."""
        return self._users

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._restore = self._apply()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._restore()


def _switch_quickly() -> Callable[[], None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(SWITCH_INTERVAL, before))
    return lambda: sys.setswitchinterval(before)


class _YoungThreshold:
    """The youngest generation's collection threshold, raised while any caller asks: to the
    highest level asked by those holding it (a run reading while another sends in the same
    process gets the reader's), back to what was there once the last one leaves. A threshold
    of 0 (automatic collection off) stays 0."""

    def __init__(self) -> None:
        self._levels: list[int] = []
        self._before = gc.get_threshold()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def held(self, level: int) -> Iterator[None]:
        with self._lock:
            if not self._levels:
                self._before = gc.get_threshold()
            self._levels.append(level)
            self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._levels.remove(level)
                if self._levels:
                    self._apply()
                else:
                    gc.set_threshold(*self._before)

    def _apply(self) -> None:
        young, *older = self._before
        if young:
            gc.set_threshold(max(young, *self._levels), *older)


_young = _YoungThreshold()


_switches = _WhileAny(_switch_quickly)
_quick_thread_switches = _switches.held


def attempts_here() -> int:
    """Attempts going on in this process now (each holds :func:`attempt_settings`)."""
    return _switches.users


"""While an attempt runs, pass the GIL between threads every 0.5 ms instead of Python's 5 ms.
The run has three busy threads — the event loop that sends, the metadata-DB thread
(:class:`RunStore`) and the reader — and each DB call or commit hands the GIL back and forth:
at 5 ms a turn, the thread that commits waits on the one that sends, and at a thousand batches
a run, those waits, not the work, set the pace (measured with bench/export.py: 47 s → 29 s for
100k contacts on a busy 2-core machine)."""

_freezing = threading.Event()  # set while attempts may set objects apart


def _take_freezing() -> Callable[[], None]:
    if gc.get_freeze_count():  # something else in the process froze objects: leave them be
        return lambda: None
    _freezing.set()

    def give_back() -> None:
        _freezing.clear()
        gc.unfreeze()

    return give_back


_set_apart = _WhileAny(_take_freezing)


@contextlib.contextmanager
def attempt_settings() -> Iterator[None]:
    """The settings of a whole attempt: quick thread switches, and what
    :func:`fewer_collections` made kept out of the collector's reach until the last run in the
    process ends (then ``gc.unfreeze`` hands it all back to the oldest generation)."""
    with _quick_thread_switches(), _set_apart.held():
        yield


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """While the sync state is loaded and members are read and planned, collect the youngest
    generation of cyclic garbage every 100,000 net allocations instead of every 700; afterwards,
    within an attempt, set what was made apart from the collector (``gc.freeze``).

    Those stages make a few small objects per member (the state's rows, the member's row, its
    contact and entry, its items) and keep most of them until the run ends. At 700 the collector
    ran about every hundred members, every tenth time it went on to the middle generation and,
    as the heap grew, to the oldest, which holds everything made so far (under callgrind, reading
    100k members took 88 s instead of 107 s, and the process made 5 % fewer instructions in all).
    They make almost no reference cycles, so no garbage waits longer; sending does (asyncio, the
    HTTP client) and takes a lower one (:func:`sending_collections`): there this one raised the
    peak RSS by 40 MB.

    Left in the oldest generation, the kept objects were walked again by every full collection
    that later allocations started (the reject rows' insert after reading, sending). Set apart,
    a full collection walks only what was made since: time in collections per 100k run (a
    ``gc.callbacks`` timer, bench/export.py's data) fell from 0.53–0.58 s to 0.24–0.25 s on a
    rerun and from 1.11 s to 0.54 s on a first run. Nothing is lost: an object set apart is
    still freed as soon as nothing refers to it; only a reference cycle among such objects
    waits for the attempt's end. Outside an attempt (a preview, say) nothing is set apart, nor
    in a process that froze objects itself (its own ``gc.freeze``): that is left as it was."""
    with _young.held(YOUNG_COLLECTION_THRESHOLD):
        yield
    if _freezing.is_set():
        gc.freeze()


@contextlib.contextmanager
def sending_collections() -> Iterator[None]:
    """While batches are sent, collect the youngest generation every
    :data:`SENDING_COLLECTION_THRESHOLD` net allocations instead of every 700."""
    with _young.held(SENDING_COLLECTION_THRESHOLD):
        yield
