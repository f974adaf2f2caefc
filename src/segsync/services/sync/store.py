"""The run engine's one persistence port: every metadata-DB call of one run attempt goes through
a :class:`RunStore`, on one thread of its own, one call after another. Commits (and their
fsyncs) then never stall the event loop that sends, and they happen in the order asked.

The sync state is the checkpoint (docs/design.md): after each acknowledged batch, the batch's
sync-state changes, its rejects and the run's progress are committed in ONE transaction
(:meth:`RunStore.commit`), so a resumed run plans against exactly what was acknowledged.
Every save of progress also extends the run's lease and reads whether a cancel was asked for;
a save that finds the lease held by another process raises ``FatalError`` (this process
stops; the other carries the run on).

Group commit (:mod:`.db_thread`): the writes that come once per batch — a batch's write-ahead
intent, an acknowledgement's commit, a removal's — asked for while the thread is busy are
written together, in asking order, in one transaction; what each promises is unchanged (an
intent is committed before its batch leaves; an acknowledgement is in the sync state when its
commit returns).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segsync.destinations.base import ConnectionConfig
from segsync.domain.plan import UpsertItem
from segsync.domain.sync_state import Memberships, SyncStateView
from segsync.errors import Conflict, FatalError
from segsync.services.connections.runtime import connection_config, flag_connection
from segsync.services.context import ServiceContext
from segsync.services.sync.db_thread import DatabaseThread
from segsync.services.sync.finish import RunEnd, record_run_end
from segsync.services.sync.lease import LEASE_SECONDS
from segsync.services.sync.open_intents import OpenIntents
from segsync.services.sync.switching import fewer_collections
from segsync.services.sync.tally import Changing, Snapshot, StateChanges
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.run_changes import ChangeRow, RunChangeRepository
from segsync.storage.repositories.runs import RejectRecord, RunRecord, RunRepository
from segsync.storage.repositories.sync import SyncStateRepository

log = logging.getLogger(__name__)
T = TypeVar("T")


class RunStore:
    """The metadata DB as one run attempt sees it. Use it as an async context manager (its
    thread stops at the end). ``cancel_requested`` and ``lost`` are what the last save found."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        run_id: int,
        export_id: int,
        owner: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.export_id = export_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.cancel_requested = False
        """A cancel was asked for, or the export was removed (seen at the last save)."""
        self.lost = False
        """Another process took the run over (seen at the last save or heartbeat)."""
        # What the DB thread saw; copied to the two flags above on the event loop's thread when
        # a call returns, so they change only between the loop's steps.
        self._cancel_seen = False
        self._lost_seen = False
        self._recorded = False  # whether this attempt wrote to the change record
        self._intents = OpenIntents()
        self.thread = DatabaseThread(ctx.db)
        """The store's one database thread (its ``transactions`` count the grouped ones)."""

    async def __aenter__(self) -> RunStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.thread.close()

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(*args)`` on the store's thread, on its own."""
        try:
            result: T = await self.thread.call(functools.partial(call, *args))
            return result
        finally:
            self.cancel_requested, self.lost = self._cancel_seen, self._lost_seen

    async def _grouped(self, write: Callable[[Session], T]) -> T:
        """Do ``write`` in the thread's next grouped transaction; what it returned, once that
        transaction committed."""
        try:
            result: T = await self.thread.write(write)
            return result
        finally:
            self.cancel_requested, self.lost = self._cancel_seen, self._lost_seen

    async def call(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(*args)`` on the store's thread: for a stage's own writes (the hold)."""
        return await self._call(call, *args)

    def _lease_end(self) -> datetime:
        return self.ctx.now() + timedelta(seconds=self.lease_seconds)

    def _save(self, runs: RunRepository, snapshot: Snapshot) -> None:
        held, cancel = runs.save_progress(
            self.run_id,
            owner=self.owner,
            expires_at=self._lease_end(),
            counts=snapshot.counts,
            items_done=snapshot.items_done,
            items_total=snapshot.items_total,
        )
        self._cancel_seen = self._cancel_seen or cancel  # a stop is never taken back
        if not held:
            self._lost_seen = True
            raise FatalError(f"run {self.run_id} was taken over by another process; this one stops")

    # -- what the run reads -----------------------------------------------------------------

    async def sync_state(self, target: RunTarget, *, light: bool = False) -> SyncStateView:
        """The export's sync state: acknowledged contacts, created memberships, list ids, pending
        memberships. ``light``: without the contacts and acknowledged memberships, but with the
        whole state's sizes (:attr:`~segsync.domain.sync_state.SyncStateView.sizes`)."""
        return await self._call(self._sync_state, target, light)

    def _sync_state(self, target: RunTarget, light: bool) -> SyncStateView:
        with fewer_collections(), self.ctx.db.session() as session:
            sync = SyncStateRepository(session)
            hashes = {} if light else sync.hashes(self.export_id)
            rows = () if light else sync.membership_rows(self.export_id)
            sizes = sync.sizes(self.export_id) if light else None
            # each email's text held once (the dict goes when Memberships is built)
            memberships = Memberships(rows, emails={email: email for email in hashes})
            pending = sync.membership_keys(self.export_id, pending=True)
            lists = ExportRepository(session).lists(self.export_id)
        list_ids: dict[str, str | None] = {
            s.key: lists[int(s.key)][0] if int(s.key) in lists else None for s in target.segments
        }
        return SyncStateView(
            hashes=hashes, memberships=memberships, list_ids=list_ids, pending=pending, sizes=sizes
        )

    async def suppressed(self) -> frozenset[str]:
        """Digests of the emails forgotten with ``segsync forget`` (never sent)."""
        return await self._call(self._suppressed)

    def _suppressed(self) -> frozenset[str]:
        with self.ctx.db.session() as session:
            return frozenset(ErasureRepository(session).suppressed_digests())

    async def record(self) -> RunRecord:
        """The run as it is now."""
        return await self._call(self._record)

    def _record(self) -> RunRecord:
        with self.ctx.db.session() as session:
            return RunRepository(session).get(self.run_id)

    async def export_removed(self) -> bool:
        return (await self.record()).export_id is None

    # -- what the run writes ----------------------------------------------------------------

    async def read_done(
        self, snapshot: Snapshot, rejects: Sequence[RejectRecord], *, replace: bool = True
    ) -> None:
        """Reading found these rejects (``replace``: replacing an earlier attempt's; else
        besides those recorded: a first run sent while it was read cleared them first)."""
        await self._call(self._read_done, snapshot, rejects, replace)

    def _read_done(
        self, snapshot: Snapshot, rejects: Sequence[RejectRecord], replace: bool
    ) -> None:
        with self.ctx.db.session() as session:
            runs = RunRepository(session)
            if replace:
                runs.clear_rejects(self.run_id)
            runs.add_rejects(self.run_id, rejects)
            self._save(runs, snapshot)

    async def is_empty(self) -> bool:
        """Whether the export's sync state holds no contact and no membership."""
        return await self._call(self._is_empty)

    def _is_empty(self) -> bool:
        with self.ctx.db.session() as session:
            return SyncStateRepository(session).counts(self.export_id) == (0, 0)

    async def planned(self, snapshot: Snapshot, summary: dict[str, Any]) -> None:
        """The plan is known: save its summary and the progress it implies."""
        await self._call(self._planned, snapshot, summary)

    def _planned(self, snapshot: Snapshot, summary: dict[str, Any]) -> None:
        with self.ctx.db.session() as session:
            runs = RunRepository(session)
            runs.set_plan(self.run_id, summary)
            self._save(runs, snapshot)

    async def list_made(self, segment_key: str, list_id: str, title: str) -> None:
        """The destination's list for a segment exists now."""
        await self._call(self._list_made, segment_key, list_id, title)

    def _list_made(self, segment_key: str, list_id: str, title: str) -> None:
        with self.ctx.db.session() as session:
            ExportRepository(session).save_list(
                self.export_id, int(segment_key), list_id, title, now=self.ctx.now()
            )

    async def intend(self, items: Sequence[UpsertItem], changing: Changing = ()) -> int | None:
        """Write-ahead: record what these items may create (contacts and memberships), and the
        contacts whose fields they change (``changing``) as unconfirmed, in one transaction
        committed before they are sent (a grouped write); the intent's id, for the items'
        acknowledgements to give back (:attr:`~.tally.Ack.intent`). None: the export is gone."""
        try:
            intent = await self._grouped(functools.partial(self._intend, items, changing))
        except IntegrityError:
            # The export was removed meanwhile (its sync state went with it): the run stops
            # as for a cancel, before these items leave.
            log.info("run %s: the export is gone; nothing more is sent", self.run_id)
            self._cancel_seen = self.cancel_requested = True
            return None
        self._intents.opened(intent, len(items))
        return intent

    def _intend(self, items: Sequence[UpsertItem], changing: Changing, session: Session) -> int:
        memberships = [(int(i.segment), i.email) for i in items if i.segment is not None]
        emails = [i.email for i in items]
        return SyncStateRepository(session).add_intent(
            self.export_id, emails, memberships, now=self.ctx.now(), changing=changing
        )

    async def intend_removals(self, memberships: Sequence[tuple[str, str]]) -> None:
        """Write-ahead for removals: mark these ``(segment key, email)`` memberships pending,
        committed before the removals are sent (a grouped write)."""
        await self._grouped(functools.partial(self._intend_removals, memberships))

    def _intend_removals(self, memberships: Sequence[tuple[str, str]], session: Session) -> None:
        SyncStateRepository(session).mark_pending(
            self.export_id, [(int(segment), email) for segment, email in memberships]
        )

    async def list_titles(self) -> dict[str, str]:
        """Segment key → the title of the list made for it, as it was made."""
        return await self._call(self._list_titles)

    def _list_titles(self) -> dict[str, str]:
        with self.ctx.db.session() as session:
            lists = ExportRepository(session).lists(self.export_id)
        return {str(segment): title for segment, (_, title) in lists.items()}

    async def list_gone(self, segment_key: str) -> None:
        """The segment's list was deleted in the destination: forget its id and memberships."""
        await self._call(self._list_gone, segment_key)

    def _list_gone(self, segment_key: str) -> None:
        with self.ctx.db.session() as session:
            ExportRepository(session).forget_list(self.export_id, int(segment_key))
            SyncStateRepository(session).forget_segment(self.export_id, int(segment_key))

    async def list_remade(self, segment_key: str, list_id: str, title: str) -> None:
        """The segment's list vanished while sending and was made again as ``list_id``: record
        it and forget the memberships recorded on the old one, in one transaction."""
        await self._call(self._list_remade, segment_key, list_id, title)

    def _list_remade(self, segment_key: str, list_id: str, title: str) -> None:
        with self.ctx.db.session() as session:
            ExportRepository(session).save_list(
                self.export_id, int(segment_key), list_id, title, now=self.ctx.now()
            )
            SyncStateRepository(session).forget_segment(self.export_id, int(segment_key))

    async def forget_memberships(self, segment_key: str, keep: set[str]) -> None:
        """Forget the segment's recorded memberships, but those of ``keep``."""
        await self._call(self._forget_memberships, segment_key, keep)

    def _forget_memberships(self, segment_key: str, keep: set[str]) -> None:
        with self.ctx.db.session() as session:
            SyncStateRepository(session).forget_segment(self.export_id, int(segment_key), keep)

    async def commit(self, snapshot: Snapshot, changes: StateChanges) -> None:
        """Commit acknowledged batches: sync state, rejects and progress, in one transaction
        (a grouped write), with the intents they answered in full deleted."""
        answered = self._intents.answered(changes.answered)
        await self._grouped(functools.partial(self._commit, snapshot, changes, answered))

    def _commit(
        self, snapshot: Snapshot, changes: StateChanges, answered: list[int], session: Session
    ) -> None:
        sync = SyncStateRepository(session)
        if changes.refused:  # refused: pending, as their intent held them (they may exist)
            sync.record_intents(
                self.export_id, changes.refused, changes.refused_memberships, now=self.ctx.now()
            )
        record = RunChangeRepository(session)
        rows = changes.changes
        unknown = (r.email for r in rows if not r.new_contact)  # the tally vouched for the rest
        before = record.before_run(self.run_id, self.export_id, unknown)
        record.record(self.run_id, self.export_id, rows, now=self.ctx.now(), before=before)
        self._recorded = self._recorded or bool(rows)
        sync.record_contacts(
            self.export_id,
            changes.hashes,
            now=self.ctx.now(),
            contact_ids=changes.contact_ids,
            payloads=changes.payloads,
        )
        sync.record_memberships(self.export_id, changes.memberships)
        sync.drop_intents(answered)
        runs = RunRepository(session)
        runs.add_rejects(self.run_id, changes.rejects)
        self._save(runs, snapshot)

    async def removed(
        self,
        snapshot: Snapshot,
        done: Sequence[tuple[str, str]],
        were_members: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Commit removals the destination confirmed (``(segment key, email)``); those of
        ``were_members`` took someone off a list and go into the change record (a grouped
        write)."""
        await self._grouped(functools.partial(self._removed, snapshot, done, were_members))

    def _removed(
        self,
        snapshot: Snapshot,
        done: Sequence[tuple[str, str]],
        were_members: Sequence[tuple[str, str]],
        session: Session,
    ) -> None:
        SyncStateRepository(session).remove_memberships(
            self.export_id, [(int(segment), email) for segment, email in done]
        )
        rows = [ChangeRow("removed", email, int(segment)) for segment, email in were_members]
        self._recorded = self._recorded or bool(rows)
        RunChangeRepository(session).record(self.run_id, self.export_id, rows, now=self.ctx.now())
        self._save(RunRepository(session), snapshot)

    async def progress(self, snapshot: Snapshot) -> None:
        """Save the progress alone (e.g. the request count after a failure)."""
        await self._call(self._progress, snapshot)

    def _progress(self, snapshot: Snapshot) -> None:
        with self.ctx.db.session() as session:
            self._save(RunRepository(session), snapshot)

    async def heartbeat(self) -> None:
        """Extend the lease and look for a cancel; ``FatalError`` if the run was taken over."""
        await self._call(self._heartbeat)

    def _heartbeat(self) -> None:
        with self.ctx.db.session() as session:
            runs = RunRepository(session)
            if not runs.heartbeat(self.run_id, owner=self.owner, expires_at=self._lease_end()):
                self._lost_seen = True
                raise FatalError(
                    f"run {self.run_id} was taken over by another process; this one stops"
                )
            self._cancel_seen = self._cancel_seen or runs.is_cancel_requested(self.run_id)

    async def end(self, end: RunEnd) -> RunRecord:
        """End the run (final status, counts, warnings) and write the audit event of what was
        sent, in one transaction. A run another process holds now is left to it: its record is
        returned as it is."""
        return await self._call(self._end, end)

    def _end(self, end: RunEnd) -> RunRecord:
        try:
            with self.ctx.db.session() as session:
                # What its intents hold unanswered is pending now, not at the next read
                SyncStateRepository(session).settle_intents(self.export_id)
                record = record_run_end(session, end, owner=self.owner, now=self.ctx.now())
                if self._recorded:  # a run that changed nothing leaves the record as it was
                    keep = self.ctx.settings.change_log_runs
                    RunChangeRepository(session).prune(self.export_id, keep)
                return record
        except Conflict as err:  # another process holds the run now, or it already ended
            log.warning("run %s: not ended here: %s", self.run_id, err.message)
            return self._record()

    # -- the connection ---------------------------------------------------------------------

    async def connection(self, connection_id: int) -> tuple[str, ConnectionConfig]:
        """The destination type and its config (the key read now); see
        :func:`segsync.services.connections.runtime.connection_config`."""
        return await self._call(connection_config, self.ctx, connection_id)

    async def flag_connection(self, connection_id: int, health: str, message: str) -> None:
        """Record what the run found out about its connection (e.g. a rejected key, X12)."""
        await self._call(flag_connection, self.ctx, connection_id, health, message)
