"""Notices to administrators about exports (T4): what they say and when one is due.

One notice per state change: when an export fails for good, and once when it succeeds again.
A run's *outcome* here is only ``"ok"`` (Successful) or ``"failed"`` (Failure — retries
exhausted or a fatal error). Transient failures that retries absorbed never reach this point,
and runs that end Skipped or Canceled do not change the export's notice state: callers pass
nothing for them and keep the previous outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

Outcome = Literal["ok", "failed"]


class NoticeKind(StrEnum):
    """What happened to the export. The value is the webhook's ``X-Segsync-Event``."""

    EXPORT_FAILED = "export_failed"
    EXPORT_RECOVERED = "export_recovered"
    EXPORT_HELD = "export_held"
    """A run was held by the blast-radius hold: nothing was sent until someone approves it.
    Sent for every held run, like a failure, whatever the export's state."""


def notice_for_transition(previous: Outcome | None, new: Outcome) -> NoticeKind | None:
    """The notice due when an export's last outcome goes from ``previous`` to ``new``.

    ``previous`` is None when the export never finished a run (or the state was lost). A first
    run that fails notifies; a first run that succeeds does not (nothing to recover from).
    Repeated failures notify once; the first success after a failure notifies once.
    """
    if new == "failed":
        return NoticeKind.EXPORT_FAILED if previous != "failed" else None
    return NoticeKind.EXPORT_RECOVERED if previous == "failed" else None


@dataclass(frozen=True)
class Notice:
    """One notice, as channels deliver it and the metadata DB keeps it.

    ``run_id`` is the run's id as ``segsync runs show`` takes it; ``url`` links to the run's page
    when the web UI's address is known.
    """

    kind: NoticeKind
    export_name: str
    run_id: str | int
    message: str
    occurred_at: datetime
    url: str | None = None

    @property
    def subject(self) -> str:
        """The one-line summary, e.g. ``[segsync] Export 'Newsletter' failed``."""
        if self.kind is NoticeKind.EXPORT_HELD:
            return f"[segsync] Export '{self.export_name}' held: a run waits for approval"
        verb = "failed" if self.kind is NoticeKind.EXPORT_FAILED else "recovered"
        return f"[segsync] Export '{self.export_name}' {verb}"

    def body_text(self) -> str:
        """The plain-text body of an email notice."""
        when = self.occurred_at.isoformat(timespec="seconds")
        if self.kind is NoticeKind.EXPORT_FAILED:
            headline = f"The export '{self.export_name}' failed and will not be retried."
        elif self.kind is NoticeKind.EXPORT_HELD:
            headline = (
                f"A run of the export '{self.export_name}' was held: its plan would change "
                "the lists too much. Nothing was sent; approve or dismiss it."
            )
        else:
            headline = f"The export '{self.export_name}' succeeded again after failing."
        lines = [headline, "", f"Run: {self.run_id}", f"When: {when}", "", self.message]
        if self.url:
            lines += ["", f"Details: {self.url}"]
        lines += ["", "-- ", "segsync sends one notice per change of an export's state."]
        return "\n".join(lines) + "\n"

    def to_payload(self) -> dict[str, object]:
        """The JSON document a webhook receives (see docs/notifications.md)."""
        return {
            "event": self.kind.value,
            "export": self.export_name,
            "run_id": self.run_id,
            "message": self.message,
            "occurred_at": self.occurred_at.isoformat(),
            "url": self.url,
        }
