"""Stopping a process in the middle of a run, for certain rather than by timing.

The simulator holds every request after a few writes (its ``hold_after_writes`` switch); the
test waits until the process's requests are held and every batch the simulator acknowledged is
committed, signals the process, and only then releases the held requests. However busy the
machine, the run can neither finish before the signal nor be caught before its first batches::

    sim.simulator.faults.hold_after_writes(5)
    process = subprocess.Popen([...])
    wait_until_held(sim, process, lambda: items_done(run_id))
    process.send_signal(signal.SIGTERM)
    wait_until_taken(process, signal.SIGTERM)
    sim.simulator.faults.release()
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from segsync.simulator import RunningSimulator
from tests.services.runs_support import count, stats

WAIT_LIMIT = 60.0
UPSERT = "POST /v1/contacts"
BATCH = 100


def wait_until_held(
    sim: RunningSimulator, process: subprocess.Popen[bytes], items_done: Callable[[], int]
) -> int:
    """Until ``process``'s requests wait at the simulator and each upsert batch the simulator
    acknowledged is committed (``items_done()``, read from the metadata DB); the number of
    those batches."""
    assert sim.simulator.faults.hold.wait_for_held(1, timeout=WAIT_LIMIT), "nothing was held"
    acknowledged = count(stats(sim), UPSERT, "200")
    assert acknowledged > 0, stats(sim)
    deadline = time.monotonic() + WAIT_LIMIT
    while items_done() < BATCH * acknowledged:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the acknowledged batches were not committed"
        time.sleep(0.02)  # polling a condition, not timing one
    return acknowledged


def wait_until_taken(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Until ``process`` has taken ``sig`` off its pending signals (Linux ``/proc``): its
    handler has run, so nothing it does once the held requests go on comes before the signal."""
    status = Path(f"/proc/{process.pid}/status")
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
        if not pending & (1 << (sig - 1)):
            return
        assert time.monotonic() < deadline, f"the process never took {sig.name}"
        time.sleep(0.01)  # polling a condition, not timing one
