"""Drift between an export's segments and its lists as the destination holds them (verify).

Pure: it compares what was read back from the destination with what the segments hold now.
Per list (one per segment of the export):

* **orphans**: on the list, not in the segment now (a person added by hand, or who left the
  segment while the export's removal policy is add-only — then they are ``kept``, not drift);
* **missing**: in the segment, not on the list (removed by hand, or never added);
* **deleted**: the list segsync made is gone from the destination (every member is missing);
  **never created**: the export has no list for the segment yet (same, until a run makes it);
* **renamed**: the list is there under another title than the one segsync gave it;
* **unsubscribed**: members the destination shows as unsubscribed. They are reported, never
  counted as drift and never touched by a repair (segsync does not re-subscribe anyone).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from segsync.domain.plan import RemovalPolicy

PAGE_SIZE = 100
"""Members per page when a list is read back (Autopilot's page size)."""
SAMPLE = 50
"""How many emails of each kind a report keeps per list (the counts are always whole)."""


class ListState(StrEnum):
    """What became of a segment's list."""

    OK = "ok"
    RENAMED = "renamed"
    DELETED = "deleted"
    NEVER_CREATED = "never_created"


@dataclass(frozen=True)
class VerifyEstimate:
    """The requests a verify is expected to make before it starts: one look at the lists, then
    each list read page by page (from the members the sync state says it has)."""

    lists: int
    pages: int

    @property
    def requests(self) -> int:
        return 1 + self.pages

    def to_dict(self) -> dict[str, int]:
        return {"lists": self.lists, "pages": self.pages, "requests": self.requests}


def estimate(expected_members: Mapping[str, int], page_size: int = PAGE_SIZE) -> VerifyEstimate:
    """The estimate for lists expected to hold ``expected_members`` (segment key → members):
    at least one page per list, plus the list lookup."""
    pages = sum(max(1, -(-count // page_size)) for count in expected_members.values())
    return VerifyEstimate(lists=len(expected_members), pages=pages)


@dataclass
class ListDrift:
    """The drift of one segment's list. Email lists are sorted."""

    segment_key: str
    segment_name: str
    title: str
    list_id: str | None
    state: ListState
    found_title: str | None = None
    members_read: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)

    @property
    def list_gone(self) -> bool:
        return self.state in (ListState.DELETED, ListState.NEVER_CREATED)

    @property
    def drift(self) -> int:
        """How many things are out of place: orphans, missing members, and the list itself when
        it was deleted or renamed by hand."""
        by_hand = self.state in (ListState.DELETED, ListState.RENAMED)
        return len(self.orphans) + len(self.missing) + (1 if by_hand else 0)

    def to_dict(self, sample: int = SAMPLE) -> dict[str, Any]:
        return {
            "segment": self.segment_name,
            "segment_id": int(self.segment_key) if self.segment_key.isdigit() else self.segment_key,
            "title": self.title,
            "list_id": self.list_id,
            "state": self.state.value,
            "found_title": self.found_title,
            "members_read": self.members_read,
            "drift": self.drift,
            "orphans": len(self.orphans),
            "missing": len(self.missing),
            "kept": len(self.kept),
            "unsubscribed": len(self.unsubscribed),
            "orphan_emails": self.orphans[:sample],
            "missing_emails": self.missing[:sample],
            "kept_emails": self.kept[:sample],
            "unsubscribed_emails": self.unsubscribed[:sample],
        }


def list_drift(
    *,
    segment_key: str,
    segment_name: str,
    title: str,
    stored: tuple[str, str] | None,
    remote_titles: Mapping[str, str] | None,
    members: Mapping[str, bool] | None,
    desired: Set[str],
    removal: RemovalPolicy,
) -> ListDrift:
    """Compare one list with its segment.

    ``stored``: the ``(list_id, title)`` segsync recorded for the segment (None: no list yet).
    ``remote_titles``: list id → title of every list the destination has (None when the
    destination cannot list them; then only a list whose members cannot be read is deleted).
    ``members``: email (normalised) → unsubscribed, as read back (None: the list is gone).
    ``desired``: the segment's members now (normalised emails, as a run would send them).
    """
    if stored is None:
        return ListDrift(
            segment_key,
            segment_name,
            title,
            None,
            ListState.NEVER_CREATED,
            missing=sorted(desired),
        )
    list_id, stored_title = stored
    gone = members is None or (remote_titles is not None and list_id not in remote_titles)
    if gone:
        return ListDrift(
            segment_key, segment_name, stored_title, list_id, ListState.DELETED,
            missing=sorted(desired),
        )  # fmt: skip
    assert members is not None
    found = None if remote_titles is None else remote_titles.get(list_id)
    renamed = found is not None and found != stored_title
    result = ListDrift(
        segment_key,
        segment_name,
        stored_title,
        list_id,
        ListState.RENAMED if renamed else ListState.OK,
        found_title=found,
        members_read=len(members),
    )
    for email, unsubscribed in sorted(members.items()):
        if unsubscribed:
            result.unsubscribed.append(email)
        elif email not in desired:
            (result.kept if removal is RemovalPolicy.ADD_ONLY else result.orphans).append(email)
    result.missing = sorted(email for email in desired if email not in members)
    return result


@dataclass
class DriftReport:
    """Every list's drift, and what the verify cost."""

    lists: list[ListDrift]
    estimate: VerifyEstimate

    @property
    def drift(self) -> int:
        return sum(item.drift for item in self.lists)

    def totals(self) -> dict[str, int]:
        return {
            "orphans": sum(len(item.orphans) for item in self.lists),
            "missing": sum(len(item.missing) for item in self.lists),
            "deleted_lists": sum(1 for item in self.lists if item.state is ListState.DELETED),
            "renamed_lists": sum(1 for item in self.lists if item.state is ListState.RENAMED),
            "lists_never_created": sum(
                1 for item in self.lists if item.state is ListState.NEVER_CREATED
            ),
            "kept": sum(len(item.kept) for item in self.lists),
            "unsubscribed": sum(len(item.unsubscribed) for item in self.lists),
        }


def describe_drift(totals: Mapping[str, int]) -> str:
    """``2 orphan(s), 1 missing member(s), 1 list deleted by hand`` (or ``no drift``)."""
    parts = []
    words = (
        ("orphans", "orphan(s) on a list but not in its segment"),
        ("missing", "missing member(s) in a segment but not on its list"),
        ("deleted_lists", "list(s) deleted by hand"),
        ("renamed_lists", "list(s) renamed by hand"),
    )
    for key, label in words:
        if totals.get(key):
            parts.append(f"{totals[key]:,} {label}")
    return ", ".join(parts) if parts else "no drift"


def normalised_members(pairs: Collection[tuple[str, bool]]) -> dict[str, bool]:
    """email → unsubscribed, emails lower-cased and trimmed (a contact listed twice is
    unsubscribed if either entry says so)."""
    result: dict[str, bool] = {}
    for email, unsubscribed in pairs:
        key = email.strip().lower()
        if key:
            result[key] = result.get(key, False) or unsubscribed
    return result
