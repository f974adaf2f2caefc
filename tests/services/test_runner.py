"""The run engine against the simulator (in-process, through its ASGI app), with real SQLite and
DuckDB files: what is sent, what is not, and what the sync state holds afterwards (X2–X5,
X9–X11, X13, E6, E7, P3)."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.destinations.base import ConnectionConfig
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import SyncPlan, build_plan
from segsync.domain.runs import RunStatus
from segsync.segments import evaluate as evaluate_module
from segsync.segments.rows import RowBatch
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.exports import DataMatching, ExportSettings, create_export
from segsync.services.privacy.audit import list_events
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync import engine as engine_module
from segsync.services.sync import read as read_module
from segsync.services.sync.batch_hash import digests_of
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.read import read_members
from segsync.services.sync.switching import (
    SENDING_COLLECTION_THRESHOLD,
    SWITCH_INTERVAL,
    YOUNG_COLLECTION_THRESHOLD,
    attempt_settings,
    fewer_collections,
    sending_collections,
)
from segsync.services.sync.tally import Tally
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    API_KEY,
    Person,
    connection_id,
    contacts,
    count,
    ctx,
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

UPSERT = "POST /v1/contacts"


def test_first_run_sends_everyone_and_a_rerun_sends_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(250))
    reset_stats(sim)

    first = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert first.status is RunStatus.SUCCESSFUL
    assert first.counts.added == 250
    assert first.counts.unchanged == 0
    assert count(stats(sim), UPSERT) == 3  # ceil(250 / 100)
    assert set(contacts(sim)) == {f"p{i}@example.com" for i in range(1, 251)}
    assert list_members(sim) == {"Seg A": set(contacts(sim))}
    assert contacts(sim)["p7@example.com"]["FirstName"] == "First7"
    assert first.counts.requests == stats(sim)["total"]
    reset_stats(sim)

    second = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert second.status is RunStatus.SUCCESSFUL
    assert stats(sim)["requests"] == {"GET /v1/lists": {"200": 1}}  # the look at the lists
    assert second.counts.unchanged == 250
    assert (second.counts.added, second.counts.updated, second.counts.requests) == (0, 0, 1)
    assert "nothing changed" in (second.message or "")


def test_changed_attributes_send_updates_only(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    crowd = people(250)
    setup(ctx, sim, tmp_path, crowd)
    runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    crowd[4] = dataclasses.replace(crowd[4], first="Changed")
    crowd[200] = dataclasses.replace(crowd[200], score=99.5)
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert (run.counts.added, run.counts.updated, run.counts.unchanged) == (0, 2, 248)
    assert stats(sim)["requests"] == {"GET /v1/lists": {"200": 1}, UPSERT: {"200": 1}}
    assert contacts(sim)["p5@example.com"]["FirstName"] == "Changed"
    score = contacts(sim)["p201@example.com"]["custom_fields"][0]
    assert score["kind"] == "Score"
    assert score["value"] == 99.5


def test_members_hashed_by_the_profile_engine_are_planned_as_python_would(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapping of text fields only, on the embedded DuckDB profile store: DuckDB hashes the
    payloads as it reads the members (services/sync/batch_hash.py). A rerun sends nothing, a
    changed name is one update, and a value DuckDB would write otherwise (a control character)
    is hashed by Python, so the run after it sends nothing again."""
    crowd = people(250)
    setup(ctx, sim, tmp_path, crowd)
    matching = DataMatching("Email", "FirstName", "LastName")
    create_export(ctx, ExportSettings("Plain", connection_id(ctx, "Sim"), matching, ["Seg A"]))
    hashed: list[int] = []

    def spy(batch: RowBatch, mapping: FieldMapping) -> list[str]:
        hashed.append(batch.num_rows)
        return digests_of(batch, mapping)

    monkeypatch.setattr(read_module, "digests_of", spy)
    first = runs.run_export(ctx, "Plain", tune=in_process(sim))
    assert (first.counts.added, hashed) == (250, [])  # sent as read: services/sync/stream.py
    reset_stats(sim)

    again = runs.run_export(ctx, "Plain", tune=in_process(sim))
    assert (again.counts.unchanged, again.counts.requests) == (250, 1)
    assert hashed == [0]  # all settled apart (services/sync/settled.py): none left to read

    crowd[4] = dataclasses.replace(crowd[4], first="Esc\x1bape")
    crowd[9] = dataclasses.replace(crowd[9], email=" P10@Example.COM")  # normalised by Python
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    changed = runs.run_export(ctx, "Plain", tune=in_process(sim))
    assert (changed.counts.updated, changed.counts.unchanged) == (1, 249)
    assert contacts(sim)["p5@example.com"]["FirstName"] == "Esc\x1bape"
    assert runs.run_export(ctx, "Plain", tune=in_process(sim)).counts.unchanged == 250
    assert hashed == [0, 1, 1]  # only the row DuckDB cannot hash is read in full


def test_the_tally_is_told_which_emails_the_plan_gives_several_items(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that it remembers only those as counted, not every contact (memory)."""
    setup(ctx, sim, tmp_path, people(20))
    plans: list[SyncPlan] = []
    told: list[Any] = []

    def planning(*args: Any, **kwargs: Any) -> SyncPlan:
        plans.append(build_plan(*args, **kwargs))
        return plans[-1]

    planned = Tally.planned

    def telling(self: Tally, **kwargs: Any) -> None:
        told.append(kwargs["several"])
        planned(self, **kwargs)

    monkeypatch.setattr(engine_module, "build_plan", planning)
    monkeypatch.setattr(Tally, "planned", telling)
    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    no_stream = EngineParts(
        first_run=None
    )  # planned, not sent as read (tests/services/sync/test_stream.py)
    assert execute_claim(ctx, claim, tune=in_process(sim), parts=no_stream).counts.added == 20
    (plan,) = plans
    assert plan.several is not None
    assert told == [plan.several]
    assert told[0] is plan.several


def test_a_rerun_shares_the_sync_states_hash_text_with_its_unchanged_contacts(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The engine hands the reader the sync state's hashes: on a rerun each unchanged
    contact's entry holds the state's very text object, not an equal copy of its own."""
    setup(ctx, sim, tmp_path, people(20))
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).counts.added == 20
    given: list[Any] = []
    scans: list[MemberScan] = []

    def reading(*args: Any) -> MemberScan:
        given.append(args[5])
        scans.append(read_members(*args))
        return scans[-1]

    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    run = execute_claim(ctx, claim, tune=in_process(sim), parts=EngineParts(read=reading))

    assert (run.status, run.counts.unchanged) == (RunStatus.SUCCESSFUL, 20)
    (known,) = given
    entries = scans[0].entries
    assert sorted(known) == sorted(entries)  # the state: every contact the first run sent
    assert all(entries[email].payload_hash is known[email] for email in entries)


@pytest.mark.parametrize(("removal", "removed"), [("mirror", 1), ("add-only", 0)])
def test_a_person_leaving_a_segment_is_removed_from_its_list_only_under_mirror(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, removal: str, removed: int
) -> None:
    crowd = people(20)
    setup(ctx, sim, tmp_path, crowd, removal=removal)
    runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    crowd[2] = dataclasses.replace(crowd[2], group="")  # p3 leaves Seg A
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.status is RunStatus.SUCCESSFUL
    assert run.counts.removed == removed
    assert count(stats(sim), "DELETE /v1/list/{list_id}/contact/{contact}") == removed
    assert count(stats(sim), UPSERT) == 0
    assert "p3@example.com" in contacts(sim)  # the contact itself stays in Autopilot
    in_list = "p3@example.com" in list_members(sim)["Seg A"]
    assert in_list is (removal == "add-only")
    reset_stats(sim)
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).counts.removed == 0
    assert stats(sim)["requests"] == {"GET /v1/lists": {"200": 1}}  # only the look at the lists


def test_a_person_in_two_segments_is_one_contact_on_two_lists(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    crowd = people(150, "a") + people(120, "ab", start=151) + people(60, "b", start=271)
    setup(ctx, sim, tmp_path, crowd, segments=("Seg A", "Seg B"))
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    everyone = contacts(sim)
    assert len(everyone) == 330 == run.counts.added
    assert len(sim.simulator.contacts_snapshot()) == 330  # no email twice
    lists = list_members(sim)
    assert len(lists["Seg A"]) == 270
    assert len(lists["Seg B"]) == 180
    assert len(everyone["p200@example.com"]["lists"]) == 2
    assert len(everyone["p100@example.com"]["lists"]) == 1
    items = 270 + 180
    assert count(stats(sim), UPSERT) == math.ceil(items / 100)
    assert count(stats(sim), "POST /v1/list") == 2


def test_invalid_empty_and_duplicate_emails_are_counted_and_listed(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    crowd = [
        *people(5),
        Person(10, None),
        Person(11, "   "),
        Person(12, "not-an-email"),
        Person(13, "  P2@Example.COM "),  # the same person as p2 by email: p2 (id 2) wins
        Person(14, " Mixed@Example.ORG "),
    ]
    setup(ctx, sim, tmp_path, crowd)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.status is RunStatus.SUCCESSFUL
    assert (run.counts.members, run.counts.invalid, run.counts.duplicates) == (10, 3, 1)
    assert run.counts.added == 6
    assert "mixed@example.org" in contacts(sim)
    assert contacts(sim)["p2@example.com"]["FirstName"] == "First2"
    assert any("set aside" in w for w in run.warnings)
    rejects = {(r.kind, r.profile_id): r for r in runs.rejects(ctx, run.id)}
    assert set(rejects) == {
        ("invalid", "10"),
        ("invalid", "11"),
        ("invalid", "12"),
        ("merged", "13"),
    }
    assert rejects[("invalid", "10")].reason == "empty"
    assert rejects[("invalid", "12")].reason.startswith("invalid: ")
    assert rejects[("invalid", "12")].email == "not-an-email"
    assert "profile 2" in rejects[("merged", "13")].reason


def test_a_shared_email_is_on_the_lists_of_every_profile_with_the_lowest_ids_fields(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    # Seg A is read first and holds only the higher id; Seg B holds the lower id.
    crowd = [
        Person(9, "same@example.com", first="High", group="a"),
        Person(3, "same@example.com", first="Low", group="b"),
    ]
    setup(ctx, sim, tmp_path, crowd, segments=("Seg A", "Seg B"))

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.counts.duplicates == 1  # one profile merged
    assert run.counts.added == 1
    assert contacts(sim)["same@example.com"]["FirstName"] == "Low"
    assert list_members(sim) == {"Seg A": {"same@example.com"}, "Seg B": {"same@example.com"}}
    (reject,) = runs.rejects(ctx, run.id)
    assert (reject.kind, reject.profile_id) == ("merged", "9")


def test_a_profile_sharing_a_synced_email_later_adds_its_list_with_the_winners_fields(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contact is known and unchanged on Seg A; a new profile with a higher id and the
    same email joins Seg B: the contact joins list B carrying the lower id's values (read
    again, since an unchanged contact's payload is not kept). Every read, the second too,
    streams its rows unordered."""
    setup(
        ctx,
        sim,
        tmp_path,
        [Person(3, "same@example.com", first="Low", group="a")],
        segments=("Seg A", "Seg B"),
    )
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).status is RunStatus.SUCCESSFUL
    write_profiles(
        ctx,
        tmp_path / "people.csv",
        [
            Person(3, "same@example.com", first="Low", group="a"),
            Person(9, "SAME@example.com", first="High", group="b"),
        ],
    )

    scans: list[MemberScan] = []
    ordered: list[bool] = []
    member_rows = evaluate_module.member_rows

    def rows_of(*args: Any, **kwargs: Any) -> Any:
        ordered.append(kwargs["ordered"])
        return member_rows(*args, **kwargs)

    def reading(*args: Any) -> MemberScan:
        scans.append(read_members(*args))
        return scans[-1]

    monkeypatch.setattr(evaluate_module, "member_rows", rows_of)
    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    run = execute_claim(ctx, claim, tune=in_process(sim), parts=EngineParts(read=reading))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert list_members(sim) == {"Seg A": {"same@example.com"}, "Seg B": {"same@example.com"}}
    assert contacts(sim)["same@example.com"]["FirstName"] == "Low"
    assert run.counts.requests == 2  # the look at the lists, one bulk request (both exist)
    (contact,) = scans[0].desired()
    assert contact.fields["FirstName"] == "Low"  # the payload sent is the lowest id's, read again
    assert ordered == [False, False, False]  # Seg A, Seg B, then the winner's row again


def test_the_contract_limit_skips_the_run_and_sends_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30), contract_limit=25)
    reset_stats(sim)

    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.status is RunStatus.SKIPPED
    assert "hold 30 distinct valid emails" in (run.message or "")
    assert "contract limit of 25" in (run.message or "")
    # nothing sent: a first run asks for the account's lists while its stream is judged (the
    # contract limit is judged there too), and a later run checks its lists before reading
    assert stats(sim)["requests"] == {"GET /v1/lists": {"200": 1}}
    with ctx.db.session() as session:
        assert SyncStateRepository(session).counts(1) == (0, 0)


def test_a_dry_run_sends_nothing_and_keeps_the_exact_plan(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(
        ctx,
        sim,
        tmp_path,
        people(150, "a") + people(10, "ab", start=151),
        segments=("Seg A", "Seg B"),
    )
    reset_stats(sim)

    dry = runs.run_export(ctx, "Newsletter", dry_run=True, tune=in_process(sim))

    assert dry.status is RunStatus.SUCCESSFUL
    assert dry.dry_run
    assert stats(sim)["total"] == 0
    assert contacts(sim) == {}
    plan = dry.plan
    assert plan is not None
    assert (plan["added"], plan["batches"], plan["lists_to_create"]) == (160, 2, 2)
    assert plan["requests_lower_bound"] == 4
    by_title = {item["title"]: item for item in plan["lists"]}
    assert by_title["Seg A"]["to_add"] == 160
    assert by_title["Seg B"]["to_add"] == 10
    sample = by_title["Seg B"]["samples"][0]
    assert sample["Email"] == "p151@example.com"
    assert sample["_autopilot_list"].startswith("<new list")
    with ctx.db.session() as session:
        assert SyncStateRepository(session).counts(1) == (0, 0)

    real = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert count(stats(sim), UPSERT) == plan["batches"]
    assert real.counts.added == plan["added"]


class _Recorder(httpx.AsyncBaseTransport):
    def __init__(self, sim: RunningSimulator) -> None:
        self.inner = httpx.ASGITransport(app=sim.simulator.app)
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_no_request_ever_carries_unsubscribed(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(120))
    recorder = _Recorder(sim)

    def record(config: ConnectionConfig) -> ConnectionConfig:
        return dataclasses.replace(config, transport=recorder)

    runs.run_export(ctx, "Newsletter", tune=record)

    contact_bodies = [json.loads(b) for b in recorder.bodies if b.startswith(b'{"contacts"')]
    assert len(contact_bodies) == 2
    assert all(b"unsubscribed" not in body for body in recorder.bodies)
    first = contact_bodies[0]["contacts"][0]
    assert set(first) <= {"Email", "FirstName", "LastName", "custom", "_autopilot_list"}


def test_a_run_writes_an_audit_event_of_what_left_the_system(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(12))
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    events = [e for e in list_events(ctx) if e.action == "export.run"]

    assert len(events) == 1
    details: dict[str, Any] = events[0].details
    assert details["run_id"] == run.id
    assert details["connection"] == "Sim"
    assert details["destination"] == "autopilot"
    assert details["lists"] == ["Seg A"]
    assert details["fields"] == ["Email", "FirstName", "LastName", "custom:float:Score"]
    assert details["counts"]["added"] == 12


def test_logs_mask_emails_and_never_hold_the_key(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crowd = people(30)
    setup(ctx, sim, tmp_path, crowd)
    sim.simulator.faults.reject_emails(r"^p4@")
    caplog.set_level(logging.DEBUG, logger="segsync")

    runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    text = caplog.text
    assert "p•••@e•••.com" in text  # the refused contact, masked
    assert "@example.com" not in text
    assert API_KEY not in text


def test_threads_take_turns_quickly_while_a_run_goes_on_and_as_before_after(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GIL switch interval is 0.5 ms during an attempt (its DB thread, reader and event
    loop hand the GIL back and forth at every commit); while members are read and planned, the
    youngest garbage generation is collected every 100,000 allocations, and what the loaded
    sync state and the read members hold is set apart from the collector. Afterwards all is as
    before."""
    setup(ctx, sim, tmp_path, people(5))
    switch: list[float] = []
    reading_gc: set[tuple[int, ...]] = set()
    planning_gc: list[tuple[int, ...]] = []
    set_apart: list[int] = []

    def planning(*args: Any, **kwargs: Any) -> SyncPlan:
        planning_gc.append(gc.get_threshold())
        set_apart.append(gc.get_freeze_count())
        return build_plan(*args, **kwargs)

    monkeypatch.setattr(engine_module, "build_plan", planning)

    def reading(*args: Any) -> MemberScan:
        switch.append(sys.getswitchinterval())
        set_apart.append(gc.get_freeze_count())
        scan_ctx, segments, mapping, needs_payload, suppressed, known, apart = args

        def needs(*asked: str) -> bool:
            reading_gc.add(gc.get_threshold())
            return bool(needs_payload(*asked))

        return read_members(scan_ctx, segments, mapping, needs, suppressed, known, apart)

    before = (sys.getswitchinterval(), gc.get_threshold(), gc.get_freeze_count())
    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    parts = EngineParts(read=reading, first_run=None)
    run = execute_claim(ctx, claim, tune=in_process(sim), parts=parts)

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert switch == [SWITCH_INTERVAL] != [before[0]]
    during = (YOUNG_COLLECTION_THRESHOLD, *before[1][1:])
    assert reading_gc == {during} != {before[1]}
    assert planning_gc == [during]
    assert before[2] == 0
    state_loaded, members_read = set_apart
    assert 0 < state_loaded < members_read  # set apart after loading, again after reading
    assert (sys.getswitchinterval(), gc.get_threshold(), gc.get_freeze_count()) == before


def test_objects_are_set_apart_only_within_an_attempt_that_owns_the_freezing() -> None:
    """Outside an attempt (a preview) nothing is set apart; in a process that froze objects
    itself, an attempt leaves its freezing alone."""
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        kept = [[i] for i in range(100)]
    assert gc.get_freeze_count() == 0  # no attempt
    with attempt_settings():
        with fewer_collections():
            kept += [[i] for i in range(100)]
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0  # handed back at the attempt's end
    gc.freeze()
    try:
        own = gc.get_freeze_count()
        with attempt_settings():
            with fewer_collections():
                kept += [[i] for i in range(10_000)]
            assert gc.get_freeze_count() <= own  # not ours to add to (some may have died)
        assert 0 < gc.get_freeze_count() <= own  # nor to hand back
    finally:
        gc.unfreeze()


def test_process_settings_are_held_while_any_run_needs_them() -> None:
    """Two runs in one process: the first in sets the GIL switch interval, the last out puts
    back what was there, whatever order they end in."""
    before = sys.getswitchinterval()
    first, second = attempt_settings(), attempt_settings()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == SWITCH_INTERVAL  # the second run still goes on
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before


def test_garbage_collection_switched_off_stays_off_while_members_are_read() -> None:
    """A process that turned automatic collection off (threshold 0) keeps it off during a run,
    and gets back exactly what it had."""
    before = gc.get_threshold()
    gc.set_threshold(0, *before[1:])
    try:
        with fewer_collections():
            assert gc.get_threshold() == (0, *before[1:])
        with fewer_collections():
            gc.set_threshold(*before)  # something else changed it meanwhile: still put back
        assert gc.get_threshold() == (0, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_the_young_threshold_is_the_highest_asked_whatever_order_holders_leave_in() -> None:
    """Reading (fewer_collections) and sending (sending_collections) may overlap in one
    process — a preview reading while a run sends, two runs — and leave in any order: the
    threshold is the highest level held, and what was there comes back once both left."""
    before = gc.get_threshold()
    young = max(before[0], SENDING_COLLECTION_THRESHOLD)
    reading, sending = fewer_collections(), sending_collections()
    reading.__enter__()
    sending.__enter__()
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    reading.__exit__(None, None, None)  # the reader leaves first: the sender's level
    assert gc.get_threshold() == (young, *before[1:])
    with fewer_collections():  # another reader comes and goes
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
    assert gc.get_threshold() == (young, *before[1:])
    sending.__exit__(None, None, None)
    assert gc.get_threshold() == before
