"""Repairing the drift a verify found (docs/exports.md "Verify"), in the fewest requests:

1. a list deleted by hand (or never made) is made again (``ensure_list``) and recorded;
   the sync state forgets the memberships it held for the old list;
2. a list renamed by hand is kept: its new title is recorded, so it is no longer drift;
3. missing members go in bulk upserts, each item the contact's full mapped payload with the
   list's id, packed into the fewest batches (:func:`segsync.domain.plan.pack`);
4. orphans are removed from their lists (one request each: Autopilot has no bulk removal);
5. the sync state is brought in line with what was confirmed: acknowledged contacts and
   memberships recorded, removed memberships forgotten, memberships read on a list and in
   its segment recorded, and memberships on no list and in no segment forgotten.

Unsubscribed members are never touched, and a repair sends no ``unsubscribed`` value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segsync.destinations.base import Destination, UpsertItem
from segsync.destinations.registry import capabilities
from segsync.domain.drift import DriftReport, ListState
from segsync.domain.plan import list_title, pack
from segsync.services.context import ServiceContext
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.removals import remove_memberships
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.sync import SyncStateRepository

__all__ = ["Repair", "repair_drift"]


@dataclass
class Repair:
    """What a repair did."""

    lists_created: int = 0
    lists_renamed: int = 0
    added: int = 0
    removed: int = 0
    rejected: int = 0
    batches: int = 0
    planned_requests: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lists_created": self.lists_created,
            "lists_renamed": self.lists_renamed,
            "added": self.added,
            "removed": self.removed,
            "rejected": self.rejected,
            "batches": self.batches,
            "planned_requests": self.planned_requests,
        }

    def describe(self) -> str:
        return (
            f"{self.lists_created:,} list(s) made again, {self.added:,} member(s) added in "
            f"{self.batches:,} batch(es), {self.removed:,} orphan(s) removed, "
            f"{self.lists_renamed:,} new title(s) kept, {self.rejected:,} refused"
        )


async def repair_drift(
    ctx: ServiceContext,
    destination: Destination,
    target: RunTarget,
    report: DriftReport,
    scan: MemberScan,
    members: Mapping[str, Mapping[str, bool] | None],
    *,
    on_progress: Callable[[], Awaitable[None]],
) -> Repair:
    """Fix ``report``'s drift (see the module docstring). ``scan`` holds the payloads of the
    missing members; ``members`` the lists as read (segment key → email → unsubscribed)."""
    outcome = Repair()
    export_id = target.export_id
    list_ids: dict[str, str] = {}
    for item in report.lists:
        if item.list_gone:
            title = list_title(item.segment_name, target.list_prefix)
            list_ids[item.segment_key] = await destination.ensure_list(title)
            outcome.lists_created += 1
            await asyncio.to_thread(_list_remade, ctx, export_id, item.segment_key,
                                    list_ids[item.segment_key], title)  # fmt: skip
            continue
        assert item.list_id is not None
        list_ids[item.segment_key] = item.list_id
        if item.state is ListState.RENAMED and item.found_title is not None:
            outcome.lists_renamed += 1
            await asyncio.to_thread(_save_title, ctx, export_id, item.segment_key,
                                    item.list_id, item.found_title)  # fmt: skip

    items: list[tuple[str, UpsertItem, str]] = []  # (segment, item, payload hash)
    for item in report.lists:
        for email in item.missing:
            entry = scan.entries[email]
            upsert = UpsertItem(email, entry.fields, entry.custom, list_ids[item.segment_key])
            items.append((item.segment_key, upsert, entry.payload_hash))
    items.sort(key=lambda entry: entry[1].email)
    max_batch = capabilities(target.connection_type).max_batch_size
    batches = pack(items, key=lambda entry: entry[1].email, max_batch=max_batch)
    removals = [(item.segment_key, email) for item in report.lists for email in item.orphans]
    outcome.batches = len(batches)
    outcome.planned_requests = outcome.lists_created + len(batches) + len(removals)

    intents = [(int(segment), upsert.email) for segment, upsert, _ in items]
    sent = [(upsert.email, digest) for _, upsert, digest in items]
    await asyncio.to_thread(_intend, ctx, export_id, intents, sent)
    outgoing = ([entry[1] for entry in batch] for batch in batches)
    async for index, result in destination.upsert_batches(outgoing):
        batch = batches[index]
        hashes: dict[str, str] = {}
        added: list[tuple[int, str]] = []
        for (segment, upsert, digest), answer in zip(batch, result.outcomes, strict=True):
            if not answer.ok:
                outcome.rejected += 1
                continue
            hashes[upsert.email] = digest
            added.append((int(segment), upsert.email))
        outcome.added += len(added)
        await asyncio.to_thread(_acknowledged, ctx, export_id, hashes, added)
        await on_progress()
    if outcome.rejected:
        outcome.warnings.append(
            f"{outcome.rejected:,} missing member(s) were refused by "
            f"{target.connection_type.capitalize()} and are still missing"
        )

    async def commit(done: list[tuple[str, str]], were_members: list[tuple[str, str]]) -> None:
        outcome.removed += len(were_members)
        pairs = [(int(segment), email) for segment, email in done]
        await asyncio.to_thread(_removed, ctx, export_id, pairs)
        await on_progress()

    async def intend(memberships: Sequence[tuple[str, str]]) -> None:
        pairs = [(int(segment), email) for segment, email in memberships]
        await asyncio.to_thread(_intend_removals, ctx, export_id, pairs)

    await remove_memberships(
        destination, removals, list_ids, commit=commit, after_commit=lambda: None,
        stop=lambda: False, intend=intend,
    )  # fmt: skip
    await asyncio.to_thread(_reconcile, ctx, export_id, report, scan, members)
    return outcome


def _list_remade(
    ctx: ServiceContext, export_id: int, segment: str, list_id: str, title: str
) -> None:
    with ctx.db.session() as session:
        ExportRepository(session).save_list(export_id, int(segment), list_id, title, now=ctx.now())
        sync = SyncStateRepository(session)
        stale = [(s, e) for s, e in _all_memberships(sync, export_id) if s == int(segment)]
        sync.remove_memberships(export_id, stale)


def _save_title(
    ctx: ServiceContext, export_id: int, segment: str, list_id: str, title: str
) -> None:
    with ctx.db.session() as session:
        ExportRepository(session).save_list(export_id, int(segment), list_id, title, now=ctx.now())


def _acknowledged(
    ctx: ServiceContext, export_id: int, hashes: dict[str, str], added: list[tuple[int, str]]
) -> None:
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        sync.record_contacts(export_id, hashes, now=ctx.now())
        sync.record_memberships(export_id, added)


def _intend(
    ctx: ServiceContext,
    export_id: int,
    memberships: list[tuple[int, str]],
    sent: list[tuple[str, str]],
) -> None:
    """Write-ahead: what the upserts may create is pending before they leave, and the known
    contacts whose fields they change (``sent``: email and hash) are unconfirmed."""
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        sync.record_intents(
            export_id, [email for _, email in memberships], memberships, now=ctx.now()
        )
        sync.unconfirm(export_id, sent)


def _intend_removals(ctx: ServiceContext, export_id: int, pairs: list[tuple[int, str]]) -> None:
    """Write-ahead: memberships about to be removed are pending until the removal is confirmed."""
    with ctx.db.session() as session:
        SyncStateRepository(session).mark_pending(export_id, pairs)


def _all_memberships(sync: SyncStateRepository, export_id: int) -> set[tuple[int, str]]:
    """Known and pending memberships."""
    return sync.memberships(export_id) | sync.memberships(export_id, pending=True)


def _removed(ctx: ServiceContext, export_id: int, pairs: list[tuple[int, str]]) -> None:
    with ctx.db.session() as session:
        SyncStateRepository(session).remove_memberships(export_id, pairs)


def _reconcile(
    ctx: ServiceContext,
    export_id: int,
    report: DriftReport,
    scan: MemberScan,
    members: Mapping[str, Mapping[str, bool] | None],
) -> None:
    """Memberships read on a list and in its segment are recorded (a pending one becomes known);
    memberships the state holds, known or pending, that are on no list and in no segment are
    forgotten (lists that still exist only)."""
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        known = sync.memberships(export_id)
        maybe = _all_memberships(sync, export_id)
        confirm: list[tuple[int, str]] = []
        forget: list[tuple[int, str]] = []
        for item in report.lists:
            on_list = members.get(item.segment_key)
            if item.list_gone or on_list is None:
                continue
            segment = int(item.segment_key)
            for email in on_list:
                entry = scan.entries.get(email)
                wanted = entry is not None and item.segment_key in entry.segments
                if wanted and (segment, email) not in known:
                    confirm.append((segment, email))
            for s, email in maybe:
                if s != segment or email in on_list:
                    continue
                entry = scan.entries.get(email)
                if entry is None or item.segment_key not in entry.segments:
                    forget.append((s, email))
        sync.record_memberships(export_id, confirm)
        sync.remove_memberships(export_id, forget)
