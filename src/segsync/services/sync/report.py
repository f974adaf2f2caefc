"""How a run explains itself: the plan summary stored on the run (dry runs print it, X11), and
the messages and warnings it ends with."""

from __future__ import annotations

from typing import Any

from segsync.destinations.base import UpsertItem as OutgoingItem
from segsync.destinations.registry import destination_class
from segsync.domain.plan import NO_LIST, SyncPlan, list_title, sample_items
from segsync.domain.runs import RunCounts
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.target import RunTarget

SAMPLES_PER_LIST = 3


def _samples(plan: SyncPlan, target: RunTarget) -> dict[str, list[dict[str, Any]]]:
    """Sample payloads per list exactly as the destination would send them (its own
    serializer, :meth:`~segsync.destinations.base.Destination.preview`)."""
    preview = destination_class(target.connection_type).preview
    return {
        key: [
            preview(OutgoingItem(item.email, item.fields, item.custom, list_id))
            for item, list_id in items
        ]
        for key, items in sample_items(plan, SAMPLES_PER_LIST).items()
    }


def plan_summary(plan: SyncPlan, target: RunTarget, *, with_samples: bool) -> dict[str, Any]:
    """The plan as JSON-ready data: counts, requests, and per list (segment) the members,
    memberships to add and to remove, and (dry runs) up to three payloads as they would be
    sent. ``updates_only`` holds samples of contacts updated without a new list membership."""
    samples = _samples(plan, target) if with_samples else {}
    c = plan.counts
    lists = []
    for source in target.segments:
        counts = plan.per_list.get(source.key)
        list_id = plan.list_ids.get(source.key)
        entry: dict[str, Any] = {
            "segment": source.name,
            "segment_id": int(source.key),
            "title": list_title(source.name, target.list_prefix),
            "list_id": list_id,
            "new_list": list_id is None,
            "members": counts.members if counts else 0,
            "to_add": counts.to_add if counts else 0,
            "to_remove": counts.to_remove if counts else 0,
        }
        if with_samples:
            entry["samples"] = samples.get(source.key, [])
        lists.append(entry)
    summary: dict[str, Any] = {
        "contacts": c.contacts,
        "added": c.added,
        "updated": c.updated,
        "unchanged": c.unchanged,
        "new_memberships": c.new_memberships,
        "removals": c.removals,
        "items": c.items,
        "batches": plan.batch_count,
        "lists_to_create": len(plan.lists_to_ensure),
        "requests_lower_bound": plan.requests_lower_bound,
        "removal_policy": target.removal.value,
        "lists": lists,
    }
    if with_samples:
        summary["updates_only"] = samples.get(NO_LIST, [])
    return summary


def set_aside_warning(invalid: int, duplicates: int, rejected: int) -> str:
    parts = []
    if invalid:
        parts.append(f"{invalid:,} empty or invalid email(s)")
    if duplicates:
        parts.append(f"{duplicates:,} profile(s) merged into a contact with the same email")
    if rejected:
        parts.append(f"{rejected:,} value(s) that do not fit their field")
    return "set aside: " + ", ".join(parts) + "; list them with `segsync runs rejects`"


def forgotten_warning(count: int) -> str:
    return (
        f"not sent: {count:,} person(s) forgotten with `segsync forget` are still in the "
        "segments; remove them from the source data, or lift the suppression with "
        "`segsync erasures lift EMAIL` if they agreed to be contacted again"
    )


def dry_run_message(plan: SyncPlan) -> str:
    c = plan.counts
    return (
        f"dry run: would add {c.added:,}, update {c.updated:,} and leave {c.unchanged:,} "
        f"unchanged contact(s), add {c.new_memberships:,} and remove {c.removals:,} list "
        f"membership(s), in at least {plan.requests_lower_bound:,} request(s); nothing was sent"
    )


def done_message(counts: RunCounts) -> str:
    return (
        f"sent: {counts.added:,} added, {counts.updated:,} updated, {counts.unchanged:,} "
        f"unchanged, {counts.removed:,} removed from lists, {counts.rejected:,} rejected, in "
        f"{counts.requests:,} request(s)"
    )


def over_limit_message(target: RunTarget, contacts: int) -> str:
    return (
        f"skipped: the export's segments hold {contacts:,} distinct valid emails, more than the "
        f"contract limit of {target.contract_limit:,} of connection {target.connection_name!r}; "
        "nothing was sent. Narrow the segments or raise the connection's contract limit"
    )


def gave_up_message(target: RunTarget, error: str) -> str:
    return (
        f"{target.connection_type.capitalize()} kept failing after retries: {error}. Everything "
        "acknowledged so far is saved; run the export again to continue where it stopped"
    )


def key_rejected_message(target: RunTarget, error: str) -> str:
    """``error`` is the destination's own message, which already says that the key was
    rejected and how to fix it: said once, with the connection it is about."""
    return f"connection {target.connection_name!r}: {error}; then run the export again"


def refused_warning(target: RunTarget, refused: int, run_id: int) -> str:
    return (
        f"{refused:,} contact(s) were refused by {target.connection_type.capitalize()}; see "
        f"`segsync runs rejects {run_id} --csv FILE`"
    )


def stop_message(*, export_removed: bool) -> str:
    if export_removed:
        return "stopped: the export was removed; nothing more was sent"
    return "canceled: stopped after the batch in flight; what was acknowledged is saved"


def read_warnings(scan: MemberScan) -> list[str]:
    """What a run warns of once it has read the members: people set aside, people forgotten."""
    found: list[str] = []
    if scan.invalid or scan.duplicates or scan.conversion_rejected:
        found.append(set_aside_warning(scan.invalid, scan.duplicates, scan.conversion_rejected))
    if scan.forgotten:
        found.append(forgotten_warning(scan.forgotten))
    return found
