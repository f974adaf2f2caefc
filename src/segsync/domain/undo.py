"""Undo a run (docs/exports.md "Undo a run"): the plan that reverses what a run changed in the
destination, from its change record — pure logic, no I/O.

What the run did, and what the undo plans:

* ``added`` a membership → remove it; when the row also carries the values before
  (``previous``), the contact was updated too → put those values back;
* ``updated`` a contact's mapped values → put the values before back (unknown values before
  cannot be put back: the contact is left as it is and counted in ``unknown_previous``);
* ``removed`` a membership → add it back, with the values to restore if any, else the
  contact's values as the sync state last acknowledged them;
* ``refused`` → nothing (nothing changed).

The plan is made against the sync state as it is now, so an undo that crashed part-way and
resumes plans only what is left: a membership already removed is not removed again, one
already back is not added again, values already restored are not sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.payload import payload_hash
from segsync.domain.plan import (
    MAX_BATCH,
    ListCounts,
    PlanCounts,
    SyncPlan,
    UpsertItem,
    pack,
)
from segsync.domain.sync_state import SyncStateView


@dataclass(frozen=True)
class Change:
    """One row of a run's change record, as the undo reads it. ``segment`` is the segment key
    of the list (``None`` for a contact-only update); ``fields``/``previous`` are
    ``{"fields": {...}, "custom": {...}}``."""

    action: str
    email: str
    segment: str | None
    fields: Mapping[str, Any] | None = None
    previous: Mapping[str, Any] | None = None
    profile_id: str | None = None


@dataclass
class UndoPlan:
    """The plan, and what the undo leaves alone: changes on lists no longer in the export, and
    updates whose values before are unknown."""

    plan: SyncPlan
    other_lists: int = 0
    unknown_previous: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    """Every person the undo would change."""


def _payload(values: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    values = values or {}
    return dict(values.get("fields") or {}), dict(values.get("custom") or {})


def build_undo_plan(
    changes: Iterable[Change],
    state: SyncStateView,
    *,
    segments: Iterable[str],
    current: Mapping[str, Mapping[str, Any] | None],
    max_batch: int = MAX_BATCH,
) -> UndoPlan:
    """The plan that reverses ``changes``. ``segments``: the export's segment keys now;
    ``current``: email → the values the sync state last acknowledged (for memberships added
    back without values to restore)."""
    keys = tuple(sorted(set(segments)))
    wanted = set(keys)
    restore: dict[str, Mapping[str, Any]] = {}
    profile: dict[str, str | None] = {}
    add_back: dict[str, set[str]] = {}
    remove: set[tuple[str, str]] = set()
    result = UndoPlan(plan=_empty(keys, state))
    for change in changes:
        email = change.email
        if change.action not in ("added", "updated", "removed"):
            continue
        if change.segment is not None and change.segment not in wanted:
            result.other_lists += 1
            continue
        profile.setdefault(email, change.profile_id)
        if change.action == "removed" and change.segment is not None:
            add_back.setdefault(email, set()).add(change.segment)
            continue
        if change.action == "added" and change.segment is not None:
            remove.add((change.segment, email))
        if change.previous is not None:
            if change.previous != change.fields:
                restore[email] = change.previous
        elif change.action == "updated":
            result.unknown_previous.add(email)

    fresh = {key for key in keys if state.list_ids.get(key) is None}
    known = state.memberships
    per_list = {key: ListCounts() for key in keys}
    items: list[UpsertItem] = []
    counts = PlanCounts()
    for email in sorted(set(restore) | set(add_back)):
        values = restore.get(email)
        if values is not None:
            fields, custom = _payload(values)
            digest = payload_hash(fields, custom)
        else:
            fields, custom = _payload(current.get(email))
            digest = state.hashes.get(email) or payload_hash(fields, custom)
        lists = sorted(
            s for s in add_back.get(email, set()) if s in fresh or (s, email) not in known
        )
        targets: list[str | None] = list(lists)
        changed = values is not None and state.hashes.get(email) != digest
        if changed and not targets:
            targets = [None]
        if not targets:
            continue
        counts.contacts += 1
        counts.updated += 1 if changed else 0
        counts.new_memberships += len(lists)
        for segment in lists:
            per_list[segment].to_add += 1
        items.extend(
            UpsertItem(email, fields, custom, target, digest, profile.get(email))
            for target in targets
        )
        result.emails.add(email)
    maybe = known | set(state.pending)
    removals = sorted(
        (m for m in remove if m[0] not in fresh and m in maybe), key=lambda m: (m[1], m[0])
    )
    for segment, email in removals:
        per_list[segment].to_remove += 1
        result.emails.add(email)
    sizes = {key: 0 for key in keys}
    for segment, _ in maybe:
        if segment in sizes:
            sizes[segment] += 1
    for key in keys:
        line = per_list[key]
        line.members = max(0, sizes[key] + line.to_add - line.to_remove)
    counts.removals = len(removals)
    counts.items = len(items)
    list_ids = {key: state.list_ids.get(key) for key in keys}
    result.plan = SyncPlan(
        segments=keys,
        list_ids=list_ids,
        lists_to_ensure=sorted(k for k in fresh if per_list[k].to_add),
        batches=pack(items, key=lambda item: item.email, max_batch=max_batch),
        ordered=items,
        removals=removals,
        counts=counts,
        per_list=per_list,
    )
    return result


def _empty(keys: tuple[str, ...], state: SyncStateView) -> SyncPlan:
    return SyncPlan(
        segments=keys,
        list_ids={key: state.list_ids.get(key) for key in keys},
        lists_to_ensure=[],
        batches=[],
        removals=[],
        counts=PlanCounts(),
        per_list={key: ListCounts() for key in keys},
    )
