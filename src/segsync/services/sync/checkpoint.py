"""The checkpoint of a run attempt: after each acknowledged batch (or group of removals) the sync
state and the run's progress are committed in ONE transaction (docs/design.md "Sync state is the
checkpoint"), and the run's lease is heartbeated. The engine commits on its own DB thread while
sending goes on; batches acknowledged while the previous commit ran share the next transaction.

Counts across attempts (a resumed run): the sync state already holds what earlier attempts got
acknowledged, so a new attempt plans only the rest. ``added``, ``updated``, ``removed`` and
``requests`` therefore accumulate from the run's saved counts; ``members``, ``invalid``,
``duplicates`` and ``rejected`` are what this attempt's reading and sending found.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from segsync.destinations.base import BatchResult
from segsync.domain.plan import UpsertItem, acknowledged
from segsync.domain.runs import RunCounts
from segsync.errors import FatalError
from segsync.services.context import ServiceContext
from segsync.storage.repositories.runs import RejectRecord, RunRepository
from segsync.storage.repositories.sync import SyncStateRepository

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
"""How long a run's lease lasts without a heartbeat; a run whose lease expired may be resumed."""

_ACTIVE_OWNERS: set[str] = set()
"""Lease owners running in this process (so a same-process check knows who is alive)."""


def new_lease_owner() -> str:
    """``host:pid:uuid`` naming this process and this attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` names a process on this host that no longer runs (or this process,
    when it is not running that attempt any more). Owners on other hosts are not judged here:
    their lease expiry decides."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _ACTIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


def mark_active(owner: str, active: bool) -> None:
    (_ACTIVE_OWNERS.add if active else _ACTIVE_OWNERS.discard)(owner)


@dataclass(frozen=True)
class RunProgress:
    """A progress event for a live progress bar: ``phase`` is ``queued`` (waiting for a
    worker or for its connection), ``reading``, ``planning``, ``lists``, ``sending``,
    ``removing`` or ``done``; ``items_done``/``items_total`` count
    upsert items and removals (of the whole run, earlier attempts included)."""

    run_id: int
    phase: str
    items_done: int
    items_total: int
    counts: RunCounts


ProgressCallback = Callable[[RunProgress], None]


class Checkpoint:
    """One attempt's progress. ``base`` are the counts saved by earlier attempts."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        run_id: int,
        export_id: int,
        owner: str,
        base: RunCounts,
        base_done: int,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.export_id = export_id
        self.owner = owner
        self.base = base
        self.base_done = base_done
        self.counts = replace(base)
        self.items_done = base_done
        self.items_total = base_done
        self.phase = "reading"
        self.progress = progress
        self.planned_hashes: Mapping[str, str] = {}
        self.planned_unchanged = 0
        self.conversion_rejected = 0
        self.stop_requested = False
        """Whether a cancel was seen at the last commit (checked without another query)."""
        self._counted: set[str] = set()
        self._api_rejected: set[str] = set()

    # -- before sending ---------------------------------------------------------------------

    def start(
        self,
        *,
        members: int,
        invalid: int,
        duplicates: int,
        conversion_rejected: int,
        rejects: Sequence[RejectRecord],
    ) -> None:
        """Record what reading the members found (replacing an earlier attempt's findings)."""
        self.counts.members = members
        self.counts.invalid = invalid
        self.counts.duplicates = duplicates
        self.conversion_rejected = conversion_rejected
        self.counts.rejected = conversion_rejected
        with self.ctx.db.session() as session:
            runs = RunRepository(session)
            runs.clear_rejects(self.run_id)
            runs.add_rejects(self.run_id, rejects)
            self._save(runs)
        self.emit("planning")

    def planned(self, *, hashes: Mapping[str, str], unchanged: int, items: int) -> None:
        """The plan is known: ``hashes`` is the sync state it was built on."""
        self.planned_hashes = hashes
        acknowledged_before = self.base.added + self.base.updated
        self.planned_unchanged = max(0, unchanged - acknowledged_before)
        self.counts.unchanged = self.planned_unchanged
        self.items_total = self.base_done + items
        with self.ctx.db.session() as session:
            self._save(RunRepository(session))

    # -- while sending ----------------------------------------------------------------------

    def batches_acknowledged(
        self, acks: Sequence[tuple[Sequence[UpsertItem], BatchResult]], requests: int
    ) -> list[str]:
        """Commit acknowledged batches — their sync state, rejects and the run's progress — in
        one transaction, and note whether a cancel was asked for meanwhile. The engine passes
        each batch as it is acknowledged, or the few acknowledged while the previous commit ran.
        Returns the emails Autopilot refused. Called from the engine's one DB thread."""
        hashes: dict[str, str] = {}
        memberships: list[tuple[int, str]] = []
        contact_ids: dict[str, str | None] = {}
        new_rejects: list[RejectRecord] = []
        refused_all: list[str] = []
        for batch, result in acks:
            refused = {
                o.email: o.reason or "refused by Autopilot" for o in result.outcomes if not o.ok
            }
            delta = acknowledged(batch, frozenset(refused))
            contact_ids.update((o.email, o.contact_id) for o in result.outcomes if o.ok)
            new_rejects.extend(
                RejectRecord("rejected", None, email, reason)
                for email, reason in refused.items()
                if email not in self._api_rejected
            )
            self._api_rejected.update(refused)
            refused_all.extend(refused)
            for email, digest in delta.hashes.items():
                hashes[email] = digest
                if email in self._counted:
                    continue
                self._counted.add(email)
                old = self.planned_hashes.get(email)
                if old is None:
                    self.counts.added += 1
                elif old != digest:
                    self.counts.updated += 1
            memberships.extend((int(segment), email) for segment, email in delta.memberships)
            self.items_done += len(batch)
        self.counts.rejected = self.conversion_rejected + len(self._api_rejected)
        self.counts.requests = self.base.requests + requests
        now = self.ctx.now()
        with self.ctx.db.session() as session:
            sync = SyncStateRepository(session)
            sync.record_contacts(self.export_id, hashes, now=now, contact_ids=contact_ids)
            sync.record_memberships(self.export_id, memberships)
            runs = RunRepository(session)
            runs.add_rejects(self.run_id, new_rejects)
            self._save(runs)
        return refused_all

    def removals_acknowledged(self, done: Sequence[tuple[str, str]], requests: int) -> None:
        """Commit removals the destination confirmed (``(segment key, email)``)."""
        self.counts.removed += len(done)
        self.counts.requests = self.base.requests + requests
        self.items_done += len(done)
        with self.ctx.db.session() as session:
            SyncStateRepository(session).remove_memberships(
                self.export_id, [(int(segment), email) for segment, email in done]
            )
            runs = RunRepository(session)
            self._save(runs)
            self.stop_requested = runs.is_cancel_requested(self.run_id)

    def requests(self, requests: int) -> None:
        """Save the request count (e.g. after list set-up or a failure)."""
        self.counts.requests = self.base.requests + requests
        with self.ctx.db.session() as session:
            self._save(RunRepository(session))

    def heartbeat(self) -> None:
        """Extend the lease; raise ``FatalError`` if another process took the run over."""
        with self.ctx.db.session() as session:
            if not RunRepository(session).heartbeat(
                self.run_id, owner=self.owner, expires_at=self._lease_end()
            ):
                raise FatalError(
                    f"run {self.run_id} was taken over by another process; this one stops"
                )

    def emit(self, phase: str) -> None:
        self.phase = phase
        if self.progress is not None:
            self.progress(
                RunProgress(
                    self.run_id, phase, self.items_done, self.items_total, replace(self.counts)
                )
            )

    def details(self) -> dict[str, Any]:
        return {"items_done": self.items_done, "items_total": self.items_total}

    def _lease_end(self) -> Any:
        return self.ctx.now() + timedelta(seconds=LEASE_SECONDS)

    def _save(self, runs: RunRepository) -> None:
        held, cancel = runs.save_progress(
            self.run_id,
            owner=self.owner,
            expires_at=self._lease_end(),
            counts=self.counts,
            items_done=self.items_done,
            items_total=self.items_total,
        )
        if not held:
            raise FatalError(f"run {self.run_id} was taken over by another process; this one stops")
        self.stop_requested = cancel
