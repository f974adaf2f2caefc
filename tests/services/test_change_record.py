"""The change record (docs/exports.md "The change record"): every run writes who it added to
which list, whose mapped values it changed (with the values before), whom it removed and what
the destination refused — in the transaction of the sync state it describes; older runs' records
are pruned; an erasure deletes a person's. Runs reach the simulator in-process."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import event

from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.privacy.erasure import forget
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.run_changes import ChangeRecord, RunChangeRepository
from tests.services.runs_support import (
    Person,
    ctx,
    in_process,
    people,
    setup,
    sim,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures


def run(ctx: ServiceContext, sim: RunningSimulator) -> runs.RunRecord:
    record = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert record.status is RunStatus.SUCCESSFUL, record.message
    return record


def changes(ctx: ServiceContext, run_id: int) -> list[ChangeRecord]:
    with ctx.db.session() as session:
        return list(RunChangeRepository(session).iter_run(run_id, chunk=7))


def test_a_first_run_records_each_person_added_with_what_was_sent(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30))

    first = run(ctx, sim)

    rows = changes(ctx, first.id)
    assert len(rows) == 30
    assert {r.action for r in rows} == {"added"}
    assert all(r.new_contact and r.previous is None and r.segment_id == 1 for r in rows)
    p7 = next(r for r in rows if r.email == "p7@example.com")
    assert p7.profile_id == "7"
    assert p7.fields == {
        "fields": {"FirstName": "First7", "LastName": "Last7"},
        "custom": {"float--Score": 1.0},
    }
    assert p7.changed_fields() == ["FirstName", "LastName", "custom.float--Score"]
    with ctx.db.session() as session:
        assert RunChangeRepository(session).per_list(first.id) == {1: {"added": 30}}


def test_updates_keep_the_values_before_and_removals_name_the_list(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    group = people(10)
    setup(ctx, sim, tmp_path, group)
    first = run(ctx, sim)
    renamed = dataclasses.replace(group[0], first="Renamed")  # p1
    left = dataclasses.replace(group[1], group="")  # p2 leaves the segment
    write_profiles(ctx, tmp_path / "people.csv", [renamed, left, *group[2:], Person(99, "n@x.org")])

    second = run(ctx, sim)

    rows = {(r.action, r.email): r for r in changes(ctx, second.id)}
    assert set(rows) == {
        ("updated", "p1@example.com"),
        ("removed", "p2@example.com"),
        ("added", "n@x.org"),
    }
    update = rows["updated", "p1@example.com"]
    assert update.segment_id is None
    assert not update.new_contact
    assert update.previous is not None
    assert update.fields is not None
    assert update.previous["fields"]["FirstName"] == "First1"
    assert update.fields["fields"]["FirstName"] == "Renamed"
    assert update.changed_fields() == ["FirstName"]
    assert update.profile_id == "1"
    assert rows["removed", "p2@example.com"].segment_id == 1
    assert rows["added", "n@x.org"].new_contact
    with ctx.db.session() as session:
        repo = RunChangeRepository(session)
        assert repo.per_list(second.id) == {None: {"updated": 1}, 1: {"added": 1, "removed": 1}}
        assert [c.action for c in repo.for_email("p1@example.com")] == ["updated", "added"]
        emails = ["p1@example.com", "p2@example.com", "p5@example.com"]
        assert repo.touched_after(1, first.id, emails) == {"p1@example.com", "p2@example.com"}
        assert repo.touched_after(1, second.id, emails) == set()
    assert second.counts.updated == 1
    assert second.counts.removed == 1


def test_a_refused_contact_is_recorded_and_its_reject_names_the_profile(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    sim.simulator.faults.reject_emails(r"^p3@")

    first = run(ctx, sim)

    refused = [r for r in changes(ctx, first.id) if r.action == "refused"]
    assert [(r.email, r.profile_id) for r in refused] == [("p3@example.com", "3")]
    (reject,) = list(runs.rejects(ctx, first.id))
    assert (reject.kind, reject.profile_id, reject.email) == ("rejected", "3", "p3@example.com")


def test_only_the_last_runs_keep_their_record(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    ctx.settings.change_log_runs = 2
    group = people(3)
    setup(ctx, sim, tmp_path, group)
    ids = [run(ctx, sim).id]
    for n in range(3):  # each run renames p1
        write_profiles(
            ctx, tmp_path / "people.csv", [dataclasses.replace(group[0], first=f"N{n}"), *group[1:]]
        )
        ids.append(run(ctx, sim).id)
    unchanged = run(ctx, sim)  # records nothing, so the window stays on the runs that did

    assert unchanged.counts.requests <= 1
    with ctx.db.session() as session:
        repo = RunChangeRepository(session)
        assert repo.runs_kept(1) == [ids[3], ids[2]]
        assert not repo.has_run(ids[0])
        assert not repo.has_run(ids[1])
        (latest,) = repo.for_run(ids[3])
    assert latest.previous is not None
    assert latest.previous["fields"]["FirstName"] == "N1"


def test_an_erasure_deletes_the_persons_record(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(4))
    first = run(ctx, sim)

    forget(ctx, "P2@example.com", tune=in_process(sim))

    assert "p2@example.com" not in {r.email for r in changes(ctx, first.id)}
    assert len(changes(ctx, first.id)) == 3


def test_a_first_run_looks_up_previous_values_only_for_contacts_it_had(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A first run's contacts are all new: its commits look nothing up, and the record still
    says new and no previous values. The next run, renaming a few, looks them up and records
    what they were."""
    group = people(30)
    setup(ctx, sim, tmp_path, group)
    looked_up: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if (
            "FROM run_changes WHERE run_id" in statement
            or "payload FROM sync_contacts" in statement
        ):
            looked_up.append(statement)  # before_run's two queries

    event.listen(ctx.db.engine, "before_cursor_execute", before)
    try:
        first = run(ctx, sim)
        assert looked_up == []
        assert all(r.new_contact and r.previous is None for r in changes(ctx, first.id))
        renamed = [dataclasses.replace(p, first=f"New{p.id}") for p in group[:3]]
        write_profiles(ctx, tmp_path / "people.csv", [*renamed, *group[3:]])
        second = run(ctx, sim)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", before)
    assert looked_up  # the renamed contacts were known: looked up
    rows = changes(ctx, second.id)
    assert {r.email for r in rows} == {f"p{n}@example.com" for n in (1, 2, 3)}
    assert all(not r.new_contact and r.previous is not None for r in rows)


def test_previous_values_are_looked_up_with_a_handful_of_statement_texts(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """A run looks up, per commit, the previous values of the emails it acknowledged, with an
    IN list of them: every distinct length was a statement the driver kept prepared (up to 128
    per connection). Lookups of 1 to 40 emails use power-of-two lists (1 … 32, 64) and still
    answer for exactly the emails asked, from the run's own rows or from the sync state."""
    setup(ctx, sim, tmp_path, people(40))
    first = run(ctx, sim)
    emails = [f"p{n}@example.com" for n in range(1, 41)]
    texts: set[str] = set()

    def before(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        texts.add(statement)

    with ctx.db.session() as session:
        event.listen(session.get_bind(), "before_cursor_execute", before)
        try:
            repo = RunChangeRepository(session)
            for n in range(1, 41):
                asked = emails[:n]
                earlier = repo.before_run(first.id, first.export_id or 0, asked)
                assert earlier == {e: (None, True) for e in asked}  # the run's own rows
                later = repo.before_run(first.id + 1, first.export_id or 0, asked)
                assert set(later) == set(asked)  # from the sync state's payloads
                assert all(new is False and payload for payload, new in later.values())
        finally:
            event.remove(session.get_bind(), "before_cursor_execute", before)
    in_lists = {t for t in texts if " IN (" in t}
    assert len(in_lists) == 2 * 7  # two queries × lists of 1, 2, 4, 8, 16, 32 and 64
