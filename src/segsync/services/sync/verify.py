"""Verify an export (docs/exports.md "Verify"): read its lists back from the destination,
compare them with what its segments hold now, and — for a repair — fix the drift
(:mod:`.repair`). One verify is one run of kind ``verify`` or ``repair``, executed by a worker
or by ``exports verify`` itself (:func:`execute_verify`, called for a claimed run).

The desired membership comes from the same read and clean stages a run uses
(:func:`.read.read_members`), so a verify and a run agree on who belongs on each list. Reading
is paged (one request per page of a list, plus one look at the account's lists); the estimate
of that cost is saved on the run before the first read, so the CLI can print it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from segsync.destinations.base import ConnectionConfig, Destination
from segsync.destinations.registry import create_destination
from segsync.domain.drift import (
    DriftReport,
    describe_drift,
    estimate,
    list_drift,
    normalised_members,
)
from segsync.domain.plan import list_title
from segsync.domain.runs import RunCounts, RunStatus
from segsync.errors import (
    AuthenticationFailed,
    Conflict,
    FatalError,
    NotFound,
    RetriableError,
    SegsyncError,
)
from segsync.services.connections.runtime import connection_config
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit
from segsync.services.sync.lease import LEASE_SECONDS
from segsync.services.sync.read import read_members
from segsync.services.sync.repair import Repair, repair_drift
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository
from segsync.storage.repositories.sync import SyncStateRepository

log = logging.getLogger(__name__)

VERIFY = "verify"
REPAIR = "repair"
KINDS = (VERIFY, REPAIR)

__all__ = ["KINDS", "REPAIR", "VERIFY", "VerifyParts", "execute_verify", "expected_members"]


@dataclass(frozen=True)
class VerifyParts:
    """What a verify talks to (tests replace the destination factory)."""

    open_destination: Callable[[str, ConnectionConfig], Destination] = create_destination
    lease_seconds: float = LEASE_SECONDS


def expected_members(
    ctx: ServiceContext, export_id: int, segment_keys: list[str]
) -> dict[str, int]:
    """Per segment key, the members the sync state says its list has or may have (known and
    pending memberships), for the estimate."""
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        memberships = sync.memberships(export_id) | sync.memberships(export_id, pending=True)
    counts = {key: 0 for key in segment_keys}
    for segment_id, _email in memberships:
        key = str(segment_id)
        if key in counts:
            counts[key] += 1
    return counts


class _Canceled(Exception):
    """A cancel was asked for (or the export was removed): stop at the next save."""


@dataclass
class _Verify:
    ctx: ServiceContext
    run: RunRecord
    target: RunTarget
    owner: str
    parts: VerifyParts
    tune: Callable[[ConnectionConfig], ConnectionConfig] | None
    destination: Destination | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def repair(self) -> bool:
        return self.run.kind == REPAIR

    @property
    def requests(self) -> int:
        return 0 if self.destination is None else self.destination.requests_made

    def _db(self, call: Callable[[RunRepository], Any]) -> Any:
        with self.ctx.db.session() as session:
            return call(RunRepository(session))

    async def _save(self, total: int, counts: RunCounts | None = None) -> None:
        expires = self.ctx.now() + timedelta(seconds=self.parts.lease_seconds)
        counts = counts or RunCounts(requests=self.requests)
        done = min(self.requests, total)

        def save(runs: RunRepository) -> tuple[bool, bool]:
            return runs.save_progress(
                self.run.id,
                owner=self.owner,
                expires_at=expires,
                counts=counts,
                items_done=done,
                items_total=total,
            )

        held, cancel = await asyncio.to_thread(self._db, save)
        if not held:
            raise FatalError(f"run {self.run.id} was taken over by another process")
        if cancel:
            raise _Canceled

    async def run_verify(self) -> RunRecord:
        try:
            status, message, report = await self._pipeline()
        except _Canceled:
            status, report = RunStatus.CANCELED, None
            message = "canceled: nothing more was read" + (" or changed" if self.repair else "")
        except AuthenticationFailed as err:
            status, report = RunStatus.FAILURE, None
            message = f"connection {self.target.connection_name!r}: {err.message}"
        except RetriableError as err:
            status = RunStatus.FAILURE
            message = f"{self.target.connection_type.capitalize()} kept failing: {err.message}"
            report = None
        except SegsyncError as err:
            status, message, report = RunStatus.FAILURE, err.message, None
        except Exception as err:
            log.exception("verify run %s failed unexpectedly", self.run.id)
            status, report = RunStatus.FAILURE, None
            message = f"unexpected error ({type(err).__name__}): {err}"
        finally:
            if self.destination is not None:
                await self.destination.aclose()
        try:
            return await asyncio.to_thread(self._end, status, message, report)
        except Conflict as err:  # another process holds the run now, or it already ended
            log.warning("verify run %s: not ended here: %s", self.run.id, err.message)
            return await asyncio.to_thread(self._db, lambda runs: runs.get(self.run.id))

    async def _pipeline(self) -> tuple[RunStatus, str, dict[str, Any] | None]:
        target = self.target
        keys = [source.key for source in target.segments]
        expected = await asyncio.to_thread(expected_members, self.ctx, target.export_id, keys)
        cost = estimate(expected)
        first = {"kind": self.run.kind, "estimate": cost.to_dict()}
        await asyncio.to_thread(self._db, lambda runs: runs.set_plan(self.run.id, first))
        await self._save(cost.requests)
        stored, suppressed = await asyncio.to_thread(self._stored)
        type_name, config = await asyncio.to_thread(
            connection_config, self.ctx, target.connection_id
        )
        if self.tune is not None:
            config = self.tune(config)
        self.destination = self.parts.open_destination(type_name, config)
        remote = await self.destination.existing_lists()
        members: dict[str, dict[str, bool] | None] = {}
        for source in target.segments:
            entry = stored.get(source.key)
            if entry is None or (remote is not None and entry[0] not in remote):
                members[source.key] = None
                continue
            members[source.key] = await self._read_list(entry[0])
            await self._save(cost.requests)

        def needs_payload(email: str, _digest: str, segment: str) -> bool:
            on_list = members.get(segment)
            return self.repair and (on_list is None or email not in on_list)

        scan = await asyncio.to_thread(
            read_members, self.ctx, target.segments, target.mapping, needs_payload, suppressed
        )
        desired: dict[str, set[str]] = {key: set() for key in keys}
        for email, contact in scan.entries.items():
            for segment in contact.segments:
                desired.setdefault(segment, set()).add(email)
        lists = [
            list_drift(
                segment_key=source.key,
                segment_name=source.name,
                title=list_title(source.name, target.list_prefix),
                stored=stored.get(source.key),
                remote_titles=remote,
                members=members[source.key],
                desired=desired[source.key],
                removal=target.removal,
            )
            for source in target.segments
        ]
        report = DriftReport(lists, cost)
        outcome: Repair | None = None
        if self.repair and report.drift + report.totals()["lists_never_created"]:
            outcome = await repair_drift(
                self.ctx,
                self.destination,
                target,
                report,
                scan,
                members,
                on_progress=self._progress,
            )
        return self._summary(report, outcome, members=scan.contacts)

    async def _progress(self) -> None:
        await self._save(max(self.requests, 1))

    async def _read_list(self, list_id: str) -> dict[str, bool] | None:
        assert self.destination is not None
        pairs: list[tuple[str, bool]] = []
        try:
            async for member in self.destination.list_members(list_id):
                pairs.append((member.email, member.raw.get("unsubscribed") is True))
        except NotFound:
            return None  # deleted by hand between the look at the lists and this read
        return normalised_members(pairs)

    def _stored(self) -> tuple[dict[str, tuple[str, str]], frozenset[str]]:
        with self.ctx.db.session() as session:
            lists = ExportRepository(session).lists(self.target.export_id)
            suppressed = frozenset(ErasureRepository(session).suppressed_digests())
        return {str(segment): entry for segment, entry in lists.items()}, suppressed

    def _summary(
        self, report: DriftReport, outcome: Repair | None, *, members: int
    ) -> tuple[RunStatus, str, dict[str, Any]]:
        totals = report.totals()
        found = describe_drift(totals)
        data: dict[str, Any] = {
            "kind": self.run.kind,
            "estimate": report.estimate.to_dict(),
            "drift": report.drift,
            "totals": totals,
            "lists": [item.to_dict() for item in report.lists],
            "contacts": members,
        }
        if totals["unsubscribed"]:
            self.warnings.append(
                f"{totals['unsubscribed']:,} list member(s) unsubscribed in "
                f"{self.target.connection_type.capitalize()}: reported only, never re-subscribed"
            )
        if totals["kept"]:
            self.warnings.append(
                f"{totals['kept']:,} member(s) left their segment and stay on its list (the "
                "removal policy is add-only)"
            )
        if totals["lists_never_created"] and outcome is None:
            self.warnings.append("a segment has no list yet: run the export (or repair) to make it")
        if outcome is None:
            message = f"verified: {found}" + ("" if report.drift else " found")
            if report.drift:
                message += "; repair it with `segsync exports verify --repair`"
            return RunStatus.SUCCESSFUL, message, data
        data["repaired"] = outcome.to_dict()
        self.warnings.extend(outcome.warnings)
        message = f"repaired: {found} found; {outcome.describe()}"
        return RunStatus.SUCCESSFUL, message, data

    def _counts(self, data: dict[str, Any] | None) -> RunCounts:
        repaired = (data or {}).get("repaired") or {}
        return RunCounts(
            members=int((data or {}).get("contacts") or 0),
            added=int(repaired.get("added") or 0),
            removed=int(repaired.get("removed") or 0),
            rejected=int(repaired.get("rejected") or 0),
            requests=self.requests,
        )

    def _end(self, status: RunStatus, message: str, data: dict[str, Any] | None) -> RunRecord:
        target, now = self.target, self.ctx.now()
        counts = self._counts(data)
        with self.ctx.db.session() as session:
            runs = RunRepository(session)
            if data is not None:
                runs.set_plan(self.run.id, data)
            record = runs.finish(
                self.run.id,
                status,
                now=now,
                message=message,
                warnings=self.warnings,
                counts=counts,
                owner=self.owner,
            )
            audit.record(
                session,
                at=now,
                actor=self.run.actor,
                action=f"export.{self.run.kind}",
                target_type="export",
                target=target.export_name,
                summary=f"{self.run.kind} run {self.run.id} of export "
                f"{target.export_name!r} ended {status.label}: {message}",
                details={
                    "run_id": self.run.id,
                    "status": status.value,
                    "connection": target.connection_name,
                    "counts": counts.to_dict(),
                    "totals": (data or {}).get("totals"),
                    "repaired": (data or {}).get("repaired"),
                },
            )
        log.info("%s run %s of %r: %s", self.run.kind, self.run.id, target.export_name, message)
        return record


async def execute_verify(
    ctx: ServiceContext,
    run: RunRecord,
    target: RunTarget,
    *,
    owner: str,
    tune: Callable[[ConnectionConfig], ConnectionConfig] | None = None,
    parts: VerifyParts | None = None,
) -> RunRecord:
    """Execute a claimed verify or repair run (Processing, leased by ``owner``) to its end."""
    verify = _Verify(ctx, run, target, owner, parts or VerifyParts(), tune)
    heartbeat = asyncio.create_task(_heartbeat(ctx, run.id, owner, verify.parts.lease_seconds))
    try:
        record = await verify.run_verify()
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
    return record


async def _heartbeat(ctx: ServiceContext, run_id: int, owner: str, lease: float) -> None:
    def beat() -> None:
        with ctx.db.session() as session:
            RunRepository(session).heartbeat(
                run_id, owner=owner, expires_at=ctx.now() + timedelta(seconds=lease)
            )

    while True:
        await asyncio.sleep(lease / 4)
        try:
            await asyncio.to_thread(beat)
        except SegsyncError:
            log.warning("verify run %s: heartbeat failed; retrying", run_id)
