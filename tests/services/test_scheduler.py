"""The scheduler (T1, T2, E8, C3, X1): a due system refresh re-reads data sources,
refreshes segments, then releases the exports' runs — in that order; own recurrences; idempotent
with two schedulers; coalescing after downtime; Skipped after a failed segment; the export user
check; run-all. Real SQLite + DuckDB files, a simulator over HTTP, an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from segsync.domain.runs import RunStatus
from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence
from segsync.services import runs as run_service
from segsync.services.connections import ConnectionEdit, connection_id, edit_connection
from segsync.services.context import ServiceContext, open_context
from segsync.services.exports import ExportEdit, edit_export, export_id
from segsync.services.notifications import list_notifications
from segsync.services.runs.schedule import schedule_off
from segsync.services.runs.scheduled import enqueue_runs
from segsync.services.runs.scheduler import tick
from segsync.services.segments import refresh_segments
from segsync.services.users import add_user, remove_user
from segsync.simulator import RunningSimulator
from segsync.storage.models.runs import Run
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.profiles import DataSourceRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository, claimable
from segsync.storage.repositories.segments import SegmentRepository
from tests.services.export_fixtures import add_segment
from tests.services.runs_support import contacts, fast, make_export, people, sim
from tests.services.schedule_support import DUE, T0, World, daily_at_six, world, write_csv

__all__ = ["sim", "world"]  # fixtures


def runs_of(ctx: ServiceContext, export: str) -> list[RunRecord]:
    with ctx.db.session() as session:
        export_id = ExportRepository(session).get_by_name(export).id
        return sorted(RunRepository(session).list(export_id=export_id), key=lambda r: r.id)


def is_claimable(ctx: ServiceContext, run_id: int) -> bool:
    with ctx.db.session() as session:
        found = session.scalar(select(Run.id).where(Run.id == run_id, claimable(ctx.now())))
    return found is not None


def segment(ctx: ServiceContext, name: str) -> tuple[int | None, datetime | None]:
    with ctx.db.session() as session:
        record = SegmentRepository(session).get_by_name(name)
    return record.member_count, record.last_refreshed_at


def source(ctx: ServiceContext, table: str) -> tuple[int, datetime]:
    with ctx.db.session() as session:
        record = DataSourceRepository(session).get(table)
    return record.row_count, record.imported_at


def own(ctx: ServiceContext, name: str, **fields: object) -> None:
    schedule = ExportSchedule(mode=ExportMode.OWN, **fields)  # type: ignore[arg-type]
    edit_export(ctx, export_id(ctx, name), ExportEdit(schedule=schedule))


# ---------------------------------------------------------------- the system refresh


def test_a_due_refresh_rereads_sources_then_refreshes_segments_then_releases_runs(
    world: World,
) -> None:
    ctx = world.ctx
    daily_at_six(ctx)
    write_csv(world.dir / "people.csv", people(20, "a") + people(5, "b", start=21))
    extras_before = source(ctx, "extras")
    seen: list[str] = []
    run_ids: list[int] = []

    def observe(step: str) -> None:
        seen.append(step)
        if step == "data_sources":  # the export's run is queued first, held
            (run,) = runs_of(ctx, "Newsletter")
            run_ids.append(run.id)
            assert run.status is RunStatus.QUEUED
            assert not is_claimable(ctx, run.id)
            assert source(ctx, "people")[0] == 15
        if step == "segments":  # sources were re-read; segments not yet refreshed
            assert source(ctx, "people")[0] == 25
            assert segment(ctx, "Seg A")[0] == 10
            assert not is_claimable(ctx, run_ids[0])
        if step == "release":  # segments refreshed; the run still waits
            assert segment(ctx, "Seg A")[0] == 20
            assert not is_claimable(ctx, run_ids[0])

    world.clock.at = DUE + timedelta(seconds=20)
    world.clock.step = timedelta(seconds=1)
    report = tick(ctx, on_step=observe)

    assert seen == ["queue", "data_sources", "segments", "release"]
    refresh = report.system_refresh
    assert refresh is not None
    assert refresh.due_at == DUE
    assert {(s.table, s.status) for s in refresh.data_sources} == {
        ("people", "reimported"),
        ("extras", "unchanged"),
    }
    assert source(ctx, "extras") == extras_before  # an unchanged file is not re-imported
    assert source(ctx, "people")[1] < segment(ctx, "Seg A")[1]  # type: ignore[operator]
    assert [(o.name, o.member_count) for o in refresh.segments] == [("Seg A", 20), ("Seg B", 5)]
    (run,) = runs_of(ctx, "Newsletter")
    assert (run.status, run.trigger, run.due_at, run.actor) == (
        RunStatus.QUEUED,
        "scheduled",
        DUE,
        "local-admin",
    )
    assert is_claimable(ctx, run.id)
    assert [r.run_id for r in report.runs] == [run.id]


def test_a_tick_before_the_due_time_does_nothing(world: World) -> None:
    ctx = world.ctx
    daily_at_six(ctx)
    write_csv(world.dir / "people.csv", people(20, "a"))
    before = source(ctx, "people")

    world.clock.at = DUE - timedelta(seconds=1)
    report = tick(ctx)

    assert report.system_refresh is None
    assert report.runs == []
    assert runs_of(ctx, "Newsletter") == []
    assert source(ctx, "people") == before


def test_two_schedulers_at_the_same_instant_queue_each_run_once(world: World) -> None:
    daily_at_six(world.ctx)
    own(world.ctx, "Newsletter", recurrence=Recurrence.DAILY, start=time(6, 0), tz="Europe/Lisbon")
    make_export(world.ctx, name="Weekly", segments=("Seg B",))
    world.clock.at = DUE
    with open_context(world.settings, now=lambda: DUE) as other:
        first = tick(world.ctx, scheduler="scheduler:a")
        second = tick(other, scheduler="scheduler:b")
        with other.db.session() as session:
            record = ExportRepository(session).get_by_name("Newsletter")
        racing = enqueue_runs(other, [record], DUE, hold=None)

    assert first.system_refresh is not None
    assert [r.export_name for r in first.runs] == ["Weekly", "Newsletter"]
    assert second.system_refresh is None
    assert second.runs == []
    assert racing == ([], ["Newsletter"])  # the unique (export, due time) keeps one run
    assert [r.due_at for r in runs_of(world.ctx, "Newsletter")] == [DUE]
    assert [r.due_at for r in runs_of(world.ctx, "Weekly")] == [DUE]


def test_after_three_days_down_each_export_gets_one_coalesced_run(world: World) -> None:
    daily_at_six(world.ctx, times="06:00,18:00")
    make_export(world.ctx, name="Own", segments=("Seg B",))
    own(world.ctx, "Own", recurrence=Recurrence.EVERY_N_HOURS, every_hours=4, tz="UTC")
    world.clock.at = DUE
    tick(world.ctx)

    world.clock.at = datetime(2026, 4, 1, 12, 30, tzinfo=UTC)  # six system slots missed
    report = tick(world.ctx)
    again = tick(world.ctx)

    latest = datetime(2026, 4, 1, 5, 0, tzinfo=UTC)  # 06:00 WEST on 1 April
    assert report.system_refresh is not None
    assert report.system_refresh.due_at == latest
    assert [r.due_at for r in runs_of(world.ctx, "Newsletter")] == [DUE, latest]
    assert [r.due_at for r in runs_of(world.ctx, "Own")] == [
        DUE - timedelta(hours=1),  # 04:00 UTC, the slot before the first tick
        datetime(2026, 4, 1, 12, 0, tzinfo=UTC),
    ]
    assert again.system_refresh is None
    assert again.runs == []


def test_an_export_whose_segment_failed_ends_skipped_naming_the_segment(world: World) -> None:
    ctx = world.ctx
    add_segment(ctx, "All", {"attribute": "Email", "op": "is_not_empty"})
    refresh_segments(ctx, ["All"])
    make_export(ctx, name="Everyone", segments=("All",))
    daily_at_six(ctx)
    # The new file has no Grp column: "Seg A" and "Seg B" cannot be evaluated any more.
    columns = ("id", "Email", "FirstName", "LastName", "Score")
    write_csv(world.dir / "people.csv", people(12), columns=columns)

    world.clock.at = DUE
    report = tick(ctx)

    (skipped,) = runs_of(ctx, "Newsletter")
    assert skipped.status is RunStatus.SKIPPED
    assert skipped.message is not None
    assert "segment 'Seg A' failed to refresh" in skipped.message
    assert "Grp" in skipped.message
    (released,) = runs_of(ctx, "Everyone")
    assert released.status is RunStatus.QUEUED
    assert is_claimable(ctx, released.id)
    assert report.system_refresh is not None
    assert {r.export_name: r.status for r in report.system_refresh.runs} == {
        "Newsletter": RunStatus.SKIPPED,
        "Everyone": RunStatus.QUEUED,
    }


# ---------------------------------------------------------------- own recurrences, off


def test_own_recurrences_are_queued_at_their_instants_across_the_spring_forward_day(
    world: World,
) -> None:
    own(world.ctx, "Newsletter", recurrence=Recurrence.EVERY_N_HOURS, every_hours=6,
        start=time(0, 0), tz="Europe/Lisbon")  # fmt: skip
    make_export(world.ctx, name="Nightly", segments=("Seg B",))
    own(world.ctx, "Nightly", recurrence=Recurrence.DAILY, start=time(1, 30), tz="Europe/Lisbon")

    moment = T0
    while moment <= datetime(2026, 3, 30, 0, 0, tzinfo=UTC):
        world.clock.at = moment
        tick(world.ctx)
        moment += timedelta(minutes=30)

    utc = [
        datetime(2026, 3, 28, 18, 0, tzinfo=UTC),  # 18:00 WET
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),  # 00:00 WET
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC),  # 06:00 WEST: clocks went forward at 01:00
        datetime(2026, 3, 29, 11, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 17, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 23, 0, tzinfo=UTC),  # 00:00 WEST on the 30th
    ]
    assert [r.due_at for r in runs_of(world.ctx, "Newsletter")] == utc
    # 01:30 does not exist on the 29th: it runs once, at 02:00 WEST (01:00 UTC)
    assert [r.due_at for r in runs_of(world.ctx, "Nightly")] == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    ]
    assert all(r.trigger == "scheduled" for r in runs_of(world.ctx, "Newsletter"))


def test_exports_with_their_schedule_off_are_never_scheduled(world: World) -> None:
    make_export(world.ctx, name="Manual", segments=("Seg B",))
    off = ExportEdit(schedule=ExportSchedule(mode=ExportMode.OFF))
    edit_export(world.ctx, export_id(world.ctx, "Manual"), off)
    daily_at_six(world.ctx)

    world.clock.at = DUE
    report = tick(world.ctx)

    assert report.system_refresh is not None
    assert runs_of(world.ctx, "Manual") == []
    assert [r.export_name for r in report.runs] == ["Newsletter"]


def test_a_system_schedule_switched_off_never_fires(world: World) -> None:
    daily_at_six(world.ctx)
    schedule_off(world.ctx)

    for hours in (0, 12, 24, 48):
        world.clock.at = DUE + timedelta(hours=hours)
        assert tick(world.ctx).system_refresh is None
    assert runs_of(world.ctx, "Newsletter") == []


def test_a_removed_export_user_fails_the_scheduled_run_saying_who_and_why(world: World) -> None:
    ctx = world.ctx
    add_user(ctx, "ops@example.com", "administrator")
    add_user(ctx, "boss@example.com", "administrator")
    ops = ConnectionEdit(export_user_email="ops@example.com")
    edit_connection(ctx, connection_id(ctx, "Sim"), ops)
    remove_user(ctx, "ops@example.com")
    daily_at_six(ctx)

    world.clock.at = DUE
    tick(ctx)

    (run,) = runs_of(ctx, "Newsletter")
    assert run.status is RunStatus.FAILURE
    assert run.trigger == "scheduled"
    assert run.due_at == DUE
    assert run.message is not None
    assert "the export user ops@example.com of connection 'Sim' was removed" in run.message
    notices = list_notifications(ctx)
    assert [(n.export_name, n.run_id) for n in notices] == [("Newsletter", run.id)]


# ---------------------------------------------------------------- run all


def test_run_all_queues_every_export_whose_schedule_is_on(world: World) -> None:
    ctx = world.ctx
    make_export(ctx, name="Own", segments=("Seg B",))
    own(ctx, "Own", recurrence=Recurrence.DAILY, start=time(7, 0), tz="UTC")
    make_export(ctx, name="Manual", segments=("Seg B",))
    off = ExportEdit(schedule=ExportSchedule(mode=ExportMode.OFF))
    edit_export(ctx, export_id(ctx, "Manual"), off)

    first = run_service.run_all(ctx)
    second = run_service.run_all(ctx)

    queued = [item for item in first if isinstance(item, RunRecord)]
    assert sorted(r.export_name for r in queued) == ["Newsletter", "Own"]
    assert all(r.status is RunStatus.QUEUED and r.trigger == "run_all" for r in queued)
    assert [r.id for r in second if isinstance(r, RunRecord)] == [r.id for r in queued]
    assert runs_of(ctx, "Manual") == []


# ---------------------------------------------------------------- end to end


def _execute_queued(ctx: ServiceContext) -> list[RunRecord]:
    try:
        from segsync.services.runs.worker import Worker
    except ImportError:  # the worker arrives in another change; run the exports directly
        return [
            run_service.run_export(ctx, run.export_name, tune=fast)
            for run in run_service.list_runs(ctx)
            if run.status is RunStatus.QUEUED
        ]
    worker = Worker(ctx, tune=fast)
    done = []
    while (record := worker.run_once()) is not None:
        done.append(record)
    return done


def test_scheduled_refresh_end_to_end_puts_the_refreshed_members_in_the_simulator(
    world: World,
    sim: RunningSimulator,
) -> None:
    ctx = world.ctx
    daily_at_six(ctx)
    write_csv(world.dir / "people.csv", people(30, "a"))

    world.clock.at = DUE
    report = tick(ctx)
    world.clock.at = DUE + timedelta(minutes=1)
    done = _execute_queued(ctx)

    assert report.system_refresh is not None
    assert [(r.export_name, r.status) for r in done] == [("Newsletter", RunStatus.SUCCESSFUL)]
    assert set(contacts(sim)) == {f"p{i}@example.com" for i in range(1, 31)}


def test_a_scheduled_run_respects_the_blast_radius_hold(
    world: World,
    sim: RunningSimulator,
) -> None:
    ctx = world.ctx
    run_service.run_export(ctx, "Newsletter", tune=fast)  # Seg A: 10 people on its list
    edit_export(ctx, export_id(ctx, "Newsletter"), ExportEdit(hold_removals="20%"))
    daily_at_six(ctx)
    write_csv(world.dir / "people.csv", people(4, "a") + people(5, "b", start=11))  # 6 leave

    world.clock.at = DUE
    tick(ctx)
    world.clock.at = DUE + timedelta(minutes=1)
    done = _execute_queued(ctx)

    assert [(r.trigger, r.status) for r in done] == [("scheduled", RunStatus.HELD)]
    assert "would lose 6 of its 10 members (60%" in (done[0].message or "")
    assert len([c for c in contacts(sim).values() if c["lists"]]) == 10  # nothing sent
    assert [n.kind for n in list_notifications(ctx) if n.run_id == done[0].id] == ["export_held"]
