"""The run store (X7, X8): the one persistence port of a run attempt, on a real SQLite file.
A commit writes sync state, rejects and progress together; every save extends the lease and
reads a cancel; a process that lost the lease can neither save nor end the run."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy
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
