"""Killing segsync at random moments: ``exports run`` processes and ``segsync worker``
processes, with SIGKILL or SIGTERM, many of them mid-send (the simulator has requests of the
process in flight, or holds them, when the signal goes).

Waiting here is polling a condition with a deadline (the process ended, a request is in
flight); the random delays only choose *when* to kill, never decide an outcome."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

from soaklib.cli import Segsync
from soaklib.data import EXPORT
from soaklib.sim import SoakSimulator

WAIT_LIMIT = 120.0
POLL = 0.005


@dataclass
class Tally:
    """What the chaos did, for the report."""

    kills: Counter[str] = field(default_factory=Counter)  # SIGKILL / SIGTERM
    mid_send: int = 0
    in_flight_at_kill: int = 0  # /v1 writes in flight (or held) at the kills, summed
    faults: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # how each run process ended
    synced_versions: list[int] = field(default_factory=list)

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    def synced(self, version: int) -> None:
        """A run ended Successful on data ``version``."""
        if not self.synced_versions or self.synced_versions[-1] != version:
            self.synced_versions.append(version)


def _wait(condition: object, process: subprocess.Popen[bytes], limit: float = WAIT_LIMIT) -> bool:
    """Poll until ``condition()`` holds (True) or the process ended (False)."""
    assert callable(condition)
    deadline = time.monotonic() + limit
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


class Killer:
    def __init__(self, rng: random.Random, sim: SoakSimulator, tally: Tally) -> None:
        self.rng = rng
        self.sim = sim
        self.tally = tally

    def signal(self, process: subprocess.Popen[bytes], *, executing: bool = True) -> bool:
        """SIGKILL or SIGTERM ``process`` now (False if it had ended), counting whether it was
        mid-send (it executes the run and a write is in flight)."""
        sig = signal.SIGKILL if self.rng.random() < 0.6 else signal.SIGTERM
        in_flight = self.sim.counting.in_flight if executing else 0
        if process.poll() is not None:
            return False
        process.send_signal(sig)
        self.tally.kills[sig.name] += 1
        self.tally.mid_send += in_flight > 0
        self.tally.in_flight_at_kill += in_flight
        return True

    def kill_run(self, segsync: Segsync, *, allow_hold: bool) -> str:
        """Start ``exports run`` and kill it at a random moment: ``"killed"``, or the run's
        final status when it ended first."""
        strategy = self.rng.choice(("mid-send", "mid-send", "held", "random"))
        if strategy == "held" and not allow_hold:
            strategy = "mid-send"
        started = self.sim.counting.writes_started
        if strategy == "held":
            self.sim.faults.hold_after_writes(self.rng.randrange(0, 8))
        process = segsync.start("exports", "run", EXPORT, "--json")
        try:
            if strategy == "mid-send":
                self._mid_send(process, started)
            elif strategy == "held":
                _wait(lambda: self.sim.faults.hold.held > 0, process)
            else:
                _wait(lambda: False, process, limit=self.rng.uniform(0.5, 5.0))
            killed = self.signal(process)
            process.wait(timeout=WAIT_LIMIT)
        finally:
            self.sim.faults.release()
            if process.poll() is None:
                process.kill()
            out, _ = process.communicate()
        self.tally.exits[_exit_name(process.returncode)] += 1
        return "killed" if killed else _status(out, process.returncode)

    def _mid_send(self, process: subprocess.Popen[bytes], started: int) -> None:
        """Until a write of the process is in flight, after 0 to 4 more writes went out."""
        later = started + self.rng.randrange(1, 6)
        if _wait(lambda: self.sim.counting.writes_started >= later, process):
            _wait(lambda: self.sim.counting.in_flight > 0, process, limit=1.0)

    def complete_run(self, segsync: Segsync) -> str:
        """One ``exports run`` to its end; its final status (or how it failed to start)."""
        process = segsync.start("exports", "run", EXPORT, "--json")
        out, _ = process.communicate(timeout=WAIT_LIMIT * 5)
        self.tally.exits[_exit_name(process.returncode)] += 1
        return _status(out, process.returncode)


def _status(out: bytes, code: int | None) -> str:
    """The status of the run record ``exports run --json`` printed."""
    try:
        return str(json.loads(out)["status"]).lower()
    except (ValueError, KeyError, TypeError):
        return f"exit {code}"


def _exit_name(code: int | None) -> str:
    if code is not None and code < 0:
        return signal.Signals(-code).name
    return f"exit {code}"


class Workers:
    """Two ``segsync worker`` processes; a killed one is started again."""

    def __init__(self, segsync: Segsync, killer: Killer, count: int = 2) -> None:
        self.segsync = segsync
        self.killer = killer
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []

    def ensure(self) -> None:
        self.processes = [p for p in self.processes if p.poll() is None]
        while len(self.processes) < self.count:
            command = ("worker", "--poll-interval", "0.1")
            self.processes.append(self.segsync.start(*command))

    def kill_one(self) -> bool:
        """Kill a worker at a random moment of the run in progress: mostly the one executing
        it, once a write is in flight (if one is within a few seconds); then start another.
        False, killing nobody, when no run is queued or in progress."""
        self.ensure()
        sim = self.killer.sim
        rng = self.killer.rng
        if _wait(lambda: sim.counting.in_flight > 0, self.processes[0], 5.0):
            time.sleep(rng.uniform(0.0, 0.1))
        executor, active = self._executor()
        if not active:
            return False
        if executor is not None and rng.random() < 0.85:
            victim, executing = executor, True
        else:
            victim = rng.choice(self.processes)
            executing = victim is executor
        self.killer.signal(victim, executing=executing)
        victim.communicate(timeout=WAIT_LIMIT)
        self.ensure()
        return True

    def _executor(self) -> tuple[subprocess.Popen[bytes] | None, bool]:
        """The worker holding the lease of the run in progress (the lease owner is
        ``host:pid:nonce``), and whether a run is queued or in progress at all."""
        active = False
        for run in self.segsync.runs():
            if run.status not in ("queued", "processing"):
                continue
            active = True
            if run.status == "processing" and run.lease_owner:
                pid = run.lease_owner.rsplit(":", 2)[-2]
                for process in self.processes:
                    if str(process.pid) == pid:
                        return process, True
        return None, active

    def stop(self) -> None:
        """SIGTERM every worker and wait: their runs go back to the queue."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.communicate(timeout=WAIT_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
        self.processes = []
