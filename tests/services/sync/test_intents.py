"""Write-ahead intents (X2, crash safety): what a batch may change is recorded as pending before
it leaves, so a process that dies after Autopilot took a batch but before the acknowledgement
was committed leaves no orphan — even when the data changes before the next run.

The "death" is a store whose commit of acknowledged batches fails: Autopilot has the batch, the
sync state never learns it was answered (as after a SIGKILL between the two)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from segsync.domain.plan import UpsertItem
from segsync.domain.runs import RunStatus
from segsync.errors import FatalError
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.store import RunStore
from segsync.services.sync.tally import Changing, Snapshot, StateChanges
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.runs import RunRecord
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    Person,
    contacts,
    count,
    ctx,
    fast,
    in_process,
    list_members,
    people,
    reset_stats,
    setup,
    sim,
    stats,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class DiesBeforeCommitting(RunStore):
    """Every acknowledged batch is lost before its commit, as if the process died."""

    async def commit(self, snapshot: Snapshot, changes: StateChanges) -> None:
        raise FatalError("the process died before the acknowledgement was committed")


class DiesBeforeSending(RunStore):
    """The intents of the first batch are committed, then the process dies before it leaves."""

    async def intend(self, items: Sequence[UpsertItem], changing: Changing = ()) -> None:
        await super().intend(items, changing)
        raise FatalError("the process died before the batch left")


class DiesBeforeCommittingRemovals(RunStore):
    """Every confirmed removal is lost before its commit, as if the process died."""

    async def removed(self, snapshot: Snapshot, done: Sequence[tuple[str, str]]) -> None:
        raise FatalError("the process died before the removals were committed")


def _die_during_first_run(
    ctx: ServiceContext, sim: RunningSimulator, store: type[RunStore] = DiesBeforeCommitting
) -> None:
    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    parts = EngineParts(store=store)
    run = execute_claim(ctx, claim, tune=in_process(sim, fast), parts=parts)
    assert run.status is RunStatus.FAILURE, run.message


def _twenty_leave_then_run(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> tuple[list[Person], RunRecord]:
    """People 11 to 30 leave the segment, then the export runs (and ends Successful)."""
    stay = people(10)
    leave = [p.__class__(p.id, p.email, p.first, p.last, "") for p in people(20, start=11)]
    write_profiles(ctx, tmp_path / "people.csv", [*stay, *leave])
    reset_stats(sim)
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))
    assert run.status is RunStatus.SUCCESSFUL, run.message
    return stay, run


def _state(ctx: ServiceContext) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    with ctx.db.session() as session:
        repo = SyncStateRepository(session)
        return repo.memberships(1), repo.memberships(1, pending=True)


def test_a_batch_taken_but_never_recorded_is_removed_after_the_people_left(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30))
    _die_during_first_run(ctx, sim)
    assert len(list_members(sim)["Seg A"]) == 30  # Autopilot took the batch
    known, pending = _state(ctx)
    assert known == set()
    assert len(pending) == 30

    # Before the next run, 20 of them leave the segment (the data moved on meanwhile).
    stay, run = _twenty_leave_then_run(ctx, sim, tmp_path)

    assert list_members(sim)["Seg A"] == {p.email for p in stay}  # no orphan
    assert run.counts.removed == 20
    known, pending = _state(ctx)
    assert pending == set()
    assert {email for _, email in known} == {p.email for p in stay}


def test_pending_memberships_of_a_batch_that_never_left_cost_a_look_not_a_removal_each(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The batch was intended but never sent: 20 of its people leave the segment. Removing
    each would cost 20 requests for memberships that never existed; reading the list costs 1."""
    setup(ctx, sim, tmp_path, people(30))
    _die_during_first_run(ctx, sim, DiesBeforeSending)
    assert list_members(sim).get("Seg A", set()) == set()  # nothing left
    assert len(_state(ctx)[1]) == 30

    stay, run = _twenty_leave_then_run(ctx, sim, tmp_path)

    assert list_members(sim)["Seg A"] == {p.email for p in stay}
    assert run.counts.removed == 0  # nobody was on the list to be taken off
    sent = stats(sim)
    assert count(sent, "DELETE /v1/list/{list_id}/contact/{contact}") == 0
    assert count(sent, "GET /v1/list/{list_id}/contacts") == 1  # one page
    known, pending = _state(ctx)
    assert pending == set()
    assert {email for _, email in known} == {p.email for p in stay}


def test_a_removal_made_but_never_recorded_is_undone_when_the_people_come_back(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The removal analogue of the orphan: Autopilot removed them, the process died before the
    sync state learnt it, and they rejoin the segment before the next run. Trusting the state
    ("still a member") would leave them off the list for good."""
    everyone = people(30)
    setup(ctx, sim, tmp_path, everyone)
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast)).status is (
        RunStatus.SUCCESSFUL
    )
    stay, back = everyone[:20], everyone[20:]
    gone = [p.__class__(p.id, p.email, p.first, p.last, "") for p in back]
    write_profiles(ctx, tmp_path / "people.csv", [*stay, *gone])
    _die_during_first_run(ctx, sim, DiesBeforeCommittingRemovals)
    on_list = list_members(sim)["Seg A"]
    assert on_list < {p.email for p in everyone}  # Autopilot removed some (the rest waited)
    assert on_list >= {p.email for p in stay}

    write_profiles(ctx, tmp_path / "people.csv", everyone)  # they come back
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert list_members(sim)["Seg A"] == {p.email for p in everyone}  # none lost
    known, pending = _state(ctx)
    assert pending == set()
    assert len(known) == 30


def test_pending_memberships_still_wanted_are_confirmed_by_sending_them_again(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30))
    _die_during_first_run(ctx, sim)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert run.counts.removed == 0
    known, pending = _state(ctx)
    assert pending == set()
    assert len(known) == 30
    assert len(contacts(sim)) == 30
    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))
    assert again.counts.requests == 1  # everything is known now: only the look at the lists


def test_intents_never_downgrade_what_is_known(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(1))  # export 1
    with ctx.db.session() as session:
        repo = SyncStateRepository(session)
        repo.record_contacts(1, {"known@x.org": "h1"}, now=NOW)
        repo.record_memberships(1, [(7, "known@x.org")])
        repo.record_intents(
            1, ["known@x.org", "new@x.org"], [(7, "known@x.org"), (7, "new@x.org")], now=NOW
        )
    with ctx.db.session() as session:
        repo = SyncStateRepository(session)
        assert repo.hashes(1) == {"known@x.org": "h1"}  # an intent alone has no hash
        assert repo.memberships(1) == {(7, "known@x.org")}
        assert repo.memberships(1, pending=True) == {(7, "new@x.org")}
        repo.record_contacts(1, {"new@x.org": "h2"}, now=NOW)
        repo.record_memberships(1, [(7, "new@x.org")])  # the acknowledgement
    with ctx.db.session() as session:
        repo = SyncStateRepository(session)
        assert repo.hashes(1) == {"known@x.org": "h1", "new@x.org": "h2"}
        assert repo.memberships(1) == {(7, "known@x.org"), (7, "new@x.org")}
        assert repo.memberships(1, pending=True) == set()


def test_a_change_taken_but_never_recorded_is_sent_again_after_the_data_went_back(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The fields' analogue of the orphan: Autopilot took a contact's new fields, the process
    died before the sync state learnt it, and the data went back to what the state holds before
    the next run. Trusting the state's hash ("unchanged") would leave the new fields in
    Autopilot for good (the chaos soak's "wrong fields", of an email shared by two profiles
    whose winner changed and changed back)."""
    everyone = people(3)
    setup(ctx, sim, tmp_path, everyone)
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast)).status is (
        RunStatus.SUCCESSFUL
    )
    renamed = [everyone[0].__class__(1, everyone[0].email, "Pedro", "Silva"), *everyone[1:]]
    write_profiles(ctx, tmp_path / "people.csv", renamed)
    _die_during_first_run(ctx, sim)
    first = everyone[0].email
    assert first is not None
    assert contacts(sim)[first]["FirstName"] == "Pedro"  # Autopilot took the change

    write_profiles(ctx, tmp_path / "people.csv", everyone)  # the data goes back
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    held = contacts(sim)[first]
    assert (held["FirstName"], held["LastName"]) == (everyone[0].first, everyone[0].last)
    assert run.counts.updated == 1  # only the contact whose change went unanswered
    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))
    assert again.counts.requests == 1  # known again: only the look at the lists
