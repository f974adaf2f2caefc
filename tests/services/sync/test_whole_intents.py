"""Write-ahead intents kept whole (X2, crash safety), on a real SQLite file: the batches that
leave together are intended in one ``sync_intents`` row; the acknowledgements that answer them
delete it; whatever it still holds when its run ends, or when anyone reads the state after a
crash, is pending rows — the same state as intents written row by row would have left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from segsync.destinations.base import BatchResult, RecordOutcome
from segsync.domain.plan import UpsertItem
from segsync.domain.runs import RunCounts, RunStatus
from segsync.services.context import ServiceContext, open_context
from segsync.services.sync.finish import RunEnd
from segsync.services.sync.open_intents import OpenIntents
from segsync.services.sync.tally import Ack, StateChanges, Tally
from segsync.storage.models.sync import SyncContact, SyncIntent, SyncMembership
from segsync.storage.repositories.erasures import ErasureRepository
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.people import PersonRepository
from segsync.storage.repositories.sync import UNCONFIRMED, SyncStateRepository
from tests.conftest import fresh_settings
from tests.services.sync.test_store import SNAP, _item, _start, _store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service_context(
    request: pytest.FixtureRequest, tmp_path: Path, frozen_now: Callable[[], datetime]
) -> Iterator[ServiceContext]:
    """A service context whose metadata database is SQLite or PostgreSQL (the intents' SQL is
    written for both)."""
    settings = fresh_settings(tmp_path / "data")
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")("intents")
        settings = settings.model_copy(update={"database_url": url})
    with open_context(settings, now=frozen_now) as ctx:
        yield ctx


def _rows(session: Session) -> tuple[int, int, int]:
    """How many intents, contact rows and membership rows the metadata DB holds."""
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model))
        for model in (SyncIntent, SyncContact, SyncMembership)
    )


def _acked(segment: int, intent: int, *emails: str) -> StateChanges:
    """The acknowledgement of ``emails`` on the segment's list, from the intent ``intent``."""
    return StateChanges(
        hashes={email: "h" for email in emails},
        memberships=[(segment, email) for email in emails],
        answered=[(intent, len(emails))],
    )


async def test_an_intent_answered_in_full_is_deleted_and_nothing_was_ever_pending(
    service_context: ServiceContext,
) -> None:
    """Two items intended: one intent row, no contact or membership row until the answer;
    answered in two commits, the row goes with the second, and the state holds both known."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    async with _store(ctx, run) as store:
        intent = await store.intend([_item("a@x.org", segment), _item("b@x.org", segment)])
        assert intent is not None
        with ctx.db.session() as session:
            assert _rows(session) == (1, 0, 0)
        await store.commit(SNAP, _acked(segment, intent, "a@x.org"))
        with ctx.db.session() as session:
            assert _rows(session) == (1, 1, 1)  # b is not answered yet
        await store.commit(SNAP, _acked(segment, intent, "b@x.org"))
        with ctx.db.session() as session:
            assert _rows(session) == (0, 2, 2)
        state = await store.sync_state(target)

    assert dict(state.hashes) == {"a@x.org": "h", "b@x.org": "h"}
    assert set(state.pending) == set()


async def test_what_a_run_left_unanswered_is_pending_once_it_ends(
    service_context: ServiceContext,
) -> None:
    """A run stopped with a batch intended and not answered (and one answered): its end turns
    what the intent still holds into pending rows, and the intent is gone."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    async with _store(ctx, run) as store:
        answered = await store.intend([_item("a@x.org", segment)])
        assert answered is not None
        await store.intend([_item("b@x.org", segment), _item("a@x.org", segment)])
        await store.commit(SNAP, _acked(segment, answered, "a@x.org"))
        await store.end(RunEnd(run, target, RunStatus.CANCELED, "stopped", RunCounts()))

    with ctx.db.session() as session:
        assert _rows(session)[0] == 0
        sync = SyncStateRepository(session)
        assert sync.hashes(1) == {"a@x.org": "h"}  # the answered stays known
        assert sync.memberships(1) == {(segment, "a@x.org")}
        assert sync.memberships(1, pending=True) == {(segment, "b@x.org")}
        assert dict(sync.hashes_in_order(1)) == {"a@x.org": "h", "b@x.org": ""}


async def test_refused_items_are_pending_when_their_batch_is_committed(
    service_context: ServiceContext,
) -> None:
    """The destination refused b: its batch is answered (the intent goes), and b's contact and
    membership are pending, as its intent held them — it may exist."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    items = [UpsertItem(e, {}, {}, str(segment), "h1") for e in ("a@x.org", "b@x.org")]
    result = BatchResult(
        [RecordOutcome("a@x.org", True, "person_a"), RecordOutcome("b@x.org", False, reason="no")],
        requests=1,
    )
    tally = Tally()
    tally.planned(hashes={}, unchanged=0, items=2)
    async with _store(ctx, run) as store:
        intent = await store.intend(items)
        changes = tally.acknowledge([Ack(items, result, intent)])
        assert changes.answered == [(intent, 2)]
        assert changes.refused_memberships == [(segment, "b@x.org")]
        await store.commit(SNAP, changes)
        with ctx.db.session() as session:
            assert _rows(session) == (0, 2, 2)
            sync = SyncStateRepository(session)
            assert sync.memberships(1, pending=True) == {(segment, "b@x.org")}
            assert dict(sync.hashes_in_order(1)) == {"a@x.org": "h1", "b@x.org": ""}


def test_an_intent_left_by_a_crash_is_pending_to_every_reader(
    service_context: ServiceContext,
) -> None:
    """No run ended it (the process died): the next read of pending rows, a person's page and
    an erasure's look for the person all see what it holds as pending; a reset forgets it."""
    ctx = service_context
    _start(ctx)

    def intend() -> None:
        with ctx.db.session() as session:
            SyncStateRepository(session).add_intent(1, ["c@x.org"], [(7, "c@x.org")], now=NOW)

    intend()
    with ctx.db.session() as session:
        assert [s.export_id for s in ErasureRepository(session).exports_holding("c@x.org")] == [1]
        assert _rows(session) == (0, 1, 1)
    intend()
    with ctx.db.session() as session:
        person = PersonRepository(session)
        assert [(m.segment_id, m.pending) for m in person.memberships("c@x.org")] == [(7, True)]
        assert [c.pending for c in person.contacts("c@x.org")] == [True]
    intend()
    with ctx.db.session() as session:
        assert SyncStateRepository(session).sizes(1) == {"7": 1}
    intend()
    with ctx.db.session() as session:
        ExportRepository(session).reset_sync_state(1)
    with ctx.db.session() as session:
        assert _rows(session) == (0, 0, 0)


def test_settling_never_downgrades_what_is_known_and_twice_is_once(
    service_context: ServiceContext,
) -> None:
    """An intent settled after its acknowledgement (another reader got there first, or the
    run's end) leaves the acknowledged rows known; settling again finds nothing."""
    ctx = service_context
    _start(ctx)
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        sync.add_intent(1, ["k@x.org", "n@x.org"], [(7, "k@x.org"), (7, "n@x.org")], now=NOW)
        sync.record_contacts(1, {"k@x.org": "h1"}, now=NOW)
        sync.record_memberships(1, [(7, "k@x.org")])
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        assert sync.settle_intents() == 1
        assert sync.settle_intents(1) == 0
        assert sync.hashes(1) == {"k@x.org": "h1"}
        assert sync.memberships(1) == {(7, "k@x.org")}
        assert sync.memberships(1, pending=True) == {(7, "n@x.org")}
        contact = session.get(SyncContact, (1, "n@x.org"))
        assert contact is not None
        assert (contact.pending, contact.synced_at) == (True, NOW)  # the intent's own time


def test_an_intent_is_answered_in_full_once_and_others_are_not_this_runs() -> None:
    intents = OpenIntents()
    intents.opened(1, 3)
    intents.opened(2, 1)
    assert intents.answered([(1, 2), (9, 5)]) == []  # 9: not opened by this run
    assert intents.answered([(2, 1), (1, 1)]) == [2, 1]
    assert intents.answered([(1, 1), (2, 1)]) == []  # each is deleted once


async def test_a_change_of_a_known_contact_s_fields_is_unconfirmed_until_answered(
    service_context: ServiceContext,
) -> None:
    """k and u are known with hash h0; a batch changes k's fields (sent with h1) and sends u
    unchanged. Until the answer, k's hash is unconfirmed (the destination may hold either),
    u's and the new n's are as they were; the answer records h1. Unanswered (a crash), k stays
    unconfirmed, through the settling of the intent."""
    ctx = service_context
    run, target = _start(ctx)
    segment = int(target.segments[0].key)
    with ctx.db.session() as session:
        SyncStateRepository(session).record_contacts(1, {"k@x.org": "h0", "u@x.org": "h0"}, now=NOW)
    async with _store(ctx, run) as store:
        items = [_item(email, segment) for email in ("k@x.org", "n@x.org", "u@x.org")]
        changing = [("k@x.org", "h1"), ("u@x.org", "h0")]  # u: as recorded, no change
        intent = await store.intend(items, changing)
        assert intent is not None
        with ctx.db.session() as session:
            hashes = SyncStateRepository(session).hashes(1)
            assert hashes == {"k@x.org": UNCONFIRMED, "u@x.org": "h0"}
        answer = StateChanges(hashes={"k@x.org": "h1"}, answered=[(intent, 1)])
        await store.commit(SNAP, answer)
        with ctx.db.session() as session:
            assert SyncStateRepository(session).hashes(1)["k@x.org"] == "h1"
        await store.intend(items[:1], [("k@x.org", "h2")])  # never answered
        await store.end(RunEnd(run, target, RunStatus.FAILURE, "died", RunCounts()))
    with ctx.db.session() as session:
        assert SyncStateRepository(session).hashes(1) == {"k@x.org": UNCONFIRMED, "u@x.org": "h0"}
