"""The run store (X7, X8): the one persistence port of a run attempt, on a real SQLite file.
A commit writes sync state, rejects and progress together; every save extends the lease and
reads a cancel; a process that lost the lease can neither save nor end the run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy, UpsertItem
from segsync.domain.runs import RunCounts, RunStatus
from segsync.errors import FatalError
from segsync.services.context import ServiceContext
from segsync.services.sync.finish import RunEnd
from segsync.services.sync.read import SegmentSource
from segsync.services.sync.store import RunStore
from segsync.services.sync.tally import Snapshot, StateChanges
from segsync.services.sync.target import RunTarget
from segsync.storage.models.operations import AuditEvent
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.runs import RejectRecord, RunRecord, RunRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.export_fixtures import add_connection, add_segment

OWNER = "this-host:1:abc"
WAIT = 30  # seconds: a bound for waits that should end at once


def _start(ctx: ServiceContext) -> tuple[RunRecord, RunTarget]:
    connection_id = add_connection(ctx, "Conn")
    segment_id = add_segment(ctx, "Gold", {"attribute": "Tier", "op": "equals", "value": "G"})
    mapping = FieldMapping(email="Email", catalogue=AUTOPILOT_FIELDS)
    with ctx.db.session() as session:
        export = ExportRepository(session).create(
            name="Newsletter",
            connection_id=connection_id,
            mapping=mapping.to_dict(),
            removal_policy="mirror",
            list_prefix="",
            schedule={},
            segment_ids=[segment_id],
            created_by="local-admin",
            now=ctx.now(),
        )
        run = RunRepository(session).create(
            export_id=export.id,
            export_name=export.name,
            connection_id=connection_id,
            actor="local-admin",
            now=ctx.now(),
            status=RunStatus.PROCESSING,
            lease_owner=OWNER,
            lease_expires_at=ctx.now() + timedelta(seconds=60),
        )
    target = RunTarget(
        export_id=export.id,
        export_name=export.name,
        connection_id=connection_id,
        connection_name="Conn",
        connection_type="autopilot",
        contract_limit=100_000,
        mapping=mapping,
        removal=RemovalPolicy.MIRROR,
        list_prefix="",
        segments=(SegmentSource(str(segment_id), "Gold", "{}"),),
    )
    return run, target


def _store(ctx: ServiceContext, run: RunRecord) -> RunStore:
    assert run.export_id is not None
    return RunStore(ctx, run_id=run.id, export_id=run.export_id, owner=OWNER)


SNAP = Snapshot(RunCounts(members=3, added=2, requests=1), items_done=2, items_total=5)


async def test_a_commit_writes_state_rejects_and_progress_together(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    changes = StateChanges(
        hashes={"a@x.org": "h1", "b@x.org": "h2"},
        memberships=[(segment, "a@x.org"), (segment, "b@x.org")],
        contact_ids={"a@x.org": "person_A", "b@x.org": None},
        rejects=[RejectRecord("rejected", None, "c@x.org", "Rejected email address")],
    )
    async with _store(ctx, run) as store:
        await store.commit(SNAP, changes)
        state = await store.sync_state(target)

    assert dict(state.hashes) == {"a@x.org": "h1", "b@x.org": "h2"}
    assert set(state.memberships) == {(str(segment), "a@x.org"), (str(segment), "b@x.org")}
    keys = {email: email for email in state.hashes}  # the memberships hold the hashes' texts
    assert all(email is keys[email] for email in state.memberships.by_email)
    assert state.list_ids == {str(segment): None}
    with ctx.db.session() as session:
        saved = RunRepository(session).get(run.id)
        rejects = list(RunRepository(session).rejects(run.id))
    assert (saved.counts, saved.items_done, saved.items_total) == (SNAP.counts, 2, 5)
    assert saved.lease_expires_at is not None
    assert saved.lease_expires_at > ctx.now()
    assert [r.email for r in rejects] == ["c@x.org"]


async def test_a_cancel_is_seen_at_the_next_save_and_heartbeat(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    run, _ = _start(ctx)
    async with _store(ctx, run) as store:
        await store.progress(SNAP)
        assert not store.cancel_requested
        with ctx.db.session() as session:
            RunRepository(session).request_cancel(run.id, now=ctx.now())
        await store.heartbeat()
        assert store.cancel_requested
        store.cancel_requested = False
        await store.progress(SNAP)
        assert store.cancel_requested


async def test_a_store_that_lost_the_lease_cannot_save_or_end_the_run(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    run, target = _start(ctx)
    with ctx.db.session() as session:
        assert RunRepository(session).claim(
            run.id, previous_owner=OWNER, owner="other:2:def", expires_at=ctx.now()
        )
    async with _store(ctx, run) as store:
        with pytest.raises(FatalError, match="taken over"):
            await store.commit(SNAP, StateChanges(hashes={"a@x.org": "h1"}))
        assert store.lost
        end = RunEnd(run, target, RunStatus.SUCCESSFUL, "sent", replace(SNAP.counts))
        record = await store.end(end)

    assert (record.status, record.lease_owner) == (RunStatus.PROCESSING, "other:2:def")
    with ctx.db.session() as session:
        assert SyncStateRepository(session).hashes(run.export_id or 0) == {}  # rolled back


async def test_the_end_is_recorded_with_the_audit_event_of_what_was_sent(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    run, target = _start(ctx)
    counts = RunCounts(members=3, added=2, updated=1, requests=4)
    async with _store(ctx, run) as store:
        record = await store.end(
            RunEnd(run, target, RunStatus.SUCCESSFUL, "sent", counts, ["w"], sent_anything=True)
        )

    assert (record.status, record.message, record.warnings) == (
        RunStatus.SUCCESSFUL,
        "sent",
        ["w"],
    )
    assert record.lease_owner is None
    assert record.counts == counts
    with ctx.db.session() as session:
        (event,) = session.query(AuditEvent).filter_by(action="export.run").all()
    assert "2 added, 1 updated" in event.summary
    assert '"sent_anything": true' in event.details


async def test_the_end_saves_the_items_done_with_the_counts(
    service_context: ServiceContext,
) -> None:
    """A commit that failed (the export was removed meanwhile) counted its batch but saved
    nothing: the end writes the progress that goes with the counts, not the last one saved."""
    ctx = service_context
    run, target = _start(ctx)
    counts = RunCounts(members=9, added=7, requests=3)
    async with _store(ctx, run) as store:
        await store.progress(SNAP)  # 2 items done were saved
        record = await store.end(
            RunEnd(run, target, RunStatus.CANCELED, "stopped", counts, items_done=7)
        )

    assert (record.items_done, record.counts.added) == (7, 7)


# -- group commit: writes asked for while the thread is busy share one transaction ---------


def _item(email: str, segment: int) -> UpsertItem:
    return UpsertItem(email, {}, {}, str(segment), "")


def _ack(email: str, digest: str, segment: int) -> StateChanges:
    """The acknowledgement of one contact on the segment's list."""
    return StateChanges(hashes={email: digest}, memberships=[(segment, email)])


async def _while_busy(store: RunStore, *calls: Awaitable[Any]) -> list[Any]:
    """Hold the store's thread with a call of its own, ask for ``calls`` meanwhile (in this
    order), then let it go; what each returned or raised, in order."""
    busy, release = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        assert release.wait(WAIT)

    held = asyncio.ensure_future(store.call(hold))
    assert await asyncio.to_thread(busy.wait, WAIT)
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0)  # one turn of the loop: each task asks (queues its call)
    assert len(store.thread.waiting) == len(calls)
    assert not any(task.done() for task in tasks)  # nothing is answered before it is written
    release.set()
    await held
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_writes_asked_for_while_the_thread_is_busy_share_one_transaction(
    service_context: ServiceContext,
) -> None:
    """Intents of two batches and the commit of a third batch's acknowledgement, asked for while
    the thread was busy, are written in one transaction, in asking order."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    ack = _ack("c@x.org", "h3", segment)
    async with _store(ctx, run) as store:
        outcomes = await _while_busy(
            store,
            store.intend([_item("a@x.org", segment)]),
            store.intend([_item("b@x.org", segment), _item("c@x.org", segment)]),
            store.commit(SNAP, ack),
        )
        assert [type(o) for o in outcomes] == [int, int, type(None)]  # two intents' ids
        assert store.thread.transactions == 1
        state = await store.sync_state(target)

    assert dict(state.hashes) == {"c@x.org": "h3"}  # a and b are only intended
    assert set(state.memberships) == {(str(segment), "c@x.org")}  # c's intent was confirmed
    assert set(state.pending) == {(str(segment), "a@x.org"), (str(segment), "b@x.org")}


async def test_a_call_of_its_own_keeps_its_place_between_grouped_writes(
    service_context: ServiceContext,
) -> None:
    """A call asked for between two writes sees the first written and not the second (the
    writes before and after it are two transactions)."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    after = _ack("b@x.org", "h2", segment)
    async with _store(ctx, run) as store:
        outcomes = await _while_busy(
            store,
            store.intend([_item("a@x.org", segment)]),
            store.sync_state(target),
            store.commit(SNAP, after),
        )
        assert store.thread.transactions == 2

    seen = outcomes[1]
    assert set(seen.pending) == {(str(segment), "a@x.org")}
    assert dict(seen.hashes) == {}  # b's acknowledgement came after


async def test_a_failing_write_fails_alone_and_the_others_are_written(
    service_context: ServiceContext,
) -> None:
    """A write that fails rolls its group back; each write is then done again alone: the
    others are written, and only the failing one's caller gets the error."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)

    def broken(session: Session) -> None:
        raise ValueError("this write fails")

    ack = _ack("b@x.org", "h2", segment)
    async with _store(ctx, run) as store:
        outcomes = await _while_busy(
            store,
            store.intend([_item("a@x.org", segment)]),
            store._grouped(broken),
            store.commit(SNAP, ack),
        )
        assert store.thread.transactions == 2  # the two good writes, each alone
        state = await store.sync_state(target)

    assert isinstance(outcomes[0], int)  # the intent's id
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert set(state.pending) == {(str(segment), "a@x.org")}
    assert dict(state.hashes) == {"b@x.org": "h2"}


async def test_an_intent_for_a_removed_export_stops_the_run_and_spares_its_group(
    service_context: ServiceContext,
) -> None:
    """The export was removed (its sync state with it): the intent's write fails, the run is
    told to stop as for a cancel, and the progress saved by a write of the same group is
    saved."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    async with _store(ctx, run) as store:
        with ctx.db.session() as session:
            ExportRepository(session).delete(run.export_id or 0)
        outcomes = await _while_busy(
            store, store.intend([_item("a@x.org", segment)]), store.removed(SNAP, [])
        )
        assert outcomes == [None, None]  # no intent was written
        assert store.cancel_requested

    with ctx.db.session() as session:
        assert RunRepository(session).get(run.id).items_done == SNAP.items_done


async def test_a_store_that_has_ended_refuses_more_calls(service_context: ServiceContext) -> None:
    """After the store's end its thread is gone: a call is refused at once, every time (none
    waits for a thread that will never come)."""
    ctx = service_context
    run, _ = _start(ctx)
    async with _store(ctx, run) as store:
        await store.progress(SNAP)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(store.progress(SNAP), WAIT)
