"""How often threads take turns with the GIL while a run goes on (:func:`quick_thread_switches`)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SWITCH_INTERVAL = 0.0005
"""Seconds a thread holds the GIL before another may take it, while a run goes on."""
_switching = {"runs": 0, "before": 0.0}
_switching_lock = threading.Lock()


@contextlib.contextmanager
def quick_thread_switches() -> Iterator[None]:
    """While an attempt runs, pass the GIL between threads every 0.5 ms instead of Python's
    5 ms. The run has three busy threads — the event loop that sends, the metadata-DB thread
    (:class:`RunStore`) and the reader — and each DB call or commit hands the GIL back and
    forth: at 5 ms a turn, the thread that commits waits on the one that sends, and at a
    thousand batches a run, those waits, not the work, set the pace (measured with
    bench/export.py: 47 s → 29 s for 100k contacts on a busy 2-core machine)."""
    with _switching_lock:
        if _switching["runs"] == 0:
            _switching["before"] = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, _switching["before"]))
        _switching["runs"] += 1
    try:
        yield
    finally:
        with _switching_lock:
            _switching["runs"] -= 1
            if _switching["runs"] == 0:
                sys.setswitchinterval(_switching["before"])
