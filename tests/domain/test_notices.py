"""When a notice is due (T4): one per change of an export's state, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segsync.domain.notices import Notice, NoticeKind, Outcome, notice_for_transition

FAILED = NoticeKind.EXPORT_FAILED
RECOVERED = NoticeKind.EXPORT_RECOVERED


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (None, "failed", FAILED),  # the very first run fails: notify
        (None, "ok", None),  # nothing to recover from
        ("ok", "failed", FAILED),
        ("failed", "failed", None),  # still failing: already notified
        ("failed", "ok", RECOVERED),
        ("ok", "ok", None),
    ],
)
def test_notice_for_transition(
    previous: Outcome | None, new: Outcome, expected: NoticeKind | None
) -> None:
    assert notice_for_transition(previous, new) is expected


def test_a_sequence_of_outcomes_notifies_once_per_state_change() -> None:
    outcomes: list[Outcome] = ["ok", "failed", "failed", "failed", "ok", "ok", "failed", "ok"]
    previous: Outcome | None = None
    sent = []
    for outcome in outcomes:
        kind = notice_for_transition(previous, outcome)
        if kind is not None:
            sent.append(kind)
        previous = outcome
    assert sent == [FAILED, RECOVERED, FAILED, RECOVERED]


def test_notice_texts() -> None:
    notice = Notice(
        kind=FAILED,
        export_name="Newsletter",
        run_id=42,
        message="the Autopilot API key was rejected (401); edit the connection and press Connect",
        occurred_at=datetime(2026, 3, 29, 6, 0, 5, tzinfo=UTC),
        url="http://segsync.local/runs/42",
    )
    assert notice.subject == "[segsync] Export 'Newsletter' failed"
    body = notice.body_text()
    assert "Run: 42" in body
    assert "When: 2026-03-29T06:00:05+00:00" in body
    assert "the Autopilot API key was rejected (401)" in body
    assert "Details: http://segsync.local/runs/42" in body
    assert notice.to_payload() == {
        "event": "export_failed",
        "export": "Newsletter",
        "run_id": 42,
        "message": notice.message,
        "occurred_at": "2026-03-29T06:00:05+00:00",
        "url": "http://segsync.local/runs/42",
    }
    recovered = Notice(RECOVERED, "Newsletter", "r-7", "42 contacts updated", notice.occurred_at)
    assert recovered.subject == "[segsync] Export 'Newsletter' recovered"
    assert "Details:" not in recovered.body_text()
