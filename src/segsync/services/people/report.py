"""The answer to "explain a person" (docs/explain.md): plain records with ``to_dict`` for the
API and ``--json``; the CLI and the page render the same records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from segsync.segments.explain import FailedCondition

SENT = "sent"
DUPLICATE = "duplicate"
INVALID = "invalid"
OUTSIDE = "not in its segments"
KNOWN = "known"
PENDING = "pending"
ABSENT = "not on it"


def plain(value: Any) -> Any:
    """A profile value as JSON has it (dates and times as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class SegmentCheck:
    """One profile against one segment; ``failed`` says what kept it out; ``problem`` is set
    when the segment could not be evaluated (its definition no longer fits the data)."""

    segment_id: int
    segment: str
    member: bool
    failed: FailedCondition | None = None
    problem: str | None = None

    @property
    def reason(self) -> str | None:
        if self.problem is not None:
            return f"cannot be evaluated: {self.problem}"
        return None if self.failed is None else self.failed.sentence

    def to_dict(self) -> dict[str, Any]:
        failed = None
        if self.failed is not None:
            failed = self.failed.to_dict() | {"value": plain(self.failed.value)}
        return {
            "segment_id": self.segment_id,
            "segment": self.segment,
            "member": self.member,
            "reason": self.reason,
            "failed": failed,
        }


@dataclass(frozen=True)
class ExportStatus:
    """What an export makes of one profile: ``sent`` (its values are the contact's),
    ``duplicate`` (a lower profile id with the same email is sent instead), ``invalid`` or
    ``not in its segments``."""

    export: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"export": self.export, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class ProfileExplained:
    """A profile carrying the email: its raw value (in ``attribute``), the cleaned email or why
    it cannot be one, what each export makes of it, and its segments."""

    profile_id: str
    attribute: str
    raw: str
    cleaned: str | None
    problem: str | None
    exports: list[ExportStatus] = field(default_factory=list)
    segments: list[SegmentCheck] = field(default_factory=list)

    @property
    def cleaning(self) -> str:
        """How the raw value was cleaned, in words."""
        if self.cleaned is None:
            return f"set aside: {self.problem}"
        if self.cleaned == self.raw:
            return "used as it is"
        return f"trimmed and lower-cased to {self.cleaned}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "attribute": self.attribute,
            "raw": self.raw,
            "cleaned": self.cleaned,
            "problem": self.problem,
            "cleaning": self.cleaning,
            "exports": [item.to_dict() for item in self.exports],
            "segments": [item.to_dict() for item in self.segments],
        }


@dataclass(frozen=True)
class ListState:
    """The person on one list of an export, as the sync state records it."""

    segment_id: int
    segment: str
    list_title: str | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "segment": self.segment,
            "list": self.list_title,
            "state": self.state,
        }


@dataclass(frozen=True)
class ExportState:
    """The person in one export's sync state: the contact (known, pending or absent) and its
    lists."""

    export_id: int
    export: str
    connection: str | None
    contact: str
    synced_at: datetime | None
    lists: list[ListState]

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "export": self.export,
            "connection": self.connection,
            "contact": self.contact,
            "synced_at": _iso(self.synced_at),
            "lists": [item.to_dict() for item in self.lists],
        }


@dataclass(frozen=True)
class RunTouch:
    """A run that touched the person: a change it made (added, updated, removed, refused) or a
    record it set aside (invalid, merged, rejected, forgotten)."""

    run_id: int
    export: str
    at: datetime
    action: str
    list_title: str | None = None
    profile_id: str | None = None
    fields: list[str] = field(default_factory=list)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "export": self.export,
            "at": self.at.isoformat(),
            "action": self.action,
            "list": self.list_title,
            "profile_id": self.profile_id,
            "fields": self.fields,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ErasureLine:
    connection: str | None
    status: str
    requested_at: datetime
    done_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "status": self.status,
            "requested_at": self.requested_at.isoformat(),
            "done_at": _iso(self.done_at),
        }


@dataclass(frozen=True)
class PersonReport:
    """Everything segsync can say about one email. For a forgotten person (``forgotten``),
    only the erasure lines: nothing else about them is read or shown."""

    query: str
    email: str | None
    email_problem: str | None
    export: str | None
    forgotten: bool
    erasures: list[ErasureLine] = field(default_factory=list)
    profiles: list[ProfileExplained] = field(default_factory=list)
    profiles_note: str | None = None
    exports: list[ExportState] = field(default_factory=list)
    runs: list[RunTouch] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.forgotten:
            return (
                "this person was forgotten (erased): segsync never sends them again and shows "
                "nothing more about them"
            )
        found = len(self.profiles)
        text = f"{found} profile(s) carry this email" if found else "no profile carries this email"
        on = sum(1 for e in self.exports for line in e.lists if line.state != ABSENT)
        return f"{text}; on {on} list(s) in the sync state; {len(self.runs)} run record(s)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "email": self.email,
            "email_problem": self.email_problem,
            "export": self.export,
            "forgotten": self.forgotten,
            "summary": self.summary,
            "erasures": [item.to_dict() for item in self.erasures],
            "profiles": [item.to_dict() for item in self.profiles],
            "profiles_note": self.profiles_note,
            "exports": [item.to_dict() for item in self.exports],
            "runs": [item.to_dict() for item in self.runs],
        }
