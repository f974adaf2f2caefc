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

After a SIGKILL, what the dead process had in flight is counted exactly rather than assumed:
:meth:`LoopbackSimulator.drain` stops the server (every request it had received is answered,
applied and counted first) and starts it again on the same port.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
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


class LoopbackSimulator:
    """A simulator on a loopback port that can be stopped and started again on the same port,
    keeping its state: ``running`` stays valid across :meth:`drain`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.simulator = Simulator(config)
        self._stack = ExitStack()
        self.running = self._start(port=0)

    def _start(self, port: int) -> RunningSimulator:
        return self._stack.enter_context(serve_in_thread(self.simulator, port=port))

    def drain(self) -> None:
        """Release what is held and stop the server — it answers (and counts) every request it
        had received before it stops — then serve again on the same port."""
        self.simulator.faults.release()
        port = int(self.running.root_url.rsplit(":", 1)[1])
        self._stack.close()
        assert self._start(port) == self.running

    def close(self) -> None:
        self.simulator.faults.release()
        self._stack.close()


class Processes:
    """The processes a test starts; whatever still runs at the end is killed, so a failing
    test leaves no worker behind."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.started.append(process)
        return process

    def kill_leftovers(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.communicate()
