"""Undo a run (docs/exports.md "Undo a run") against the simulator, with real SQLite and DuckDB
files: the undo returns Autopilot's lists and the contacts' mapped fields to exactly their state
before the run; it is a run with a dry run and the hold; it refuses when a later run changed
the same people, when the change record is gone, and never sends erased people again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from segsync.domain.runs import RunStatus
from segsync.errors import Conflict, InputError
from segsync.services import runs
from segsync.services.connections import connection_id
from segsync.services.context import ServiceContext
from segsync.services.exports import ExportEdit, edit_export, export_id
from segsync.services.privacy.audit import list_events
from segsync.services.privacy.erasure import forget
from segsync.services.runs.worker import follow_run
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.run_changes import RunChangeRepository
from tests.services.runs_support import (
    Person,
    connect,
    contacts,
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

MAPPED = ("FirstName", "LastName", "custom_fields")


def snapshot(sim: RunningSimulator) -> tuple[dict[str, set[str]], dict[str, dict[str, Any]]]:
    """Every list's members, and every contact's mapped fields."""
    fields = {
        email: {key: contact.get(key) for key in MAPPED} for email, contact in contacts(sim).items()
    }
    return list_members(sim), fields


def changed_people(base: list[Person]) -> list[Person]:
    """p1–p3 renamed, p10–p12 leave Seg A, p31–p35 join (new contacts)."""
    rows = list(base)
    for i in (0, 1, 2):
        rows[i] = dataclasses.replace(rows[i], first=f"Renamed{i + 1}", score=7.5)
    for i in (9, 10, 11):
        rows[i] = dataclasses.replace(rows[i], group="")
    return rows + people(5, start=31)


def run_that_adds_updates_and_removes(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, local: Any
) -> Any:
    """30 people on Seg A, then a run that adds 5, updates 3 and removes 3: that run."""
    base = people(30)
    setup(ctx, sim, tmp_path, base, segments=("Seg A", "Seg B"))
    assert runs.run_export(ctx, "Newsletter", tune=local).status is RunStatus.SUCCESSFUL
    write_profiles(ctx, tmp_path / "people.csv", changed_people(base))
    return runs.run_export(ctx, "Newsletter", tune=local)


def undo(ctx: ServiceContext, run_id: int, local: Any, *, dry_run: bool = False) -> Any:
    queued = runs.queue_undo(ctx, run_id, dry_run=dry_run)
    assert queued.status is RunStatus.QUEUED
    return follow_run(ctx, queued.id, tune=local)


def test_undo_returns_the_lists_and_mapped_fields_to_exactly_their_state_before_the_run(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    base = people(30)
    setup(ctx, sim, tmp_path, base, segments=("Seg A", "Seg B"))
    runs.run_export(ctx, "Newsletter", tune=fast)  # over HTTP
    before = snapshot(sim)
    write_profiles(ctx, tmp_path / "people.csv", changed_people(base))
    changed = runs.run_export(ctx, "Newsletter", tune=fast)
    assert (changed.counts.added, changed.counts.updated, changed.counts.removed) == (5, 3, 3)
    assert snapshot(sim) != before
    reset_stats(sim)

    done = undo(ctx, changed.id, fast)

    assert done.status is RunStatus.SUCCESSFUL, done.message
    assert done.kind == "undo"
    assert done.undo_of == changed.id
    lists, fields = snapshot(sim)
    assert lists == before[0]
    assert {email: fields[email] for email in before[1]} == before[1]
    # the contacts the run created stay in Autopilot, on no list
    assert {e for e in fields if e not in before[1]} == {f"p{i}@example.com" for i in range(31, 36)}
    assert all(not contacts(sim)[f"p{i}@example.com"]["lists"] for i in range(31, 36))
    # 5 removals, and the 3 updated + 3 added back in one upsert batch
    requests = {route: sum(s.values()) for route, s in stats(sim)["requests"].items()}
    assert requests["DELETE /v1/list/{list_id}/contact/{contact}"] == 5
    assert requests["POST /v1/contacts"] == 1
    # the undo is audited as a run, and its own change record says what it did
    assert "export.run_undo_queued" in [e.action for e in list_events(ctx)]
    with ctx.db.session() as session:
        per_list = RunChangeRepository(session).per_list(done.id)
    assert sum(c["removed"] for c in per_list.values()) == 5
    assert sum(c["added"] for c in per_list.values()) == 3


def test_a_dry_run_undo_shows_the_plan_and_sends_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    changed = run_that_adds_updates_and_removes(ctx, sim, tmp_path, local)
    after = snapshot(sim)
    reset_stats(sim)

    dry = undo(ctx, changed.id, local, dry_run=True)

    assert dry.status is RunStatus.SUCCESSFUL
    assert dry.plan is not None
    assert (dry.plan["removals"], dry.plan["updated"], dry.plan["new_memberships"]) == (5, 3, 3)
    assert snapshot(sim) == after
    assert stats(sim)["requests"] == {}
    assert undo(ctx, changed.id, local).status is RunStatus.SUCCESSFUL  # a dry run is no undo


def test_undo_refuses_when_a_later_run_changed_the_same_people(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    base = people(30)
    changed = run_that_adds_updates_and_removes(ctx, sim, tmp_path, local)
    rows = changed_people(base)
    rows[0] = dataclasses.replace(rows[0], last="Again")  # p1, renamed by the undone run too
    write_profiles(ctx, tmp_path / "people.csv", rows)
    assert runs.run_export(ctx, "Newsletter", tune=local).counts.updated == 1

    with pytest.raises(Conflict, match=r"a later run changed 1 of the same people since \(p1@"):
        runs.queue_undo(ctx, changed.id)


def test_undo_refuses_a_pruned_record_a_second_undo_and_runs_that_sent_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    changed = run_that_adds_updates_and_removes(ctx, sim, tmp_path, local)
    dry = runs.run_export(ctx, "Newsletter", dry_run=True, tune=local)
    with pytest.raises(InputError, match="was a dry run"):
        runs.queue_undo(ctx, dry.id)
    nothing = runs.run_export(ctx, "Newsletter", tune=local)
    with pytest.raises(InputError, match="changed nothing in the destination"):
        runs.queue_undo(ctx, nothing.id)
    first = undo(ctx, changed.id, local)
    assert first.status is RunStatus.SUCCESSFUL
    with pytest.raises(Conflict, match=f"already undone by run {first.id}"):
        runs.queue_undo(ctx, changed.id)
    with ctx.db.session() as session:
        RunChangeRepository(session).prune(export_id(ctx, "Newsletter"), 0)
    with pytest.raises(Conflict, match=r"its change record is gone .*SEGSYNC_CHANGE_LOG_RUNS"):
        runs.queue_undo(ctx, first.id)


def test_erased_people_are_never_sent_again_by_an_undo(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    changed = run_that_adds_updates_and_removes(ctx, sim, tmp_path, local)
    forget(ctx, "p10@example.com", tune=local)  # removed by the run, then erased

    done = undo(ctx, changed.id, local)

    assert done.status is RunStatus.SUCCESSFUL
    assert "p10@example.com" not in contacts(sim)
    assert {"p11@example.com", "p12@example.com"} <= list_members(sim)["Seg A"]


def test_an_undo_is_judged_by_the_hold_and_sends_once_approved(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    setup(ctx, sim, tmp_path, people(30))
    first = runs.run_export(ctx, "Newsletter", tune=local)
    edit_export(ctx, export_id(ctx, "Newsletter"), ExportEdit(hold_removals="20%"))

    held = undo(ctx, first.id, local)  # undoing the first fill empties the list

    assert held.status is RunStatus.HELD
    assert len(list_members(sim)["Seg A"]) == 30
    runs.approve_run(ctx, held.id)
    done = follow_run(ctx, held.id, tune=local)
    assert done.status is RunStatus.SUCCESSFUL
    assert list_members(sim)["Seg A"] == set()


def test_undo_refuses_once_the_export_moved_to_another_connection(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    local = in_process(sim, fast)
    changed = run_that_adds_updates_and_removes(ctx, sim, tmp_path, local)
    connect(ctx, sim, name="Other")
    edit_export(
        ctx, export_id(ctx, "Newsletter"), ExportEdit(connection_id=connection_id(ctx, "Other"))
    )

    with pytest.raises(Conflict, match="moved to another connection"):
        runs.queue_undo(ctx, changed.id)
