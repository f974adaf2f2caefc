"""How a run explains itself: the plan summary stored on the run (dry runs print it, X11), and
the end of a run — its final status, counts and warnings, and the audit event of what left the
system (P3)."""

from __future__ import annotations

import logging
from typing import Any

from segsync.domain.plan import NO_LIST, SyncPlan, list_title, sample_payloads
from segsync.domain.runs import RunCounts, RunStatus, duration_seconds
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.sync.checkpoint import Checkpoint
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.runs import RunRecord, RunRepository

log = logging.getLogger(__name__)

SAMPLES_PER_LIST = 3


def plan_summary(plan: SyncPlan, target: RunTarget, *, with_samples: bool) -> dict[str, Any]:
    """The plan as JSON-ready data: counts, requests, and per list (segment) the members,
    memberships to add and to remove, and (dry runs) up to three payloads as they would be
    sent. ``updates_only`` holds samples of contacts updated without a new list membership."""
    samples = sample_payloads(plan, SAMPLES_PER_LIST) if with_samples else {}
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
        "batches": len(plan.batches),
        "lists_to_create": len(plan.lists_to_ensure),
        "requests_lower_bound": plan.requests_lower_bound,
        "removal_policy": target.removal.value,
        "lists": lists,
    }
    if with_samples:
        summary["updates_only"] = samples.get(NO_LIST, [])
    return summary


def finish_run(
    ctx: ServiceContext,
    run: RunRecord,
    target: RunTarget,
    checkpoint: Checkpoint,
    plan: SyncPlan | None,
    *,
    status: RunStatus,
    message: str,
    warnings: list[str],
) -> RunRecord:
    """End the run with ``status`` and write the audit event of what was sent (real runs)."""
    now = ctx.now()
    counts = checkpoint.counts
    with ctx.db.session() as session:
        record = RunRepository(session).finish(
            run.id,
            status,
            now=now,
            message=message,
            warnings=warnings,
            counts=counts,
            owner=checkpoint.owner,
        )
        if not run.dry_run:
            fields = ["Email", *(target_.spec for _, _, target_ in target.mapping.targets())]
            lists = [list_title(s.name, target.list_prefix) for s in target.segments]
            audit.record(
                session,
                at=now,
                actor=run.actor,
                action="export.run",
                target_type="export",
                target=target.export_name,
                summary=(
                    f"run {run.id} of export {target.export_name!r} ended {status.label}: "
                    f"{counts.added:,} added, {counts.updated:,} updated, {counts.removed:,} "
                    f"removed from lists, sent to {target.connection_type} connection "
                    f"{target.connection_name!r}"
                ),
                details={
                    "run_id": run.id,
                    "status": status.value,
                    "destination": target.connection_type,
                    "connection": target.connection_name,
                    "connection_id": target.connection_id,
                    "lists": lists,
                    "fields": fields,
                    "counts": counts.to_dict(),
                    "duration_seconds": duration_seconds(record.started_at, record.ended_at),
                    "sent_anything": plan is not None and counts.requests > 0,
                },
            )
    log.info("run %s of export %r ended %s: %s", run.id, target.export_name, status.label, message)
    checkpoint.emit("done")
    return record


def set_aside_warning(invalid: int, duplicates: int, rejected: int) -> str:
    parts = []
    if invalid:
        parts.append(f"{invalid:,} empty or invalid email(s)")
    if duplicates:
        parts.append(f"{duplicates:,} duplicate email(s)")
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
