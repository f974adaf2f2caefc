"""Background services of ``segsync serve``: periodic tasks (the scheduler tick, notification
redelivery, erasure retries) and worker(s), each in its own thread, started and stopped as one.

Periodic tasks are plain callables taking a :class:`ServiceContext`
(:class:`PeriodicTask`); :func:`system_tasks` lists the ones ``serve`` runs. Each call gets a
fresh context over the shared metadata DB, and the profile engine it may have opened is closed
right after (a DuckDB file admits one process at a time). A task that raises is logged; the
loop goes on. :meth:`BackgroundServices.stop` stops the loop and the workers: each worker's
run in flight goes back to the queue after its batches in flight (see
:mod:`segsync.services.runs.worker`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from segsync.services.context import ServiceContext, open_context
from segsync.services.exports import verify_schedule
from segsync.services.notifications import manage as notifications
from segsync.services.privacy import erasure
from segsync.services.runs import scheduler
from segsync.services.runs.worker import POLL_SECONDS, Worker
from segsync.services.sync.engine import ConfigTuner
from segsync.settings import Settings

__all__ = ["BackgroundServices", "PeriodicTask", "system_tasks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    """``call(ctx)`` every ``every`` seconds (the first call at start)."""

    name: str
    call: Callable[[ServiceContext], object]
    every: float


def system_tasks(
    *, tick_every: float = 15.0, redeliver_every: float = 60.0, erasures_every: float = 300.0
) -> list[PeriodicTask]:
    """What ``segsync serve`` runs periodically: the scheduler tick (due schedules → queued
    runs), the verify schedules' tick (due verifies → queued verify runs), redelivery of
    notices whose channel failed, and retries of pending erasures."""
    return [
        PeriodicTask("scheduler", scheduler.tick, tick_every),
        PeriodicTask("verify", verify_schedule.tick_verifies, tick_every),
        PeriodicTask("notifications", notifications.redeliver_pending, redeliver_every),
        PeriodicTask("erasures", erasure.retry_pending_erasures, erasures_every),
    ]


class BackgroundServices:
    """Runs ``tasks`` periodically and ``workers`` workers, in threads, until :meth:`stop`.

    Opens its own metadata DB connection pool from ``settings``. ``now`` injects the clock,
    ``tune`` the connection configs of runs (tests); ``monotonic`` and the stop event pace the
    loop, so tests never sleep."""

    def __init__(
        self,
        settings: Settings,
        *,
        tasks: Sequence[PeriodicTask] = (),
        workers: int = 1,
        poll_interval: float = POLL_SECONDS,
        now: Callable[[], datetime] | None = None,
        tune: ConfigTuner | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.tasks = list(tasks)
        self.ctx = open_context(settings, now=now)
        self.workers = [
            Worker(self._context(), poll_interval=poll_interval, tune=tune) for _ in range(workers)
        ]
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.task_errors: dict[str, str] = {}
        """The latest error of each task that failed (cleared when it succeeds again)."""

    def _context(self) -> ServiceContext:
        return ServiceContext(settings=self.settings, db=self.ctx.db, now=self.ctx.now)

    def start(self) -> BackgroundServices:
        """Start the threads (idempotent)."""
        if self._threads:
            return self
        if self.tasks:
            self._threads.append(
                threading.Thread(target=self._loop, name="segsync-periodic", daemon=True)
            )
        for number, worker in enumerate(self.workers, start=1):
            self._threads.append(
                threading.Thread(target=worker.run, name=f"segsync-worker-{number}", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        log.info(
            "background services started: %d task(s), %d worker(s)",
            len(self.tasks),
            len(self.workers),
        )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming and ticking; wait for the threads (a run in flight commits its
        batches in flight and goes back to the queue), then close the DB pool."""
        self._stop.set()
        for worker in self.workers:
            worker.stop()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.ctx.close()

    def __enter__(self) -> BackgroundServices:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run_due_tasks(self, next_due: dict[str, float]) -> float:
        """Run every task due by the monotonic clock; return the seconds until the next one."""
        for task in self.tasks:
            if self._stop.is_set():
                break
            if next_due.get(task.name, 0.0) <= self._monotonic():
                self._run_task(task)
                next_due[task.name] = self._monotonic() + task.every
        upcoming = min((next_due[t.name] for t in self.tasks), default=self._monotonic() + 1.0)
        return max(0.0, upcoming - self._monotonic())

    def _loop(self) -> None:
        next_due: dict[str, float] = {}
        while not self._stop.is_set():
            self._stop.wait(self.run_due_tasks(next_due))

    def _run_task(self, task: PeriodicTask) -> None:
        ctx = self._context()
        try:
            task.call(ctx)
            self.task_errors.pop(task.name, None)
        except Exception as err:
            self.task_errors[task.name] = f"{type(err).__name__}: {err}"
            log.exception("periodic task %s failed", task.name)
        finally:
            if ctx.profiles_opened:
                ctx.profiles.close()
