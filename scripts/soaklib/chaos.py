"""One soak phase: a data dir (SQLite or PostgreSQL metadata DB, DuckDB profiles), a
simulator, and the loop — change the data, switch faults on, run the export and kill it, via
the CLI or via two workers — then the faults off and a final clean run."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soaklib.cli import Segsync
from soaklib.data import EXPORT, People
from soaklib.guard import GuardTally, approve_held, undo_step
from soaklib.kills import WAIT_LIMIT, Killer, Tally, Workers
from soaklib.sim import API_KEY, SoakSimulator

BASE_LATENCY_MS = 100.0
FAULTS = (
    "none", "none", "throttle", "fail", "timeout", "latency", "drop", "revoke", "delete-list",
)  # fmt: skip
FINAL_ATTEMPTS = 5


@dataclass(frozen=True)
class Budget:
    """When a phase stops starting iterations: whichever comes first."""

    iterations: int
    kills: int
    deadline: float  # time.monotonic()


class Phase:
    def __init__(
        self,
        name: str,
        workdir: Path,
        rng: random.Random,
        *,
        profiles: int,
        database_url: str | None,
        workers_share: float,
        log: Callable[[str], None],
        faults: tuple[str, ...] = FAULTS,
        destination: str = "autopilot",
        undo_share: float = 0.0,
    ) -> None:
        self.name = name
        self.destination = destination
        self.workdir = workdir
        self.rng = rng
        self.log = log
        self.workers_share = workers_share
        self.faults = faults
        self.people = People(rng, profiles)
        self.sim = SoakSimulator(
            seed=rng.randrange(1 << 30), latency_ms=BASE_LATENCY_MS, api=destination
        )
        self.segsync = Segsync(workdir / "data", database_url)
        self.tally = Tally()
        self.guard = GuardTally()
        self.undo_share = undo_share
        self.killer = Killer(rng, self.sim, self.tally)
        self.workers = Workers(self.segsync, self.killer)
        self.version = 0
        self.iterations = 0
        self.final_status = ""

    def csv_path(self, version: int) -> Path:
        return self.workdir / f"people-v{version}.csv"

    def _write_version(self) -> None:
        self.version += 1
        self.people.write_csv(self.csv_path(self.version))

    def setup(self) -> None:
        self._write_version()
        self.segsync.setup(self.csv_path(self.version), self.sim.base_url, self.destination)

    # -- faults -------------------------------------------------------------------------

    def _fault_on(self, kind: str) -> None:
        rng = self.rng
        if kind == "throttle":
            self.sim.set_faults(throttle_next=rng.randrange(5, 40))
        elif kind == "fail":
            self.sim.set_faults(fail_next=rng.randrange(1, 8))
        elif kind == "timeout":
            self.sim.set_faults(timeout_next_writes=rng.randrange(1, 4))
        elif kind == "latency":
            self.sim.set_faults(latency_ms=rng.uniform(200, 700))
        elif kind == "revoke":
            self.sim.set_faults(revoke_key=API_KEY)
        elif kind == "delete-list":
            lists = self.sim.lists()
            if not lists:
                self.tally.faults["delete-list (no list yet)"] += 1
                return
            if not self.sim.delete_list(rng.choice(lists)["list_id"]):
                self.tally.faults["delete-list (no such endpoint)"] += 1
                return
        if kind != "none":
            self.tally.faults[kind] += 1

    def _faults_off(self) -> None:
        self.sim.set_faults(
            throttle_next=0,
            fail_next=0,
            timeout_next_writes=0,
            latency_ms=BASE_LATENCY_MS,
            restore_key=API_KEY,
        )

    def _dropper(self) -> threading.Thread:
        """Drop every connection once the next write is in flight: the server stops, stays
        down a moment, and listens again (what a network cut looks like to the client)."""
        started = self.sim.counting.writes_started
        gap = self.rng.uniform(0.2, 1.5)

        def drop() -> None:
            deadline = time.monotonic() + 30.0
            while self.sim.counting.writes_started == started:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
            self.sim.restart(gap)

        thread = threading.Thread(target=drop, name="soak-drop", daemon=True)
        thread.start()
        return thread

    # -- one iteration --------------------------------------------------------------------

    def iteration(self) -> None:
        self.iterations += 1
        rng = self.rng
        if rng.random() < self.undo_share:  # the guard rails' undo, faults off (guard.py)
            self.workers.stop()
            undo_step(
                self.segsync, self.sim, self.guard, change_data=self._change_data, note=self._note
            )
        if rng.random() < 0.85:  # sometimes a resume on the same data
            self._change_data()
        fault = rng.choice(self.faults)
        if fault == "revoke":
            self._revoked_run()
        else:
            self._fault_on(fault)
        dropper = self._dropper() if fault == "drop" else None
        if dropper is not None:
            self.tally.faults["drop"] += 1
        if rng.random() < self.workers_share:
            self._with_workers(rng.randrange(2, 7))
        else:
            self.workers.stop()
            for _ in range(rng.randrange(2, 8)):
                status = self._note(self.killer.kill_run(self.segsync, allow_hold=dropper is None))
                if status != "killed":  # it ended first: give the next one work
                    self._change_data()
            if rng.random() < 0.6:  # else the interrupted run meets newer data next time
                self._note(self.killer.complete_run(self.segsync))
        if dropper is not None:
            dropper.join(timeout=60.0)
        self._faults_off()

    def _change_data(self) -> None:
        self.people.mutate(self.rng.randrange(10, 60))
        self._write_version()
        self.segsync.import_profiles(self.csv_path(self.version))

    def _revoked_run(self) -> None:
        """The key revoked: a run fails (401, the connection flagged), then the key is
        restored and the connection tested again."""
        self.workers.stop()
        self._fault_on("revoke")
        self._note(self.killer.complete_run(self.segsync))
        self.sim.set_faults(restore_key=API_KEY)
        self.segsync.test_connection()

    def _note(self, status: str) -> str:
        """Count a run's end (a Held run is approved first, guard.py); the status it ended."""
        status = approve_held(self.segsync, status, self.guard)
        if status == "successful":
            self.tally.synced(self.version)
        return status

    def _with_workers(self, kills: int) -> None:
        """Queue a run for two workers, kill workers ``kills`` times while it runs, and wait
        for the run to end (the workers take it over from each other)."""
        self.workers.ensure()
        self.segsync.run("exports", "run", EXPORT, "--no-wait")
        for _ in range(kills):
            if not self.workers.kill_one():
                break
        self._note(self._wait_for_runs())

    def _wait_for_runs(self) -> str:
        deadline = time.monotonic() + WAIT_LIMIT * 2
        while True:
            runs = self.segsync.runs()
            if runs and all(r.status not in ("queued", "processing") for r in runs):
                return runs[-1].status
            if time.monotonic() > deadline:
                return "still running"
            self.workers.ensure()
            time.sleep(0.1)

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> None:
        """Faults off, workers stopped, then clean runs until one ends Successful (it resumes
        any interrupted run first)."""
        self.workers.stop()
        self._faults_off()
        self.sim.faults.release()
        for _ in range(FINAL_ATTEMPTS):
            status = self._note(self.killer.complete_run(self.segsync))
            if status == "successful" and not any(
                r.status in ("queued", "processing") for r in self.segsync.runs()
            ):
                break
        self.final_status = status

    def close(self) -> None:
        self.workers.stop()
        self.sim.close()

    def run(self, budget: Budget) -> None:
        while (
            self.iterations < budget.iterations
            and self.tally.total_kills < budget.kills
            and time.monotonic() < budget.deadline
        ):
            self.iteration()
            self.log(self.progress())
        self.finish()

    def progress(self) -> str:
        t = self.tally
        return (
            f"[{self.name}] iteration {self.iterations}: kills {t.total_kills} "
            f"({t.kills['SIGKILL']} SIGKILL, {t.kills['SIGTERM']} SIGTERM, {t.mid_send} mid-send),"
            f" requests {self.sim.counting.requests()}, faults {sum(t.faults.values())}"
        )
