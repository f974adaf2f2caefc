"""Erasure (P4) end to end: exports really run against simulators over loopback, then
``forget`` deletes the person there, clears the sync state and records it in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from segsync.domain.permissions import Role
from segsync.errors import InputError, PermissionDenied
from segsync.services.context import ServiceContext
from segsync.services.privacy import erasure as service
from segsync.services.privacy.audit import list_events
from segsync.services.runs import run_export
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from segsync.storage.models.connections import Connection
from segsync.storage.models.operations import AuditEvent, Erasure
from segsync.storage.models.runs import RunReject
from segsync.storage.models.sync import SyncContact, SyncMembership
from tests.services.export_fixtures import acting_as
from tests.services.runs_support import (
    API_KEY,
    connect,
    contacts,
    count,
    ctx,
    fast,
    make_export,
    people,
    setup,
    sim,
    stats,
)

__all__ = ["ctx", "sim"]  # fixtures


def sync_rows(ctx: ServiceContext, email: str) -> tuple[int, int]:
    with ctx.db.session() as session:
        contacts_ = session.scalar(select(func.count()).where(SyncContact.email == email))
        members = session.scalar(select(func.count()).where(SyncMembership.email == email))
    return int(contacts_ or 0), int(members or 0)


def erasure_rows(ctx: ServiceContext) -> list[Erasure]:
    """Erasures at connections (the suppression markers are checked on their own)."""
    with ctx.db.session() as session:
        query = select(Erasure).where(Erasure.status != "suppressed").order_by(Erasure.id)
        return list(session.scalars(query))


def audit_text(ctx: ServiceContext) -> str:
    with ctx.db.session() as session:
        rows = session.scalars(select(AuditEvent)).all()
        return "\n".join(f"{r.actor} {r.target} {r.summary} {r.details}" for r in rows)


@pytest.fixture
def second_sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=8)) as running:
        yield running


def test_forget_erases_the_person_from_every_connection_and_the_sync_state(
    ctx: ServiceContext,
    sim: RunningSimulator,
    second_sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    connect(ctx, second_sim, name="Sim 2")
    make_export(ctx, name="Weekly", connection="Sim 2")
    for name in ("Newsletter", "Weekly"):
        assert run_export(ctx, name, tune=fast).status == "successful"
    assert "p1@example.com" in contacts(sim)
    assert "p1@example.com" in contacts(second_sim)
    assert sync_rows(ctx, "p1@example.com") == (2, 2)

    report = service.forget(ctx, "  P1@Example.COM ", tune=fast)

    assert report.found
    assert not report.pending
    assert report.email == "p•••@e•••.com"
    assert [(o.connection, o.status, o.deleted) for o in report.outcomes] == [
        ("Sim", "done", True),
        ("Sim 2", "done", True),
    ]
    assert set(report.exports) == {"Newsletter", "Weekly"}
    for running in (sim, second_sim):
        remaining = contacts(running)
        assert "p1@example.com" not in remaining
        assert set(remaining) == {f"p{i}@example.com" for i in range(2, 6)}
        assert count(stats(running), "DELETE /v1/contact/{contact}", "200") == 1
    assert sync_rows(ctx, "p1@example.com") == (0, 0)
    assert sync_rows(ctx, "p2@example.com") == (2, 2)
    # Done erasures keep only a digest of the address; the audit trail only the masked form.
    rows = erasure_rows(ctx)
    assert [r.status for r in rows] == ["done", "done"]
    assert {r.email for r in rows} == {service.email_digest("p1@example.com")}
    assert all(r.done_at is not None and r.attempts == 1 for r in rows)
    actions = [e.action for e in list_events(ctx) if e.action.startswith("erasure.")]
    assert actions == ["erasure.requested"] * 2 + ["erasure.completed"] * 2
    trail = audit_text(ctx)
    assert "p1@example.com" not in trail
    assert "p•••@e•••.com" in trail
    # Asking again finds nothing left to erase.
    assert service.forget(ctx, "p1@example.com").found is False


def test_unreachable_destination_keeps_the_erasure_pending_until_a_retry_succeeds(
    ctx: ServiceContext,
    tmp_path: Path,
) -> None:
    simulator = Simulator(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=3))
    with serve_in_thread(simulator) as first:
        setup(ctx, first, tmp_path, people(3))
        assert run_export(ctx, "Newsletter", tune=fast).status == "successful"
        port = int(first.root_url.rsplit(":", 1)[1])
    # The simulator is down now: connections to its port are refused.

    report = service.forget(ctx, "p2@example.com", tune=fast)

    assert report.pending
    (outcome,) = report.outcomes
    assert outcome.status == "pending"
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert "p2@example.com" not in outcome.error
    assert sync_rows(ctx, "p2@example.com") == (1, 1)
    (row,) = erasure_rows(ctx)
    assert (row.status, row.email) == ("pending", "p2@example.com")
    assert service.retry_pending_erasures(ctx, tune=fast) == 0
    assert erasure_rows(ctx)[0].attempts == 2
    # Asking again while pending does not add a second erasure.
    service.forget(ctx, "p2@example.com", tune=fast)
    assert len(erasure_rows(ctx)) == 1

    with serve_in_thread(simulator, port=port) as back:
        assert "p2@example.com" in contacts(back)
        assert service.retry_pending_erasures(ctx, tune=fast) == 1
        assert "p2@example.com" not in contacts(back)
        assert service.retry_pending_erasures(ctx, tune=fast) == 0
        assert count(stats(back), "DELETE /v1/contact/{contact}") == 1

    (row,) = erasure_rows(ctx)
    assert row.status == "done"
    assert row.attempts == 4
    assert row.last_error is None
    assert row.email == service.email_digest("p2@example.com")
    assert sync_rows(ctx, "p2@example.com") == (0, 0)
    assert [e.action for e in list_events(ctx) if e.action == "erasure.completed"] == [
        "erasure.completed"
    ]


def test_a_rejected_key_keeps_the_erasure_pending_and_flags_the_connection(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    setup(ctx, sim, tmp_path, people(2))
    run_export(ctx, "Newsletter", tune=fast)
    sim.simulator.faults.revoke_key(API_KEY)

    report = service.forget(ctx, "p1@example.com", tune=fast)

    assert report.pending
    assert "rejected" in (report.outcomes[0].error or "")
    with ctx.db.session() as session:
        assert session.scalar(select(Connection.health)) == "key_rejected"
    sim.simulator.faults.restore_key(API_KEY)
    assert service.retry_pending_erasures(ctx, tune=fast) == 1
    assert "p1@example.com" not in contacts(sim)


def test_a_person_never_exported_is_audited_and_nothing_is_sent(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    setup(ctx, sim, tmp_path, people(2))
    run_export(ctx, "Newsletter", tune=fast)
    before = stats(sim)["requests"]

    report = service.forget(ctx, "nobody@example.com")

    assert not report.found
    assert not report.pending
    assert report.message == (
        "n•••@e•••.com was not found in any export's sync state; nothing sent"
    )
    assert stats(sim)["requests"] == before
    assert erasure_rows(ctx) == []
    (event,) = [e for e in list_events(ctx) if e.action == "erasure.requested"]
    assert "not found in any export's sync state" in event.summary
    assert event.target == "n•••@e•••.com"


def test_forget_deletes_the_records_runs_set_aside_for_that_email(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    sim.simulator.faults.reject_emails(r"^p3@")
    setup(ctx, sim, tmp_path, people(4))
    run_export(ctx, "Newsletter", tune=fast)
    with ctx.db.session() as session:
        emails = list(session.scalars(select(RunReject.email)))
    assert [e.strip().lower() for e in emails if e] == ["p3@example.com"]

    report = service.forget(ctx, "P3@example.com")

    assert report.rejects_removed == 1
    # Autopilot refused p3, but its batch's write-ahead intent (pending) says "maybe sent": an
    # erasure errs on the side of asking Autopilot to delete it too.
    assert report.found
    assert "1 set-aside run record(s) deleted" in report.message
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(RunReject)) == 0


def test_invalid_email_is_refused(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match="invalid"):
        service.forget(ctx, "not-an-email")


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.VIEWER])
def test_only_administrators_erase(ctx: ServiceContext, role: Role) -> None:
    other = acting_as(ctx, role)
    with pytest.raises(PermissionDenied, match="only administrators erase"):
        service.forget(other, "p1@example.com")
    with pytest.raises(PermissionDenied):
        service.retry_pending_erasures(other)
    with pytest.raises(PermissionDenied):
        service.list_erasures(other)
    assert audit_text(ctx) == ""


def test_erasure_view_never_shows_the_clear_email(
    ctx: ServiceContext,
    tmp_path: Path,
) -> None:
    simulator = Simulator(SimulatorConfig(api_keys=[API_KEY], rate_limit=0))
    with serve_in_thread(simulator) as running:
        setup(ctx, running, tmp_path, people(1))
        run_export(ctx, "Newsletter", tune=fast)
    service.forget(ctx, "p1@example.com", tune=fast)  # pending: the simulator is down
    (view,) = [service.erasure_view(r) for r in service.list_erasures(ctx, status="pending")]
    assert view["email"] == "p•••@e•••.com"
    assert view["status"] == "pending"
    assert view["connection"] == "Sim"


def test_a_forgotten_person_is_not_sent_again_until_the_suppression_is_lifted(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(4))
    assert run_export(ctx, "Newsletter", tune=fast).status == "successful"
    service.forget(ctx, "p2@example.com", tune=fast)
    assert "p2@example.com" not in contacts(sim)

    # p2 is still in the profile data and the segment: the next run must not send them again.
    run = run_export(ctx, "Newsletter", tune=fast)
    assert run.status == "successful"
    assert "p2@example.com" not in contacts(sim)
    assert run.counts.added == 0
    assert any("forgotten with `segsync forget`" in w for w in run.warnings)
    with ctx.db.session() as session:
        kinds = session.execute(
            select(RunReject.kind, RunReject.email).where(RunReject.run_id == run.id)
        ).all()
    assert ("forgotten", None) in [tuple(k) for k in kinds]
    with ctx.db.session() as session:
        markers = session.scalars(select(Erasure).where(Erasure.status == "suppressed")).all()
    assert [m.email for m in markers] == [service.email_digest("p2@example.com")]
    assert markers[0].connection_id is None

    assert service.lift_suppression(ctx, "P2@example.com") is True
    assert service.lift_suppression(ctx, "p2@example.com") is False
    rerun = run_export(ctx, "Newsletter", tune=fast)
    assert rerun.counts.added == 1
    assert "p2@example.com" in contacts(sim)
    assert [e.action for e in list_events(ctx)].count("erasure.lifted") == 1


def test_forgetting_someone_never_exported_still_keeps_them_out_of_later_runs(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(3))
    assert service.forget(ctx, "p3@example.com", tune=fast).found is False
    run = run_export(ctx, "Newsletter", tune=fast)
    assert run.status == "successful"
    assert set(contacts(sim)) == {"p1@example.com", "p2@example.com"}
