"""Run statuses (X8), counts (X9) and the JSON run record of docs/requirements.md."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from segsync.domain.runs import (
    RunCounts,
    RunStatus,
    check_transition,
    duration_seconds,
    run_record,
)
from segsync.errors import Conflict, InputError

Q, P, S, F, K, C, H = (
    RunStatus.QUEUED,
    RunStatus.PROCESSING,
    RunStatus.SUCCESSFUL,
    RunStatus.FAILURE,
    RunStatus.SKIPPED,
    RunStatus.CANCELED,
    RunStatus.HELD,
)
ALLOWED = {
    (Q, P),
    (Q, K),
    (Q, F),
    (Q, C),
    (P, S),
    (P, F),
    (P, K),
    (P, C),
    (P, Q),
    (P, H),  # the plan would change too much: nothing is sent
    (H, Q),  # approved: queued again to send its plan
    (H, C),  # dismissed
}


@pytest.mark.parametrize("current", list(RunStatus))
@pytest.mark.parametrize("new", list(RunStatus))
def test_transitions(current: RunStatus, new: RunStatus) -> None:
    assert current.can_become(new) is ((current, new) in ALLOWED)
    if (current, new) in ALLOWED:
        check_transition(current, new)
    else:
        with pytest.raises(Conflict):
            check_transition(current, new, run_id=7)


def test_final_statuses() -> None:
    assert {status for status in RunStatus if status.is_final} == {S, F, K, C, H}


def test_transition_messages() -> None:
    with pytest.raises(
        Conflict, match=r"^run 7 already ended \(Successful\); it cannot become Canceled$"
    ):
        check_transition(S, C, run_id=7)
    with pytest.raises(Conflict, match=r"^the run is Queued; it cannot become Successful$"):
        check_transition(Q, S)


def test_labels() -> None:
    assert [s.label for s in RunStatus] == [
        "Queued",
        "Processing",
        "Successful",
        "Failure",
        "Skipped",
        "Canceled",
        "Held",
    ]


def test_counts_round_trip() -> None:
    counts = RunCounts(
        members=10,
        invalid=1,
        duplicates=2,
        added=3,
        updated=1,
        unchanged=3,
        removed=1,
        rejected=1,
        requests=5,
    )
    data = counts.to_dict()
    assert list(data) == [
        "members",
        "invalid",
        "duplicates",
        "added",
        "updated",
        "unchanged",
        "removed",
        "rejected",
        "requests",
    ]
    assert RunCounts.from_dict(json.loads(json.dumps(data))) == counts


def test_counts_from_partial_or_newer_records() -> None:
    assert RunCounts.from_dict({"added": 2, "future_count": 9}) == RunCounts(added=2)
    assert RunCounts.from_dict(None) == RunCounts()


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_counts_refuse_bad_values(bad: object) -> None:
    with pytest.raises(InputError, match="run count 'added' must be a whole number"):
        RunCounts.from_dict({"added": bad})


def test_run_record_has_exactly_the_spec_keys() -> None:
    started = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    ended = dt.datetime(2026, 3, 1, 14, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    record = run_record(42, S, RunCounts(members=3, added=3, requests=2), started, ended, None)
    assert record == {
        "id": 42,
        "status": "successful",
        "counts": {
            "members": 3,
            "invalid": 0,
            "duplicates": 0,
            "added": 3,
            "updated": 0,
            "unchanged": 0,
            "removed": 0,
            "rejected": 0,
            "requests": 2,
        },
        "started_at": "2026-03-01T12:00:00Z",
        "ended_at": "2026-03-01T12:00:05Z",
        "message": None,
    }
    json.dumps(record)
    running = run_record(1, P, RunCounts(), dt.datetime(2026, 3, 1, 9, 0), None, "sending")
    assert running["started_at"] == "2026-03-01T09:00:00Z"
    assert running["ended_at"] is None


def test_duration() -> None:
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert duration_seconds(start, start + dt.timedelta(seconds=90.5)) == 90.5
    assert duration_seconds(start, None) is None
