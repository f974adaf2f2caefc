"""Run states and counts (X8, X9) and the JSON run record of docs/requirements.md.

Statuses and the moves between them::

    queued ──▶ processing ──▶ successful | failure | skipped | canceled | held
      │  ▲         │                                                       │
      │  └─────────┘  (a run whose worker died goes back to the queue and resumes)
      └──▶ skipped | failure | canceled   (before it started: a segment failed, no connection …)
                                                            held ──▶ queued (approved)
                                                            held ──▶ canceled (dismissed)

The four outcomes are final: a finished run never changes status again. **Held** ends the run
too (nothing was sent: its plan would change too much, docs/exports.md "Blast-radius hold"),
but it is the one end that may move on: approved, the run is queued again and sends its plan;
dismissed, it ends Canceled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from segsync.errors import Conflict, InputError


class RunStatus(StrEnum):
    """A run's status (X8). ``label`` is how users see it: "Successful"."""

    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCESSFUL = "successful"
    FAILURE = "failure"
    SKIPPED = "skipped"
    CANCELED = "canceled"
    HELD = "held"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended (successful, failure, skipped, canceled or held)."""
        return self in _FINAL

    @property
    def label(self) -> str:
        return self.value.capitalize()

    def can_become(self, new: RunStatus) -> bool:
        """Whether a run in this status may move to ``new``."""
        return new in _TRANSITIONS[self]


_FINAL = frozenset(
    {
        RunStatus.SUCCESSFUL,
        RunStatus.FAILURE,
        RunStatus.SKIPPED,
        RunStatus.CANCELED,
        RunStatus.HELD,
    }
)
_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.PROCESSING, RunStatus.SKIPPED, RunStatus.FAILURE, RunStatus.CANCELED}
    ),
    RunStatus.PROCESSING: frozenset({RunStatus.QUEUED} | _FINAL),
    **{status: frozenset() for status in _FINAL},
    RunStatus.HELD: frozenset({RunStatus.QUEUED, RunStatus.CANCELED}),
}


def check_transition(current: RunStatus, new: RunStatus, run_id: object = None) -> None:
    """Raise :class:`Conflict` unless a run may move from ``current`` to ``new``."""
    if current.can_become(new):
        return
    name = f"run {run_id}" if run_id is not None else "the run"
    if current.is_final:
        raise Conflict(f"{name} already ended ({current.label}); it cannot become {new.label}")
    raise Conflict(f"{name} is {current.label}; it cannot become {new.label}")


@dataclass
class RunCounts:
    """The counts a run shows (X9). ``members``: rows read from the segments (people, before
    setting aside invalid emails and duplicates); ``invalid``: empty or invalid emails;
    ``duplicates``: further rows with an email already seen; ``added``/``updated``/``unchanged``:
    distinct valid contacts by what they needed; ``removed``: list memberships removed;
    ``rejected``: contacts Autopilot (or value conversion) refused; ``requests``: HTTP requests
    made to the destination, retries included."""

    members: int = 0
    invalid: int = 0
    duplicates: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: int = 0
    requests: int = 0

    def to_dict(self) -> dict[str, int]:
        # Not dataclasses.asdict: it deep-copies each value, a tenth of a 500-run list's time.
        return {name: getattr(self, name) for name in _COUNT_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunCounts:
        """Missing counts are 0 and unknown keys are ignored (records written by other versions);
        a count that is not a non-negative whole number is an :class:`InputError`."""
        values: dict[str, int] = {}
        for name in _COUNT_NAMES:
            value = (data or {}).get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"run count {name!r} must be a whole number ≥ 0, got {value!r}")
            values[name] = value
        return cls(**values)


_COUNT_NAMES = tuple(f.name for f in fields(RunCounts))


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def run_record(
    run_id: int | str,
    status: RunStatus,
    counts: RunCounts,
    started_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    message: str | None,
) -> dict[str, Any]:
    """The run record of docs/requirements.md (``exports run --json``): ``id``, ``status``,
    ``counts``, ``started_at``, ``ended_at`` (ISO-8601 UTC with ``Z``; naive times are taken as
    UTC, ``None`` while unknown) and ``message``."""
    return {
        "id": run_id,
        "status": status.value,
        "counts": counts.to_dict(),
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "message": message,
    }


def duration_seconds(started_at: dt.datetime | None, ended_at: dt.datetime | None) -> float | None:
    """Seconds between start and end, or ``None`` while either is unknown."""
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds()
