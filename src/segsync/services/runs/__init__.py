"""Runs as jobs: run, list, cancel, rejects (``manage``); approve or dismiss a held run
(``approval``); undo a run (``undo``); the queue and its claims (``queue``);
workers (``worker``); the scheduler, the system refresh schedule and scheduled runs
(``scheduler``, ``schedule``, ``scheduled``); the background services of ``serve``
(``background``); read models of runs (``views``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.

The family's names load on first use (``__getattr__`` below): ``segsync runs list`` reads
``list_runs`` from :mod:`~segsync.services.runs.history` without importing the run engine that
:mod:`~segsync.services.runs.manage` needs. Type checkers see the plain imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segsync.services.runs.approval import approve_run, dismiss_run
    from segsync.services.runs.history import duration, get_run, list_runs, run_json
    from segsync.services.runs.manage import (
        RunProgress,
        RunRecord,
        cancel_run,
        execute_started,
        rejects,
        run_all,
        run_export,
        spawn_background_run,
        start_run,
        write_rejects_csv,
    )
    from segsync.services.runs.undo import queue_undo

_HISTORY = {"duration", "get_run", "list_runs", "run_json"}
_APPROVAL = {"approve_run", "dismiss_run"}
_UNDO = {"queue_undo"}

__all__ = [
    "RunProgress",
    "RunRecord",
    "approve_run",
    "cancel_run",
    "dismiss_run",
    "duration",
    "execute_started",
    "get_run",
    "list_runs",
    "queue_undo",
    "rejects",
    "run_all",
    "run_export",
    "run_json",
    "spawn_background_run",
    "start_run",
    "write_rejects_csv",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = (
        "history"
        if name in _HISTORY
        else "approval"
        if name in _APPROVAL
        else "undo"
        if name in _UNDO
        else "manage"
    )
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
