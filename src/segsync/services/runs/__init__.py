"""Runs as jobs: run, list, cancel, rejects (``manage``); the queue and its claims (``queue``);
workers (``worker``); the scheduler, the system refresh schedule and scheduled runs
(``scheduler``, ``schedule``, ``scheduled``); the background services of ``serve``
(``background``); read models of runs (``views``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.runs.manage import (
    RunProgress,
    RunRecord,
    cancel_run,
    duration,
    execute_started,
    get_run,
    list_runs,
    rejects,
    run_all,
    run_export,
    run_json,
    spawn_background_run,
    start_run,
    write_rejects_csv,
)

__all__ = [
    "RunProgress",
    "RunRecord",
    "cancel_run",
    "duration",
    "execute_started",
    "get_run",
    "list_runs",
    "rejects",
    "run_all",
    "run_export",
    "run_json",
    "spawn_background_run",
    "start_run",
    "write_rejects_csv",
]
