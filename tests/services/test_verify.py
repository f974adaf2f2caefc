"""Verify and repair (docs/exports.md "Verify") against the simulator, with real SQLite and
DuckDB files: drift planted by hand over the simulator's HTTP API is found, reported with its
cost, repaired in the fewest requests, and the sync state follows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.domain.permissions import Actor, Role
from segsync.domain.runs import RunStatus
from segsync.errors import PermissionDenied
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.exports import verify as verify_service
from segsync.services.exports.verify_schedule import (
    set_verify_schedule,
    tick_verifies,
    verify_schedule_from_options,
)
from segsync.services.runs import queue, worker
from segsync.services.runs.worker import Worker
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    API_KEY,
    Person,
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


def autopilot(sim: RunningSimulator, method: str, path: str, body: Any = None) -> httpx.Response:
    """A request to the simulator's Autopilot API over HTTP, as a person editing by hand."""
    response = httpx.request(
        method, sim.base_url + path, json=body, headers={"autopilotapikey": API_KEY}
    )
    assert response.status_code == 200, response.text
    return response


def by_hand(sim: RunningSimulator, method: str, path: str, body: Any = None) -> None:
    """A change made by hand in Autopilot's web app (the simulator's ``/_sim`` operations)."""
    response = httpx.request(method, sim.root_url + "/_sim" + path, json=body)
    assert response.status_code == 200, response.text


def list_id(ctx: ServiceContext) -> str:
    with ctx.db.session() as session:
        repo = ExportRepository(session)
        export = repo.get_by_name("Newsletter")
        return next(iter(repo.lists(export.id).values()))[0]


def memberships(ctx: ServiceContext) -> set[str]:
    with ctx.db.session() as session:
        export = ExportRepository(session).get_by_name("Newsletter")
        return {email for _, email in SyncStateRepository(session).memberships(export.id)}


def verify(
    ctx: ServiceContext, sim: RunningSimulator, *, repair: bool = False
) -> tuple[verify_service.QueuedVerify, runs.RunRecord]:
    told: list[verify_service.QueuedVerify] = []
    run = verify_service.verify_export(
        ctx, "Newsletter", repair=repair, on_estimate=told.append, tune=in_process(sim)
    )
    assert len(told) == 1
    return told[0], run


@pytest.fixture
def synced(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path) -> str:
    """Five people in Seg A, sent by a run; returns the list's id."""
    setup(ctx, sim, tmp_path, people(5))
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).status is RunStatus.SUCCESSFUL
    return list_id(ctx)


def test_verify_finds_orphan_and_missing_then_repair_fixes_both(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    autopilot(sim, "POST", "/contact", {"contact": {"Email": "Stray@Example.com",
                                                    "_autopilot_list": synced}})  # fmt: skip
    autopilot(sim, "DELETE", f"/list/{synced}/contact/p2@example.com")
    reset_stats(sim)

    queued, run = verify(ctx, sim)

    assert (queued.estimate.lists, queued.estimate.pages, queued.estimate.requests) == (1, 1, 2)
    assert run.kind == "verify"
    assert run.status is RunStatus.SUCCESSFUL
    report = verify_service.verify_report(run)
    assert report["exit_code"] == 1
    assert report["drift"] == 2
    (entry,) = report["lists"]
    assert entry["orphan_emails"] == ["stray@example.com"]
    assert entry["missing_emails"] == ["p2@example.com"]
    assert stats(sim)["total"] == run.counts.requests == 2  # GET /lists + one page
    assert "stray@example.com" not in memberships(ctx)  # a verify changes nothing
    reset_stats(sim)

    _, repaired = verify(ctx, sim, repair=True)

    assert repaired.kind == "repair"
    assert repaired.status is RunStatus.SUCCESSFUL
    assert verify_service.verify_report(repaired)["exit_code"] == 0
    assert (repaired.counts.added, repaired.counts.removed) == (1, 1)
    on_list = list_members(sim)["Seg A"]
    assert on_list == {f"p{i}@example.com" for i in range(1, 6)}
    assert count(stats(sim), "POST /v1/contacts") == 1  # the missing member: one bulk upsert
    assert count(stats(sim), "DELETE /v1/list/{list_id}/contact/{contact}") == 1
    assert contacts(sim)["p2@example.com"]["FirstName"] == "First2"  # the full payload
    assert memberships(ctx) == on_list

    _, again = verify(ctx, sim)

    assert verify_service.verify_report(again)["exit_code"] == 0
    assert again.plan is not None
    assert again.plan["drift"] == 0
    assert "no drift" in (again.message or "")


def test_unsubscribed_by_hand_is_reported_and_not_resubscribed(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    by_hand(sim, "POST", "/contacts/p3@example.com/unsubscribe")
    autopilot(sim, "DELETE", f"/list/{synced}/contact/p4@example.com")

    _, run = verify(ctx, sim, repair=True)

    report = verify_service.verify_report(run)
    assert report["totals"]["unsubscribed"] == 1
    assert report["lists"][0]["unsubscribed_emails"] == ["p3@example.com"]
    assert report["drift"] == 1  # p4 only: the unsubscribed contact is no drift
    assert any("never re-subscribed" in warning for warning in run.warnings)
    assert contacts(sim)["p3@example.com"]["unsubscribed"] is True
    assert "p3@example.com" in list_members(sim)["Seg A"]

    _, again = verify(ctx, sim)
    assert verify_service.verify_report(again)["exit_code"] == 0
    assert contacts(sim)["p3@example.com"]["unsubscribed"] is True


def test_renamed_list_is_reported_and_repair_keeps_its_new_title(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    by_hand(sim, "POST", f"/lists/{synced}", {"title": "Renamed by hand"})

    _, run = verify(ctx, sim)

    entry = verify_service.verify_report(run)["lists"][0]
    assert (entry["state"], entry["found_title"], entry["drift"]) == (
        "renamed",
        "Renamed by hand",
        1,
    )
    _, repaired = verify(ctx, sim, repair=True)
    assert verify_service.verify_report(repaired)["exit_code"] == 0
    _, again = verify(ctx, sim)
    assert verify_service.verify_report(again)["drift"] == 0


def test_viewer_may_not_verify(ctx: ServiceContext, sim: RunningSimulator, synced: str) -> None:
    viewer = ServiceContext(
        settings=ctx.settings,
        db=ctx.db,
        now=ctx.now,
        actor=Actor(user_id=99, email="viewer@example.com", role=Role.VIEWER),
    )
    with pytest.raises(PermissionDenied):
        verify_service.enqueue_verify(viewer, "Newsletter")
    with pytest.raises(PermissionDenied):
        verify_service.enqueue_verify(viewer, "Newsletter", repair=True)


def test_a_scheduled_verify_is_queued_once_and_a_worker_runs_it(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    moment = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]
    timed = ServiceContext(settings=ctx.settings, db=ctx.db, now=lambda: moment[0], actor=ctx.actor)
    schedule = verify_schedule_from_options("daily", at="03:00")
    assert set_verify_schedule(timed, "Newsletter", schedule).description == "Daily at 03:00 (UTC)"
    assert tick_verifies(timed) == []  # slots before it was saved never fire
    autopilot(sim, "DELETE", f"/list/{synced}/contact/p1@example.com")
    moment[0] = datetime(2026, 6, 3, 3, 30, tzinfo=UTC)  # two slots missed: one verify

    (queued,) = tick_verifies(timed)

    assert queued.due_at == datetime(2026, 6, 3, 3, 0, tzinfo=UTC)
    assert tick_verifies(timed) == []  # once per due time
    record = Worker(timed, tune=in_process(sim)).run_once()
    assert record is not None
    assert (record.id, record.kind, record.trigger) == (queued.run_id, "verify", "scheduled")
    assert record.status is RunStatus.SUCCESSFUL
    assert verify_service.verify_report(record)["totals"]["missing"] == 1
    assert "p1@example.com" not in list_members(sim)["Seg A"]  # a scheduled verify only reports


def test_profiles_sharing_an_email_count_on_every_list_as_a_run_sends_them(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    shared = [Person(1, "same@example.com", group="a"), Person(2, "same@example.com", group="b")]
    setup(ctx, sim, tmp_path, [*shared, *people(3, start=10)], segments=("Seg A", "Seg B"))
    assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).status is RunStatus.SUCCESSFUL
    assert "same@example.com" in list_members(sim)["Seg B"]

    _, run = verify(ctx, sim)

    report = verify_service.verify_report(run)
    assert report["drift"] == 0, report
    assert report["estimate"] == {"lists": 2, "pages": 2, "requests": 3}


def test_a_verify_asked_to_cancel_stops_before_reading(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    queued = verify_service.enqueue_verify(ctx, "Newsletter", repair=True)
    claim = queue.claim_run(ctx, queued.run.id)
    assert claim is not None
    runs.cancel_run(ctx, queued.run.id)
    reset_stats(sim)

    record = worker.execute_claim(ctx, claim, tune=in_process(sim))

    assert record.status is RunStatus.CANCELED
    assert record.message == "canceled: nothing more was read or changed"
    assert stats(sim)["total"] == 0


def test_repair_makes_a_list_deleted_by_hand_again_and_fills_it(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    by_hand(sim, "DELETE", f"/lists/{synced}")

    _, found = verify(ctx, sim)

    entry = verify_service.verify_report(found)["lists"][0]
    assert (entry["state"], entry["missing"], entry["drift"]) == ("deleted", 5, 6)
    assert "Seg A" not in list_members(sim)
    reset_stats(sim)

    _, repaired = verify(ctx, sim, repair=True)

    assert verify_service.verify_report(repaired)["exit_code"] == 0
    assert repaired.plan is not None
    assert repaired.plan["repaired"]["lists_created"] == 1
    assert list_members(sim)["Seg A"] == {f"p{i}@example.com" for i in range(1, 6)}
    assert count(stats(sim), "POST /v1/list") == 1
    assert count(stats(sim), "POST /v1/contacts") == 1  # five members, one bulk upsert
    new_id = list_id(ctx)
    assert new_id != synced
    assert memberships(ctx) == list_members(sim)["Seg A"]
    _, again = verify(ctx, sim)
    assert verify_service.verify_report(again)["exit_code"] == 0


def test_a_verify_that_cannot_read_the_lists_fails_saying_why(
    ctx: ServiceContext, sim: RunningSimulator, synced: str
) -> None:
    sim.simulator.faults.revoke_key(API_KEY)

    _, run = verify(ctx, sim)

    assert run.status is RunStatus.FAILURE
    assert run.message == (
        "connection 'Sim': the Autopilot API key was rejected (401); edit the connection and "
        "press Connect"
    )  # said once, not wrapped in a second "key was rejected"
    assert verify_service.verify_report(run)["exit_code"] == 1


def test_a_change_a_repair_sent_but_never_saved_is_sent_again_after_the_data_went_back(
    ctx: ServiceContext,
    sim: RunningSimulator,
    synced: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A repair puts a missing member back with the data's fields of now, and dies before the
    answer is saved; the data goes back before the next run. The repair may have changed the
    contact's fields, so the run sends them again rather than trust the hash it holds."""
    everyone = people(5)
    renamed = [Person(2, "p2@example.com", "Pedro", "Silva"), *everyone[:1], *everyone[2:]]
    write_profiles(ctx, tmp_path / "people.csv", renamed)
    autopilot(sim, "DELETE", f"/list/{synced}/contact/p2@example.com")

    def dies(*_args: object) -> None:
        raise RuntimeError("the process died before the answer was saved")

    monkeypatch.setattr("segsync.services.sync.repair._acknowledged", dies)
    _, repaired = verify(ctx, sim, repair=True)
    monkeypatch.undo()
    assert repaired.status is RunStatus.FAILURE
    assert contacts(sim)["p2@example.com"]["FirstName"] == "Pedro"  # Autopilot took it

    write_profiles(ctx, tmp_path / "people.csv", everyone)  # the data goes back
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert run.status is RunStatus.SUCCESSFUL, run.message
    held = contacts(sim)["p2@example.com"]
    assert (held["FirstName"], held["LastName"]) == ("First2", "Last2")
    assert list_members(sim)["Seg A"] == {p.email for p in everyone}
